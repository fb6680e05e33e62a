-- Integrity alarms raised by witnesses that refused to cosign (a fork or a
-- rollback of the log).  The witness's own state file and log are its primary
-- record; this table lets the platform's status and dashboard show them.
CREATE TABLE witness_alarms (
    id             bigserial PRIMARY KEY,
    witness        text NOT NULL,
    reason         text NOT NULL,
    message        text NOT NULL,
    cosigned_size  bigint,
    cosigned_root  bytea,
    offered_size   bigint,
    offered_root   bytea,
    detected_at    timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON witness_alarms TO {{reader}};
