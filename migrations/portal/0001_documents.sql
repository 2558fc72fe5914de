-- The portal's own database (portal.database_url): never the IdP's, which holds password
-- hashes, grants and signing keys. Documents: metadata here, bodies in object storage under
-- `object_key`.
-- `titles` is a JSON object by language code; `issue_date` an ISO date (YYYY-MM-DD), so that
-- text order is date order. A delivery retried with the same Idempotency-Key by the same
-- client finds the first one (NULL keys never collide).

CREATE TABLE documents (
    id               TEXT PRIMARY KEY,
    realm            TEXT NOT NULL,
    ahv              TEXT NOT NULL,
    category         TEXT NOT NULL,
    titles           TEXT NOT NULL,
    issue_date       TEXT NOT NULL,
    received_at      BIGINT NOT NULL,
    size             BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    object_key       TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    idempotency_key  TEXT,
    read_at          BIGINT,
    CONSTRAINT documents_idempotency_key UNIQUE (realm, client_id, idempotency_key)
);
CREATE INDEX documents_person ON documents (realm, ahv);
CREATE INDEX documents_issue_date ON documents (realm, issue_date);

-- Whom to tell that a document arrived: the e-mail address and language of the person's
-- latest login to the portal (from the ID token and userinfo).
CREATE TABLE portal_recipients (
    realm       TEXT NOT NULL,
    ahv         TEXT NOT NULL,
    email       TEXT NOT NULL,
    language    TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (realm, ahv)
);
