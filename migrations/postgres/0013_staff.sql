-- The support desk's staff (issue 13). A staff member is an account of a staff realm (no AHV
-- number), with a role and the caisses whose console they may open: one row per caisse, so
-- that taking a caisse away is one DELETE and the console's check is one indexed lookup.
CREATE TABLE staff_members (
    realm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('support', 'supervisor')),
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (realm, account_id)
);

CREATE TABLE staff_caisses (
    realm TEXT NOT NULL,
    account_id TEXT NOT NULL,
    caisse TEXT NOT NULL,
    PRIMARY KEY (realm, account_id, caisse),
    FOREIGN KEY (realm, account_id) REFERENCES staff_members (realm, account_id) ON DELETE CASCADE
);

-- The console's views of what staff did: by operator, newest first.
CREATE INDEX audit_events_operator ON audit_events (realm, operator, at);

-- The console's search by birth date.
CREATE INDEX persons_birth_date ON persons (realm, birth_date);

-- The console's search by name: the start of the family or given name, in lower case.
CREATE INDEX persons_family_name_key ON persons (realm, lower(family_name));
CREATE INDEX persons_given_name_key ON persons (realm, lower(given_name));
