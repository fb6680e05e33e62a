-- Flags: discrepancies and integrity alarms, as a workflow with history.
CREATE TABLE flags (
    flag_id         text PRIMARY KEY,
    flag_type       text NOT NULL,
    key             text NOT NULL DEFAULT '',
    subject_kind    text NOT NULL,
    subject_id      text NOT NULL,
    accountable     text NOT NULL,
    severity        text NOT NULL,
    amount_at_stake bigint,
    currency        text,
    status          text NOT NULL CHECK (status IN ('open','acknowledged','resolved','dismissed','withdrawn')),
    auto_status     text NOT NULL DEFAULT 'open',
    raised_at       timestamptz NOT NULL,
    resolved_at     timestamptz,
    evidence        jsonb NOT NULL DEFAULT '[]',
    detail          jsonb NOT NULL DEFAULT '{}',
    history_len     integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flags_queue ON flags (status, amount_at_stake DESC NULLS LAST);
CREATE INDEX flags_subject ON flags (subject_kind, subject_id);
CREATE INDEX flags_type ON flags (flag_type, status);
CREATE INDEX flags_accountable ON flags (accountable, status);

-- Every change of a flag's state; each is also a signed flag.changed event in the log.
CREATE TABLE flag_history (
    flag_id         text NOT NULL REFERENCES flags(flag_id),
    n               integer NOT NULL,
    status          text NOT NULL,
    previous_status text,
    actor           text NOT NULL,
    reason_code     text NOT NULL,
    changed_at      timestamptz NOT NULL,
    event_id        text NOT NULL,
    log_index       bigint,
    PRIMARY KEY (flag_id, n)
);

-- Gapless sequence numbers of the platform's own signed events.
CREATE TABLE platform_seq (
    publisher_id text PRIMARY KEY,
    seq          bigint NOT NULL
);

-- Summary of flags for the dashboard, maintained incrementally.
CREATE TABLE summary_flags (
    flag_type text NOT NULL,
    status    text NOT NULL,
    currency  text NOT NULL DEFAULT '',
    n         bigint NOT NULL DEFAULT 0,
    amount    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (flag_type, status, currency)
);
