-- The audit log, the ingestion gate's records and consumer progress.
-- Durable truth lives here (ADR 0002): the broker may lose everything.

DO $$ BEGIN
  CREATE ROLE {{reader}} LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- RFC 9162 log: one row per leaf.  leaf = canonical signed envelope (RFC 8785).
CREATE TABLE log_entries (
    idx          bigint PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    event_type   text NOT NULL,
    publisher_id text NOT NULL,
    seq          bigint NOT NULL,
    event_time   timestamptz NOT NULL,
    leaf         bytea NOT NULL,
    leaf_hash    bytea NOT NULL CHECK (length(leaf_hash) = 32),
    accepted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX log_entries_publisher ON log_entries (publisher_id, seq);
CREATE INDEX log_entries_type ON log_entries (event_type);

-- C2SP tlog-tiles hash tiles: tile (level L, index N) holds the node hashes at
-- height 8L with indices [256N, 256N + width), concatenated.  Proofs read
-- O(log n) tiles in one query (ADR 0003).
CREATE TABLE log_tiles (
    level smallint NOT NULL,
    idx   bigint NOT NULL,
    data  bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

-- The single writer's state: tree size, root and frontier (roots of the
-- perfect subtrees of the current tree, largest first, concatenated).
CREATE TABLE log_state (
    id        smallint PRIMARY KEY CHECK (id = 1),
    size      bigint NOT NULL,
    root      bytea NOT NULL,
    frontier  bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO log_state (id, size, root, frontier)
VALUES (1, 0, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'), ''::bytea);

-- Every signed checkpoint (C2SP tlog-checkpoint as a signed note), all kept.
CREATE TABLE checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea NOT NULL,
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Witness cosignatures (C2SP tlog-cosignature), stored beside checkpoints.
CREATE TABLE cosignatures (
    checkpoint_size bigint NOT NULL REFERENCES checkpoints(size),
    witness         text NOT NULL,
    key_id          text NOT NULL,
    cosigned_at     bigint NOT NULL,
    signature_line  text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (checkpoint_size, witness)
);

-- Rejected input, kept with its reason (never dropped).  raw is stored as
-- data; nothing in it is ever executed or interpolated.
CREATE TABLE quarantine (
    id           bigserial PRIMARY KEY,
    raw_sha256   bytea NOT NULL UNIQUE,
    event_id     text,
    publisher_id text,
    event_type   text,
    reason       text NOT NULL,
    message      text NOT NULL,
    raw          bytea NOT NULL,
    source       text NOT NULL,
    deliveries   integer NOT NULL DEFAULT 1,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_publisher ON quarantine (publisher_id, received_at DESC);
CREATE INDEX quarantine_reason ON quarantine (reason);

-- Duplicates seen (same event id, same bytes): acknowledged, not appended.
CREATE TABLE duplicate_counts (
    event_id     text PRIMARY KEY,
    publisher_id text NOT NULL,
    deliveries   integer NOT NULL
);

-- Consumer progress, written in the same transaction as the effects
-- (ADR 0002).  topic_id tells one incarnation of a topic from the next.
CREATE TABLE consumer_progress (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    topic_id    text NOT NULL DEFAULT '',
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Per-publisher sequence numbers seen, for gap detection.
CREATE TABLE publisher_sequences (
    publisher_id text PRIMARY KEY,
    max_seq      bigint NOT NULL,
    accepted     bigint NOT NULL,
    last_event_time timestamptz,
    last_accepted_at timestamptz
);

-- Accepted events a reconciler has not yet confirmed; re-forwarded when
-- they linger (the broker may have lost them).  Deleted by the reconciler in
-- the transaction that applies the event.
CREATE TABLE pending_reconcile (
    event_id    text PRIMARY KEY,
    idx         bigint NOT NULL,
    event_type  text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_reconcile_age ON pending_reconcile (accepted_at);
