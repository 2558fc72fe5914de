-- Times are Unix seconds (BIGINT) on both backends, so rows read the same everywhere.

CREATE TABLE persons (
    id           TEXT PRIMARY KEY,
    realm        TEXT NOT NULL,
    ahv          TEXT NOT NULL,
    given_name   TEXT NOT NULL,
    family_name  TEXT NOT NULL,
    birth_date   TEXT NOT NULL,
    language     TEXT NOT NULL,
    street       TEXT,
    postal_code  TEXT,
    locality     TEXT,
    country      TEXT,
    created_at   BIGINT NOT NULL,
    CONSTRAINT persons_realm_ahv_key UNIQUE (realm, ahv)
);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    realm          TEXT NOT NULL,
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    given_name     TEXT NOT NULL,
    family_name    TEXT NOT NULL,
    ahv            TEXT,
    phone          TEXT,
    language       TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    CONSTRAINT accounts_realm_email_key UNIQUE (realm, email_key)
);
CREATE UNIQUE INDEX accounts_realm_ahv_key ON accounts (realm, ahv);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    realm        TEXT NOT NULL,
    alg          TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT,
    unpublish_at BIGINT
);
CREATE INDEX signing_keys_realm ON signing_keys (realm, alg, created_at);

CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    realm       TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    scope       TEXT NOT NULL,
    claims      TEXT NOT NULL,
    auth_time   BIGINT NOT NULL,
    acr         TEXT NOT NULL,
    amr         TEXT NOT NULL,
    sid         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX grants_account ON grants (realm, account_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES grants (id),
    realm       TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
