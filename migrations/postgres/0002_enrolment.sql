-- Activation codes of the letters, the terms of use accepted at enrolment, and the count of
-- consecutive failed passwords (NIST SP 800-63B-4 §3.2.2: never more than 100).

CREATE TABLE activation_codes (
    id          TEXT PRIMARY KEY,
    realm       TEXT NOT NULL,
    ahv         TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT,
    CONSTRAINT activation_codes_hash_key UNIQUE (realm, code_hash)
);
CREATE INDEX activation_codes_person ON activation_codes (realm, ahv);

ALTER TABLE accounts ADD COLUMN terms_version TEXT;
ALTER TABLE accounts ADD COLUMN terms_accepted_at BIGINT;
ALTER TABLE accounts ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
