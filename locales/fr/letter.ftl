# The activation letter (src/letter.rs), wording of the user guide's « Lettre d'activation ».
letter-title = Lettre d'activation
letter-place-date = { $place }, le { $date }
letter-ahv = N° AVS: { $number }
letter-greeting = Bonjour,
letter-invitation = Nous sommes heureux de vous inviter à rejoindre connect@Assurés. Grâce à notre portail en ligne, vous avez accès à tout moment à vos données personnelles, vos documents et vos transactions, où que vous soyez. Inscrivez-vous dès aujourd'hui à l'aide des données d'accès suivantes.
letter-motto = connect@Assurés – Votre fenêtre sur le futur
letter-registration = Enregistrement
letter-link = Lien pour l'enregistrement: { $link }
letter-code = Votre code d'enregistrement personnel est le: { $code }
letter-validity = Ce code est valable jusqu'au { $date } ({ $days } jours). Après cette période, un nouveau code doit être demandé pour l'enregistrement. Pour cette opération, veuillez vous adresser à l'assistance indiquée ci-après.
letter-how = Ouvrez votre navigateur Internet, saisissez manuellement le lien dans la barre d'adresse, puis entrez le code.
letter-support = Assistance: { $phone }, { $hours }
letter-closing = Meilleures salutations
