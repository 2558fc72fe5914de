# The staff realm: its login and the enrolment of a new staff member (issue 13).
staff-login-title = Support desk login
staff-login-intro = Support staff log in with their passkey only: it works on this site alone and cannot be taken by a fake site.
staff-login-none = No passkey yet? Use the link of your invitation. Lost your passkey: ask your supervisor for a new invitation.
staff-enrol-title = Opening your support desk access
staff-enrol-intro = Give your names, choose a password and accept the terms of use. Then you register your passkey.
staff-passkey-title = Your passkey
staff-passkey-intro = Now register the passkey you will log in with. Your access opens only once the passkey is registered.
staff-passkey-default-name = Support desk passkey
staff-done-title = Your access is open
staff-done-intro = Thank you, { $name }: your passkey is registered.
staff-done-consoles = The support console of each caisse assigned to you is at these addresses:
staff-done-no-console = No caisse is assigned to you yet.
staff-done-login = You log in there with your passkey.
staff-link-unusable = This invitation link is not valid or no longer valid. Ask your supervisor for a new invitation.
