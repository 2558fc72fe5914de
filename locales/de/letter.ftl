# The activation letter (src/letter.rs). Swiss spelling: ss, never ß.
letter-title = Aktivierungsbrief
letter-place-date = { $place }, { $date }
letter-ahv = AHV-Nr.: { $number }
letter-greeting = Guten Tag
letter-invitation = Wir freuen uns, Sie zu connect@Versicherte einzuladen. Über unser Online-Portal haben Sie jederzeit und überall Zugriff auf Ihre persönlichen Daten, Ihre Dokumente und Ihre Geschäftsfälle. Registrieren Sie sich noch heute mit den folgenden Zugangsdaten.
letter-motto = connect@Versicherte – Ihr Fenster in die Zukunft
letter-registration = Registrierung
letter-link = Link zur Registrierung: { $link }
letter-code = Ihr persönlicher Registrierungscode lautet: { $code }
letter-validity = Dieser Code ist gültig bis am { $date } ({ $days } Tage). Danach muss für die Registrierung ein neuer Code angefordert werden. Wenden Sie sich dafür an den unten genannten Support.
letter-how = Öffnen Sie Ihren Internet-Browser, tippen Sie den Link in die Adresszeile ein und geben Sie danach den Code ein.
letter-support = Support: { $phone }, { $hours }
letter-closing = Freundliche Grüsse
