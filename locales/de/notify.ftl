# Mail bodies are templates/mail/<name>.txt and .html; these are their sentences.
mail-greeting = Guten Tag
mail-questions = Bei Fragen: { $phone }
mail-enrol-code-subject = Ihr Bestätigungscode – { $realm }
mail-enrol-code-open-link = Um die Eröffnung Ihres Zugangs zu connect@Versicherte fortzusetzen, öffnen Sie diesen Link:
mail-enrol-code-enter-code = und geben Sie diesen Zugangscode ein:
mail-enrol-code-validity = Der Code ist { $minutes } Minuten gültig. Wenn Sie diesen Code nicht angefordert haben, ignorieren Sie diese Nachricht.
mail-address-in-use-subject = Registrierungsversuch mit Ihrer Adresse – { $realm }
mail-address-in-use-attempt = Jemand hat versucht, mit Ihrer E-Mail-Adresse einen Zugang zu connect@Versicherte zu eröffnen. Für diese Adresse besteht bereits ein Konto.
mail-address-in-use-login = Wenn Sie es waren, melden Sie sich hier an:
mail-address-in-use-ignore = Andernfalls können Sie diese Nachricht ignorieren; Ihr Konto wurde nicht verändert.
sms-code = Ihr connect@Versicherte-Code: { $code } ({ $minutes } Min. gültig). Geben Sie ihn niemandem weiter.
mail-document-subject = Neues Dokument in «Meine Dokumente» – { $realm }
mail-document-new = In «Meine Dokumente» steht ein neues Dokument für Sie bereit.
mail-document-open = Melden Sie sich an, um es anzusehen:
mail-document-privacy = Zum Schutz Ihrer Daten enthält diese Nachricht das Dokument nicht.
