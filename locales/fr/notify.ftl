mail-enrol-code-subject = Votre code de confirmation – { $realm }
mail-enrol-code-text =
    Bonjour,

    Pour poursuivre l'ouverture de votre accès à connect@Assurés, ouvrez ce lien :
    { $link }

    et saisissez ce code d'accès :

    { $code }

    Le code est valable { $minutes } minutes. Si vous n'avez pas demandé ce code, ignorez ce message.

    Pour toute question : { $phone }
    { $realm }
mail-address-in-use-subject = Tentative d'inscription avec votre adresse – { $realm }
mail-address-in-use-text =
    Bonjour,

    Quelqu'un a tenté d'ouvrir un accès à connect@Assurés avec votre adresse e-mail. Un compte existe déjà pour cette adresse.

    Si c'était vous, connectez-vous ici : { $link }
    Sinon, vous pouvez ignorer ce message ; votre compte n'a pas été modifié.

    Pour toute question : { $phone }
    { $realm }
sms-code = Votre code connect@Assurés : { $code } (valable { $minutes } min). Ne le communiquez à personne.
