# The staff realm: its login and the enrolment of a new staff member (issue 13).
staff-login-title = Accesso del supporto
staff-login-intro = Il personale del supporto accede soltanto con la propria passkey: funziona solo su questo sito e non può essere sottratta da un sito falso.
staff-login-none = Non ha ancora una passkey? Utilizzi il link del Suo invito. Passkey persa: chieda un nuovo invito al Suo responsabile.
staff-enrol-title = Apertura del Suo accesso al supporto
staff-enrol-intro = Indichi nome e cognome, scelga una password e accetti le condizioni d'uso. In seguito registrerà la Sua passkey.
staff-passkey-title = La Sua passkey
staff-passkey-intro = Registri ora la passkey con la quale accederà. Il Suo accesso è aperto soltanto una volta registrata la passkey.
staff-passkey-default-name = Passkey del supporto
staff-done-title = Il Suo accesso è aperto
staff-done-intro = Grazie, { $name }: la Sua passkey è registrata.
staff-done-consoles = Trova la console del supporto di ogni cassa che Le è attribuita a questi indirizzi:
staff-done-no-console = Per ora non Le è attribuita alcuna cassa.
staff-done-login = Vi accederà con la Sua passkey.
staff-link-unusable = Questo link d'invito non è o non è più valido. Chieda un nuovo invito al Suo responsabile.
