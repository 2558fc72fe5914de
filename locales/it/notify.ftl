# Mail bodies are templates/mail/<name>.txt and .html; these are their sentences.
mail-greeting = Buongiorno,
mail-questions = Per domande: { $phone }
mail-enrol-code-subject = Il suo codice di conferma – { $realm }
mail-enrol-code-open-link = Per proseguire l'apertura del suo accesso a connect@Assicurati, apra questo link:
mail-enrol-code-enter-code = e inserisca questo codice d'accesso:
mail-enrol-code-validity = Il codice è valido { $minutes } minuti. Se non ha richiesto questo codice, ignori questo messaggio.
mail-address-in-use-subject = Tentativo di registrazione con il suo indirizzo – { $realm }
mail-address-in-use-attempt = Qualcuno ha tentato di aprire un accesso a connect@Assicurati con il suo indirizzo e-mail. Per questo indirizzo esiste già un conto.
mail-address-in-use-login = Se è stato lei, effettui il login qui:
mail-address-in-use-ignore = Altrimenti può ignorare questo messaggio; il suo conto non è stato modificato.
sms-code = Il suo codice connect@Assicurati: { $code } (valido { $minutes } min). Non lo comunichi a nessuno.
mail-document-subject = Nuovo documento in «I miei documenti» – { $realm }
mail-document-new = Un nuovo documento è a sua disposizione in «I miei documenti».
mail-document-open = Effettui il login per consultarlo:
mail-document-privacy = Per proteggere i suoi dati, questo messaggio non contiene il documento.
