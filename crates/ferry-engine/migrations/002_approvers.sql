-- Approvals by several people (`approval.required`), no approving one's own change
-- (`approval.forbid_self`), who started each execution and from which branch; indexes for
-- listing executions.

ALTER TABLE executions ADD COLUMN started_by TEXT NOT NULL DEFAULT '[]';  -- JSON list of identities
ALTER TABLE executions ADD COLUMN branch TEXT;                           -- the branch or tag it runs

ALTER TABLE approvals ADD COLUMN required INTEGER NOT NULL DEFAULT 1;     -- distinct approvers needed
ALTER TABLE approvals ADD COLUMN forbidden TEXT NOT NULL DEFAULT '[]';    -- JSON list: may not decide

-- Each identity's decision on an approval, in order.
CREATE TABLE approval_votes (
    execution_id TEXT NOT NULL,
    stage        TEXT NOT NULL,
    action       TEXT NOT NULL,
    identity     TEXT NOT NULL,
    approve      INTEGER NOT NULL,
    comment      TEXT,
    digests      TEXT NOT NULL,                 -- JSON {artifact: sha256} approved
    decided_ms   INTEGER NOT NULL,
    PRIMARY KEY (execution_id, stage, action, identity),
    FOREIGN KEY (execution_id, stage, action) REFERENCES approvals (execution_id, stage, action)
);

CREATE INDEX executions_by_pipeline ON executions (pipeline, created_ms DESC, seq DESC);
CREATE INDEX executions_by_time ON executions (created_ms DESC, seq DESC);
