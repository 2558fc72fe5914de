-- Passkeys (WebAuthn credentials) of accounts, issue 12.
--
-- credential is webauthn-rs's `Passkey` as JSON: the public key, the signature counter and
-- the backup flags, nothing secret. credential_id is its id (base64url), unique per realm,
-- so that a login with a discoverable credential finds its row. Removing an account removes
-- its passkeys.

CREATE TABLE passkeys (
    id             TEXT PRIMARY KEY,
    realm          TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    credential_id  TEXT NOT NULL,
    credential     TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    CONSTRAINT passkeys_realm_credential_key UNIQUE (realm, credential_id)
);
CREATE INDEX passkeys_account ON passkeys (realm, account_id);
