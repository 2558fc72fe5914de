# The activation letter (src/letter.rs).
letter-title = Lettera di attivazione
letter-place-date = { $place }, { $date }
letter-ahv = N. AVS: { $number }
letter-greeting = Buongiorno,
letter-invitation = Siamo lieti di invitarla a unirsi a connect@Assicurati. Grazie al nostro portale online ha accesso in qualsiasi momento, ovunque si trovi, ai Suoi dati personali, ai Suoi documenti e alle Sue transazioni. Si registri oggi stesso con i seguenti dati di accesso.
letter-motto = connect@Assicurati – La Sua finestra sul futuro
letter-registration = Registrazione
letter-link = Link per la registrazione: { $link }
letter-code = Il Suo codice di registrazione personale è: { $code }
letter-validity = Questo codice è valido fino al { $date } ({ $days } giorni). Trascorso questo periodo, per la registrazione occorre richiedere un nuovo codice. A tale scopo si rivolga all'assistenza indicata qui sotto.
letter-how = Apra il Suo browser Internet, digiti il link nella barra degli indirizzi e poi inserisca il codice.
letter-support = Assistenza: { $phone }, { $hours }
letter-closing = Cordiali saluti
