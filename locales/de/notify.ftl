mail-enrol-code-subject = Ihr Bestätigungscode – { $realm }
mail-enrol-code-text =
    Guten Tag

    Um die Eröffnung Ihres Zugangs zu connect@Versicherte fortzusetzen, öffnen Sie diesen Link:
    { $link }

    und geben Sie diesen Zugangscode ein:

    { $code }

    Der Code ist { $minutes } Minuten gültig. Wenn Sie diesen Code nicht angefordert haben, ignorieren Sie diese Nachricht.

    Bei Fragen: { $phone }
    { $realm }
mail-address-in-use-subject = Registrierungsversuch mit Ihrer Adresse – { $realm }
mail-address-in-use-text =
    Guten Tag

    Jemand hat versucht, mit Ihrer E-Mail-Adresse einen Zugang zu connect@Versicherte zu eröffnen. Für diese Adresse besteht bereits ein Konto.

    Wenn Sie es waren, melden Sie sich hier an: { $link }
    Andernfalls können Sie diese Nachricht ignorieren; Ihr Konto wurde nicht verändert.

    Bei Fragen: { $phone }
    { $realm }
sms-code = Ihr connect@Versicherte-Code: { $code } ({ $minutes } Min. gültig). Geben Sie ihn niemandem weiter.
