# The staff realm: its login and the enrolment of a new staff member (issue 13).
staff-login-title = Anmeldung des Supports
staff-login-intro = Mitarbeitende des Supports melden sich nur mit ihrem Passkey an: Er funktioniert nur auf dieser Website und kann nicht von einer gefälschten Website abgegriffen werden.
staff-login-none = Noch kein Passkey? Verwenden Sie den Link Ihrer Einladung. Passkey verloren: Bitten Sie Ihre vorgesetzte Person um eine neue Einladung.
staff-enrol-title = Eröffnung Ihres Support-Zugangs
staff-enrol-intro = Geben Sie Ihren Vor- und Nachnamen an, wählen Sie ein Passwort und akzeptieren Sie die Nutzungsbedingungen. Danach registrieren Sie Ihren Passkey.
staff-passkey-title = Ihr Passkey
staff-passkey-intro = Registrieren Sie jetzt den Passkey, mit dem Sie sich anmelden werden. Ihr Zugang ist erst eröffnet, wenn der Passkey registriert ist.
staff-passkey-default-name = Passkey des Supports
staff-done-title = Ihr Zugang ist eröffnet
staff-done-intro = Danke, { $name }: Ihr Passkey ist registriert.
staff-done-consoles = Die Support-Konsole jeder Ihnen zugewiesenen Ausgleichskasse finden Sie unter diesen Adressen:
staff-done-no-console = Ihnen ist noch keine Ausgleichskasse zugewiesen.
staff-done-login = Sie melden sich dort mit Ihrem Passkey an.
staff-link-unusable = Dieser Einladungslink ist nicht oder nicht mehr gültig. Bitten Sie Ihre vorgesetzte Person um eine neue Einladung.
