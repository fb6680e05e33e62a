-- Reconciled state, kept by the reconcilers (stream_processors/reconcilers.py).
-- No person data: senders and beneficiaries appear only as pseudonyms, and
-- only where a summary needs to count distinct senders.

-- Every accepted event per entity, so state is a pure function of the set of
-- events (order-independent, duplicate-safe: primary key = event id).
CREATE TABLE entity_events (
    kind       text NOT NULL,           -- transfer | project
    entity_id  text NOT NULL,
    event_id   text NOT NULL,
    event_type text NOT NULL,
    event_time timestamptz NOT NULL,
    log_index  bigint,
    payload    jsonb NOT NULL,
    PRIMARY KEY (kind, entity_id, event_id)
);

CREATE TABLE transfers (
    transfer_id        text PRIMARY KEY,
    status             text NOT NULL,
    operator           text,
    corridor_from      text,
    corridor_to        text,
    destination_kind   text,
    project_id         text,
    send_amount        bigint,
    send_currency      text,
    fee_amount         bigint,
    promised_amount    bigint,
    promised_currency  text,
    paid_amount        bigint NOT NULL DEFAULT 0,
    payout_count       integer NOT NULL DEFAULT 0,
    available_by       timestamptz,
    sent_at            timestamptz,
    first_paid_at      timestamptz,
    delivery_seconds   bigint,
    disclosed_cost_bps integer,
    effective_cost_bps integer,
    receipt_digest     text,
    sent_event_id      text,
    sent_log_index     bigint,
    event_count        integer NOT NULL DEFAULT 0,
    state              jsonb NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfers_receipt ON transfers (receipt_digest);
CREATE INDEX transfers_project ON transfers (project_id) WHERE project_id IS NOT NULL;
CREATE INDEX transfers_operator ON transfers (operator, status);

CREATE TABLE project_contributions (
    project_id  text NOT NULL,
    transfer_id text NOT NULL,
    club_id     text NOT NULL,
    amount      bigint NOT NULL,
    currency    text NOT NULL,
    received_at timestamptz NOT NULL,
    evidence    jsonb NOT NULL,
    version     integer NOT NULL,
    PRIMARY KEY (project_id, transfer_id)
);

CREATE TABLE projects (
    project_id     text PRIMARY KEY,
    status         text NOT NULL,
    club_id        text,
    federation_id  text,
    country        text,
    state_code     text,
    municipality   text,
    project_type   text,
    currency       text,
    budget         bigint,
    club_received  bigint NOT NULL DEFAULT 0,
    disbursed      bigint NOT NULL DEFAULT 0,
    spent          bigint NOT NULL DEFAULT 0,
    funds_received bigint NOT NULL DEFAULT 0,
    open_flags     integer NOT NULL DEFAULT 0,
    state          jsonb NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_place ON projects (state_code, municipality);
CREATE INDEX projects_type ON projects (project_type);

CREATE TABLE project_parties (
    project_id text NOT NULL,
    level      text NOT NULL,
    party_id   text NOT NULL,
    share_bps  integer NOT NULL,
    owed       bigint NOT NULL,
    pledged    bigint NOT NULL,
    disbursed  bigint NOT NULL,
    latest_due timestamptz,
    status     text NOT NULL,
    PRIMARY KEY (project_id, level)
);
CREATE INDEX project_parties_party ON project_parties (party_id);

CREATE TABLE milestones (
    project_id   text NOT NULL,
    milestone_id text NOT NULL,
    planned      boolean NOT NULL,
    due          timestamptz,
    amount       bigint,
    reported_at  timestamptz,
    spent        bigint NOT NULL DEFAULT 0,
    progress_pct integer,
    evidence     jsonb NOT NULL DEFAULT '[]',
    verified_at  timestamptz,
    outcome      text,
    status       text NOT NULL,
    PRIMARY KEY (project_id, milestone_id)
);

-- Projects whose inputs changed (a contribution arrived) and must be recomputed.
CREATE TABLE dirty_projects (
    project_id text PRIMARY KEY,
    since      timestamptz NOT NULL DEFAULT now()
);

-- The next event-time instant at which an entity's flags may change with no new event.
CREATE TABLE deadlines (
    kind      text NOT NULL,
    entity_id text NOT NULL,
    due_at    timestamptz NOT NULL,
    PRIMARY KEY (kind, entity_id)
);
CREATE INDEX deadlines_due ON deadlines (due_at);

-- The shared event-time clock: per partition, the latest event time applied.
-- now = min over partitions - lateness (stream_processors/clock.py).
CREATE TABLE clock_partitions (
    group_id  text NOT NULL,
    topic     text NOT NULL,
    partition integer NOT NULL,
    watermark timestamptz NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
-- A test or an operator may pin the clock (tests drive time, never sleep).
CREATE TABLE clock_override (
    id  smallint PRIMARY KEY CHECK (id = 1),
    now timestamptz NOT NULL
);

-- Dashboard summaries, maintained incrementally by the reconcilers.
CREATE TABLE summary_corridor_day (
    day            date NOT NULL,
    corridor_from  text NOT NULL,
    corridor_to    text NOT NULL,
    operator       text NOT NULL,
    currency       text NOT NULL,
    transfers      bigint NOT NULL DEFAULT 0,
    senders        bigint NOT NULL DEFAULT 0,
    sent_amount    bigint NOT NULL DEFAULT 0,
    fee_amount     bigint NOT NULL DEFAULT 0,
    cost_bps_sum   bigint NOT NULL DEFAULT 0,
    paid           bigint NOT NULL DEFAULT 0,
    paid_within_1h bigint NOT NULL DEFAULT 0,
    paid_within_1d bigint NOT NULL DEFAULT 0,
    to_projects    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, corridor_from, corridor_to, operator, currency)
);
CREATE TABLE summary_corridor_senders (
    day           date NOT NULL,
    corridor_from text NOT NULL,
    corridor_to   text NOT NULL,
    operator      text NOT NULL,
    currency      text NOT NULL,
    sender        text NOT NULL,
    PRIMARY KEY (day, corridor_from, corridor_to, operator, currency, sender)
);
