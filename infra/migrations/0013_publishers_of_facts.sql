-- The rules judge who said what (docs/adr/0007-authority-and-time.md): each
-- stored event keeps its publisher, each club contribution the operator that
-- published its transfer.
ALTER TABLE entity_events ADD COLUMN publisher_id text;
UPDATE entity_events e SET publisher_id = l.publisher_id FROM log_entries l WHERE l.event_id = e.event_id;

ALTER TABLE project_contributions ADD COLUMN operator text;
UPDATE project_contributions c SET operator = l.publisher_id
FROM log_entries l WHERE l.event_id = c.evidence ->> 0;
