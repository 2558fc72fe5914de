# Mail bodies are templates/mail/<name>.txt and .html; these are their sentences.
mail-greeting = Hello,
mail-questions = Questions: { $phone }
mail-enrol-code-subject = Your confirmation code – { $realm }
mail-enrol-code-open-link = To continue opening your connect@Insured access, open this link:
mail-enrol-code-enter-code = and enter this access code:
mail-enrol-code-validity = The code is valid for { $minutes } minutes. If you did not ask for this code, ignore this message.
mail-address-in-use-subject = Registration attempt with your address – { $realm }
mail-address-in-use-attempt = Someone tried to open a connect@Insured access with your e-mail address. An account already exists for this address.
mail-address-in-use-login = If it was you, log in here:
mail-address-in-use-ignore = Otherwise you can ignore this message; your account has not been changed.
sms-code = Your connect@Insured code: { $code } (valid { $minutes } min). Do not share it with anyone.
mail-document-subject = New document in “My documents” – { $realm }
mail-document-new = A new document is waiting for you in “My documents”.
mail-document-open = Log in to read it:
mail-document-privacy = To protect your data, this message does not contain the document.
