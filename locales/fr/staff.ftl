# The staff realm: its login and the enrolment of a new staff member (issue 13).
staff-login-title = Connexion du support
staff-login-intro = Le personnel du support se connecte uniquement avec sa clé d'accès (passkey) : elle ne fonctionne que sur ce site et ne peut pas être dérobée par un faux site.
staff-login-none = Pas encore de clé d'accès ? Utilisez le lien de votre invitation. Clé perdue : demandez une nouvelle invitation à votre responsable.
staff-enrol-title = Ouverture de votre accès au support
staff-enrol-intro = Indiquez vos nom et prénom, choisissez un mot de passe et acceptez les conditions d'utilisation. Vous enregistrerez ensuite votre clé d'accès.
staff-passkey-title = Votre clé d'accès
staff-passkey-intro = Enregistrez maintenant la clé d'accès avec laquelle vous vous connecterez. Votre accès n'est ouvert qu'une fois la clé enregistrée.
staff-passkey-default-name = Clé d'accès du support
staff-done-title = Votre accès est ouvert
staff-done-intro = Merci, { $name } : votre clé d'accès est enregistrée.
staff-done-consoles = Vous trouverez la console du support de chaque caisse qui vous est attribuée à ces adresses :
staff-done-no-console = Aucune caisse ne vous est attribuée pour l'instant.
staff-done-login = Vous vous y connecterez avec votre clé d'accès.
staff-link-unusable = Ce lien d'invitation n'est pas ou plus valable. Demandez une nouvelle invitation à votre responsable.
