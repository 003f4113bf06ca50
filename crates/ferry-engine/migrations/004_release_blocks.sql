-- Releases marked bad (`ferry release block`): what one execution built. While its row is
-- here the release enters no environment, no approval of it is accepted, and no rollback
-- returns to it. `ferry release unblock` deletes the row; both leave an event row on the
-- execution, which is the audit trail.
CREATE TABLE release_blocks (
    execution_id TEXT PRIMARY KEY REFERENCES executions(id),
    reason TEXT NOT NULL,
    identity TEXT NOT NULL,
    blocked_ms INTEGER NOT NULL
);
