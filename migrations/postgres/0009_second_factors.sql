-- Stronger second factors (issue 12): an authenticator app (TOTP, RFC 6238) and recovery codes.
-- Both go with their account: closing an account removes them.

-- One app per account. The secret is sealed with the master key (XChaCha20-Poly1305, bound to
-- realm and account), never stored in clear. `last_step` is the RFC 6238 time step of the
-- last code accepted: a code of that step or an earlier one is refused, so each code is used
-- at most once, on every replica.
CREATE TABLE totp_apps (
    account_id    TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    realm         TEXT NOT NULL,
    secret        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_step     BIGINT,
    last_used_at  BIGINT
);

-- Ten single-use codes per account, as keyed hashes; a new set replaces the old one.
CREATE TABLE recovery_codes (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    realm       TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX recovery_codes_account ON recovery_codes (realm, account_id);
