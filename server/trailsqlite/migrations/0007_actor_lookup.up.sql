-- Search by actor name or e-mail where the privacy layer encrypted them
-- (issue 15): the keyed pseudonyms of the plaintext that Transform computed
-- (trail.Lookup: 16 bytes of the tenant's HMAC of the value), written by
-- Append and AppendTx. Rows from before, and events whose fields are in
-- plaintext (matched on actor_name and actor_email), have NULL, which costs
-- a byte of the record header.
--
-- One partial index per column, on the digest alone (a digest is one
-- tenant's: the HMAC key is per tenant): a search reads one person's rows
-- and sorts the page. About 20 bytes per indexed event.
ALTER TABLE trail_events ADD COLUMN actor_name_digest BLOB;
ALTER TABLE trail_events ADD COLUMN actor_email_digest BLOB;
CREATE INDEX trail_events_actor_name_digest ON trail_events (actor_name_digest) WHERE actor_name_digest IS NOT NULL;
CREATE INDEX trail_events_actor_email_digest ON trail_events (actor_email_digest) WHERE actor_email_digest IS NOT NULL;
