-- The audit trail: one row per security event. Never a password, code, token or full AHV
-- number; `detail` is a small JSON object of non-secret facts (the factor, a limit's name).
CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    realm        TEXT NOT NULL,
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    account_id   TEXT,
    client_id    TEXT,
    client_addr  TEXT,
    user_agent   TEXT,
    operator     TEXT,
    reason       TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX audit_events_realm_at ON audit_events (realm, at);
CREATE INDEX audit_events_account ON audit_events (realm, account_id, at);
