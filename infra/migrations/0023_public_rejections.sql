-- Issue 14.7: the public sees a refusal only as a reason code and a schema path.
-- The gate writes the public projection (schemas.rejections) beside the private
-- message: the path with every property name no schema declares replaced by
-- '*', the event type only when it is one of the catalog's, the publisher only
-- when the trust registry knows it.  The reader role loses the columns that
-- carry the sender's own text (message, publisher_id, event_type, event_id).
ALTER TABLE quarantine
    ADD COLUMN public_path       text,
    ADD COLUMN public_event_type text,
    ADD COLUMN public_publisher  text;

-- Rows written before: a publisher that has accepted events is a registered one,
-- a type that reached the log is a catalog type; the path stays unknown (NULL).
UPDATE quarantine q SET public_publisher = q.publisher_id
    WHERE q.publisher_id IN (SELECT publisher_id FROM publisher_sequences);
UPDATE quarantine q SET public_event_type = q.event_type
    WHERE q.event_type IN (SELECT DISTINCT event_type FROM log_entries);

CREATE INDEX quarantine_public_publisher ON quarantine (public_publisher, received_at DESC);

REVOKE SELECT ON quarantine FROM {{reader}};
GRANT SELECT (id, public_publisher, public_event_type, reason, public_path, source, deliveries, received_at)
    ON quarantine TO {{reader}};
