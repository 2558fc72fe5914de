mail-enrol-code-subject = Il suo codice di conferma – { $realm }
mail-enrol-code-text =
    Buongiorno,

    Per proseguire l'apertura del suo accesso a connect@Assicurati, apra questo link:
    { $link }

    e inserisca questo codice d'accesso:

    { $code }

    Il codice è valido { $minutes } minuti. Se non ha richiesto questo codice, ignori questo messaggio.

    Per domande: { $phone }
    { $realm }
mail-address-in-use-subject = Tentativo di registrazione con il suo indirizzo – { $realm }
mail-address-in-use-text =
    Buongiorno,

    Qualcuno ha tentato di aprire un accesso a connect@Assicurati con il suo indirizzo e-mail. Per questo indirizzo esiste già un conto.

    Se è stato lei, effettui il login qui: { $link }
    Altrimenti può ignorare questo messaggio; il suo conto non è stato modificato.

    Per domande: { $phone }
    { $realm }
sms-code = Il suo codice connect@Assicurati: { $code } (valido { $minutes } min). Non lo comunichi a nessuno.
