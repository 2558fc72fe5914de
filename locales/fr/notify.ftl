# Mail bodies are templates/mail/<name>.txt and .html; these are their sentences.
mail-greeting = Bonjour,
mail-questions = Pour toute question : { $phone }
mail-enrol-code-subject = Votre code de confirmation – { $realm }
mail-enrol-code-open-link = Pour poursuivre l'ouverture de votre accès à connect@Assurés, ouvrez ce lien :
mail-enrol-code-enter-code = et saisissez ce code d'accès :
mail-enrol-code-validity = Le code est valable { $minutes } minutes. Si vous n'avez pas demandé ce code, ignorez ce message.
mail-address-in-use-subject = Tentative d'inscription avec votre adresse – { $realm }
mail-address-in-use-attempt = Quelqu'un a tenté d'ouvrir un accès à connect@Assurés avec votre adresse e-mail. Un compte existe déjà pour cette adresse.
mail-address-in-use-login = Si c'était vous, connectez-vous ici :
mail-address-in-use-ignore = Sinon, vous pouvez ignorer ce message ; votre compte n'a pas été modifié.
sms-code = Votre code connect@Assurés : { $code } (valable { $minutes } min). Ne le communiquez à personne.
mail-document-subject = Nouveau document dans « Mes documents » – { $realm }
mail-document-new = Un nouveau document est à votre disposition dans « Mes documents ».
mail-document-open = Connectez-vous pour le consulter :
mail-document-privacy = Pour protéger vos données, ce message ne contient pas le document.
