-- The public dashboard reads with a role that can only SELECT public tables.
-- Quarantined raw bytes and anything about reviewers stay out of its reach.
GRANT USAGE ON SCHEMA {{schema}} TO {{reader}};
GRANT SELECT ON log_entries, log_tiles, log_state, checkpoints, cosignatures, publisher_sequences,
    consumer_progress, flags, flag_history, summary_flags, transfers, project_contributions, projects,
    project_parties, milestones, summary_corridor_day, duplicate_counts, clock_partitions, clock_override
    TO {{reader}};
GRANT SELECT (id, event_id, publisher_id, event_type, reason, message, source, deliveries, received_at)
    ON quarantine TO {{reader}};
