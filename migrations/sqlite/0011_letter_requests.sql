-- Lost phone (issue 12): a person who proved e-mail and password asks for a new activation
-- letter. The request waits in the realm's queue until `connect admin code letters` prints it
-- (`printed_at`, and `code_id`: the code on that letter, which replaces any earlier one); with
-- that code, e-mail and password the person registers a new mobile number (`done_at`).
CREATE TABLE letter_requests (
    id            TEXT PRIMARY KEY,
    realm         TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    ahv           TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    printed_at    BIGINT,
    code_id       TEXT,
    done_at       BIGINT
);
-- At most one request of an account waits for the printer.
CREATE UNIQUE INDEX letter_requests_queued_key ON letter_requests (realm, account_id)
    WHERE printed_at IS NULL;
CREATE INDEX letter_requests_code ON letter_requests (realm, code_id);
