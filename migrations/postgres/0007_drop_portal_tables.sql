-- The portal keeps its documents and recipients in its own database (migrations/portal/): the
-- IdP's database holds none of them. Documents delivered before this change stay in the
-- IdP's database until this migration runs; copy them first (see docs/decisions.md).
DROP TABLE IF EXISTS portal_recipients;
DROP TABLE IF EXISTS documents;
