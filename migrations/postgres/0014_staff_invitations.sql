-- Staff enrolment (issue 13): `connect admin staff add` and `staff invite` send a single-use
-- link; only its keyed hash is kept. The account waits with status 'invited' (no login)
-- until the link's enrolment registers a passkey, which spends the invitation. A new
-- invitation revokes the open one.
CREATE TABLE staff_invitations (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX staff_invitations_account ON staff_invitations (realm, account_id);
