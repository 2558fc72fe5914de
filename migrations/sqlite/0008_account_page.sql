-- The person's own account page (issue 12): a person who closed their account stays in the
-- register, and is no longer sent an activation letter by itself (`code letters`); support
-- can still issue one on request.
ALTER TABLE persons ADD COLUMN account_closed_at BIGINT;
