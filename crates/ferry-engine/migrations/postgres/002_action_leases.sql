-- The action queue and its leases; see migrations/006_action_leases.sql. Workers take a row
-- with `FOR UPDATE SKIP LOCKED`, so two never take the same one.
CREATE TABLE action_leases (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    stage        TEXT NOT NULL,
    action       TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    portable     BOOLEAN NOT NULL,
    queued_ms    BIGINT NOT NULL,
    worker       TEXT,
    expires_ms   BIGINT,
    done         BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (execution_id, stage, action, attempt)
);
CREATE INDEX action_leases_open ON action_leases (queued_ms) WHERE NOT done;
