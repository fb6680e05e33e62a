-- Money paid out, valued in the send currency (send amount x paid / promised),
-- so the overview can show money sent and money paid side by side.
ALTER TABLE summary_corridor_day ADD COLUMN paid_value bigint NOT NULL DEFAULT 0;
