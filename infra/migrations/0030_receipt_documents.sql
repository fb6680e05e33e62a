-- Receipt documents (issue 18): the static files receipts/<2 hex>/<digest>.json
-- the light receipt check page reads.  The timer that writes them
-- (stream_processors/agents/receipt_documents.py) reads the log itself, in
-- order, so it needs no reconciler: which leaves are about which transfer,
-- each transfer's receipt digest (from its transfer.sent), and which
-- transfers changed since their document was last written.  Nothing here is
-- public beyond what the log holds; the dashboard's reader role has no grant.
CREATE TABLE receipt_doc_state (
    id      smallint PRIMARY KEY CHECK (id = 1),
    scanned bigint NOT NULL           -- leaves [0, scanned) have been indexed below
);
INSERT INTO receipt_doc_state (id, scanned) VALUES (1, 0);

CREATE TABLE receipt_doc_transfers (
    transfer_id     text PRIMARY KEY,
    receipt_digest  text,             -- from the first transfer.sent in the log; NULL until it is logged
    written_size    bigint,           -- tree size of the checkpoint its document was last written against
    dirty           boolean NOT NULL DEFAULT true
);
CREATE INDEX receipt_doc_dirty ON receipt_doc_transfers (transfer_id) WHERE dirty AND receipt_digest IS NOT NULL;

-- Log indices of each transfer's events and of the flag.changed events about it.
CREATE TABLE receipt_doc_leaves (
    transfer_id text NOT NULL,
    idx         bigint NOT NULL,
    PRIMARY KEY (transfer_id, idx)
);
