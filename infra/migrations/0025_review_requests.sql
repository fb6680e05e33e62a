-- Issue 14.8: the dashboard holds no private key and no writer credential.
-- A signed-in reviewer's decision becomes a REQUEST, written by the dashboard's
-- reviewer-desk role ({{review}}), which can do only what sign-in and requests
-- need; a processors' timer (stream_processors/agents/review_requests.py)
-- applies each request with the writer's credential and the platform's key,
-- after checking that the session it names is live (so the request is the
-- reviewer's, not the dashboard's say) and that the flag workflow allows it.
DO $$ BEGIN
  CREATE ROLE {{review}} LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE TABLE review_requests (
    id             bigserial PRIMARY KEY,
    flag_id        text NOT NULL CHECK (length(flag_id) <= 64),
    new_status     text NOT NULL CHECK (length(new_status) <= 32),
    reason_code    text NOT NULL CHECK (length(reason_code) <= 64),
    session_sha256 bytea NOT NULL CHECK (length(session_sha256) = 32),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    -- NULL while pending; then applied, stale (the flag moved first or is gone),
    -- signed_out (no live session), or invalid (no reviewer action).
    outcome        text,
    reviewer_id    text,            -- who it was applied for (from the session, never from the request)
    event_id       text,            -- the flag.changed it was logged as
    done_at        timestamptz
);
CREATE INDEX review_requests_pending ON review_requests (id) WHERE outcome IS NULL;

GRANT USAGE ON SCHEMA {{schema}} TO {{review}};
-- Sign-in: read accounts (to check a password), count and record attempts, open and close sessions.
GRANT SELECT (username, reviewer_id, password_hash, disabled_at) ON reviewers TO {{review}};
GRANT UPDATE (password_hash) ON reviewers TO {{review}};
GRANT SELECT, INSERT, DELETE ON reviewer_attempts TO {{review}};
GRANT SELECT, INSERT, DELETE ON reviewer_sessions TO {{review}};
-- Requests: insert them, and read back what became of them; nothing else.
GRANT INSERT (flag_id, new_status, reason_code, session_sha256) ON review_requests TO {{review}};
GRANT SELECT (id, flag_id, new_status, outcome, requested_at, done_at) ON review_requests TO {{review}};
GRANT USAGE ON SEQUENCE review_requests_id_seq TO {{review}};
