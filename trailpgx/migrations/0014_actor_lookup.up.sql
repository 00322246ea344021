-- 014: search by actor name or e-mail where the privacy layer encrypted them
-- (issue 15). The ciphertext differs on every write, so each event carries
-- the keyed pseudonyms of the plaintext that Transform computed
-- (trail.Lookup: 16 bytes of the tenant's HMAC of the value), written by
-- every writer that has them: Append, AppendTx/RecordTx, COPY. Capture
-- triggers record no name or e-mail, and rows from before this migration
-- have none: both are NULL, which costs a bit in the null bitmap.
--
-- One index per column, on the digest alone: a digest is a tenant's (the
-- HMAC key is per tenant), so the tenant adds nothing to the key, and the
-- b-tree's deduplication keeps one key per person with a list of row
-- pointers (about 6 bytes per event). A search reads a person's rows
-- through the index and keeps the page's newest: people have thousands of
-- events, not millions. Partial: events without the field are not indexed.
ALTER TABLE @schema@.events ADD COLUMN actor_name_digest bytea, ADD COLUMN actor_email_digest bytea;
CREATE INDEX events_actor_name_digest ON @schema@.events (actor_name_digest) WHERE actor_name_digest IS NOT NULL;
CREATE INDEX events_actor_email_digest ON @schema@.events (actor_email_digest) WHERE actor_email_digest IS NOT NULL;
