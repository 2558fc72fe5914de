# The activation letter (src/letter.rs).
letter-title = Activation letter
letter-place-date = { $place }, { $date }
letter-ahv = AHV number: { $number }
letter-greeting = Hello,
letter-invitation = We are pleased to invite you to join connect@Insured. With our online portal you have access to your personal data, your documents and your transactions at any time, wherever you are. Register today with the following access data.
letter-motto = connect@Insured – Your window on the future
letter-registration = Registration
letter-link = Registration link: { $link }
letter-code = Your personal registration code is: { $code }
letter-validity = This code is valid until { $date } ({ $days } days). After that, a new code must be requested for registration. To do so, please contact the support named below.
letter-how = Open your web browser, type the link into the address bar, then enter the code.
letter-support = Support: { $phone }, { $hours }
letter-closing = Kind regards
