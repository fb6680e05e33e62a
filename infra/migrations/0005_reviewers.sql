-- Reviewer accounts for the watchdog page (never readable by the public role).
CREATE TABLE reviewers (
    username      text PRIMARY KEY,
    reviewer_id   text NOT NULL UNIQUE,      -- rev_ pseudonym used in the public record
    password_hash text NOT NULL,             -- argon2id
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
CREATE TABLE reviewer_attempts (
    username     text NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    ok           boolean NOT NULL
);
CREATE INDEX reviewer_attempts_recent ON reviewer_attempts (username, attempted_at DESC);
CREATE TABLE reviewer_sessions (
    token_sha256 bytea PRIMARY KEY,
    username     text NOT NULL REFERENCES reviewers(username),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
