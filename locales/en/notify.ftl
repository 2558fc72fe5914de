mail-enrol-code-subject = Your confirmation code – { $realm }
mail-enrol-code-text =
    Hello,

    To continue opening your connect@Insured access, open this link:
    { $link }

    and enter this access code:

    { $code }

    The code is valid for { $minutes } minutes. If you did not ask for this code, ignore this message.

    Questions: { $phone }
    { $realm }
mail-address-in-use-subject = Registration attempt with your address – { $realm }
mail-address-in-use-text =
    Hello,

    Someone tried to open a connect@Insured access with your e-mail address. An account already exists for this address.

    If it was you, log in here: { $link }
    Otherwise you can ignore this message; your account has not been changed.

    Questions: { $phone }
    { $realm }
sms-code = Your connect@Insured code: { $code } (valid { $minutes } min). Do not share it with anyone.
