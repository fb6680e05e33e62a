-- Who owns each transfer and project (docs/adr/0007-authority-and-time.md):
-- the publisher of its first registration in the log (transfer.sent,
-- project.registered), with what the gate needs to judge later events about
-- it.  Written by the gate in the transaction that appends the registration;
-- the first one stays (arrival in the log decides, never the claimed time).
CREATE TABLE subjects (
    kind          text NOT NULL,                -- transfer | project
    subject_id    text NOT NULL,
    owner         text NOT NULL,                -- the operator / the committee
    origin_time   timestamptz NOT NULL,         -- the registration's claimed event_time
    event_id      text NOT NULL,
    log_index     bigint,
    club_id       text,                         -- project: its club
    payout_agents text[] NOT NULL DEFAULT '{}', -- transfer: who may publish its payouts besides the operator
    verifiers     text[] NOT NULL DEFAULT '{}', -- project: who may verify its milestones
    PRIMARY KEY (kind, subject_id)
);

-- A log accepted before this table existed: its registrations, first in log
-- order (a transfer.sent naming another operator never registers anything).
INSERT INTO subjects (kind, subject_id, owner, origin_time, event_id, log_index, club_id, payout_agents, verifiers)
SELECT DISTINCT ON (kind, subject_id) kind, subject_id, publisher_id, event_time, event_id, idx,
       CASE WHEN kind = 'project' THEN p ->> 'club_id' END,
       ARRAY(SELECT jsonb_array_elements_text(coalesce(p -> 'payout_agents', '[]'::jsonb))),
       ARRAY(SELECT jsonb_array_elements_text(coalesce(p -> 'verifiers', '[]'::jsonb)))
FROM (
    SELECT CASE event_type WHEN 'transfer.sent' THEN 'transfer' ELSE 'project' END AS kind,
           p ->> CASE event_type WHEN 'transfer.sent' THEN 'transfer_id' ELSE 'project_id' END AS subject_id,
           publisher_id, event_time, event_id, idx, p
    FROM (SELECT *, convert_from(leaf, 'UTF8')::jsonb -> 'payload' AS p FROM log_entries
          WHERE event_type IN ('transfer.sent', 'project.registered')) l
    WHERE event_type = 'project.registered' OR p ->> 'operator' = publisher_id
) r
ORDER BY kind, subject_id, idx;

-- Derived from the public log; no person data.
GRANT SELECT ON subjects TO {{reader}};
