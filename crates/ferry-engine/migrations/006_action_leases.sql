-- Each action attempt the scheduler wants run, and the worker that holds it. A worker leases
-- a row before it runs the action and renews the lease while it runs; a lease whose
-- `expires_ms` has passed may be taken by another worker, which reconciles the action (its
-- run row says it started) before anything is retried. `portable`: the action's artifacts
-- are in a store every machine reads (S3), so any worker may run it; otherwise only the
-- execution's driver does. `done` is set with the action run's final status.
CREATE TABLE action_leases (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    stage TEXT NOT NULL,
    action TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    portable INTEGER NOT NULL,
    queued_ms INTEGER NOT NULL,
    worker TEXT,
    expires_ms INTEGER,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, stage, action, attempt)
);
CREATE INDEX action_leases_open ON action_leases (queued_ms) WHERE done = 0;
