-- Account security (issue 9): a lock that ends by itself, when the e-mail address and the
-- phone number were last proved, and which sessions of the account still count.
--
-- status is 'active', 'locked' (locked_until NULL: until support unlocks it) or 'disabled'.

ALTER TABLE accounts ADD COLUMN locked_until BIGINT;
ALTER TABLE accounts ADD COLUMN email_verified_at BIGINT;
ALTER TABLE accounts ADD COLUMN phone_verified_at BIGINT;
-- Bumped whenever every session of the account ends; a session started under an older
-- value is over.
ALTER TABLE accounts ADD COLUMN sessions_epoch INTEGER NOT NULL DEFAULT 0;

-- Enrolment proved both with codes before it opened the account; accounts that support
-- created proved nothing.
UPDATE accounts SET email_verified_at = created_at, phone_verified_at = created_at
    WHERE terms_version IS NOT NULL;
