-- The caisse's support desk (issue 13): support took every second factor away (a lost phone,
-- `connect admin account reset-phone`). Until the person registers a new mobile number at
-- the next login (e-mail and password, a code by e-mail, the number and its SMS code), the
-- password alone never logs in.
ALTER TABLE accounts ADD COLUMN phone_reset_at BIGINT;
