-- Issue 14.9: the global sign-in limit counts failed attempts over every user
-- name in the last minute; this index keeps that count cheap under a flood.
CREATE INDEX reviewer_attempts_failed ON reviewer_attempts (attempted_at DESC) WHERE NOT ok;
