-- ferry's state: executions as a persisted state machine, artifacts, approvals and the
-- release ledger. Times are integer milliseconds since the Unix epoch. docs/engine.md
-- describes each table.

CREATE TABLE executions (
    id             TEXT PRIMARY KEY,          -- "<pipeline>-<seq>"
    pipeline       TEXT NOT NULL,
    seq            INTEGER NOT NULL,          -- 1, 2, … per pipeline
    revision       TEXT NOT NULL,             -- what the source stage checks out
    trigger        TEXT NOT NULL,             -- who or what started it
    status         TEXT NOT NULL,             -- InProgress | Succeeded | Failed | Stopped | Superseded
    reason         TEXT,                      -- why it ended, in words
    definition     TEXT NOT NULL,             -- the pipeline (JSON) as it was when the execution started
    stop_requested TEXT,                      -- NULL | graceful | forced
    driver         TEXT,                      -- the process driving it ("pid@host")
    heartbeat_ms   INTEGER,                   -- the driver's last sign of life
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    UNIQUE (pipeline, seq)
);

CREATE TABLE stage_runs (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    stage        TEXT NOT NULL,
    position     INTEGER NOT NULL,
    status       TEXT NOT NULL,               -- Pending | InProgress | Succeeded | Failed | Stopped | Superseded
    started_ms   INTEGER,
    ended_ms     INTEGER,
    PRIMARY KEY (execution_id, stage)
);

CREATE TABLE action_runs (
    execution_id    TEXT NOT NULL REFERENCES executions(id),
    stage           TEXT NOT NULL,
    action          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,         -- 1, then 2 … on retry
    status          TEXT NOT NULL,            -- InProgress | AwaitingApproval | Succeeded | Failed | Stopped
    idempotency_key TEXT NOT NULL,            -- derived from (execution, stage, action, attempt)
    outputs         TEXT,                     -- JSON, secrets masked
    error           TEXT,
    log_path        TEXT,
    started_ms      INTEGER NOT NULL,
    ended_ms        INTEGER,
    PRIMARY KEY (execution_id, stage, action, attempt)
);

CREATE TABLE artifacts (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,               -- of the plaintext zip: the content address
    size         INTEGER NOT NULL,
    location     TEXT NOT NULL,               -- where the backend keeps the ciphertext
    envelope     TEXT NOT NULL,               -- JSON: how to decrypt it (wrapped data key, nonces)
    produced_by  TEXT NOT NULL,               -- "stage.action"
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE approvals (
    execution_id     TEXT NOT NULL REFERENCES executions(id),
    stage            TEXT NOT NULL,
    action           TEXT NOT NULL,
    status           TEXT NOT NULL,           -- Pending | Approved | Rejected | Expired
    approvers        TEXT NOT NULL,           -- JSON list; empty: anyone
    comment_required INTEGER NOT NULL,
    digests          TEXT NOT NULL,           -- JSON {artifact: sha256} at the time of the request
    requested_ms     INTEGER NOT NULL,
    deadline_ms      INTEGER NOT NULL,
    identity         TEXT,
    comment          TEXT,
    decided_ms       INTEGER,
    PRIMARY KEY (execution_id, stage, action)
);

-- One execution holds a stage at a time (modes superseded and queued).
CREATE TABLE stage_locks (
    pipeline     TEXT NOT NULL,
    stage        TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    PRIMARY KEY (pipeline, stage)
);

CREATE TABLE stage_waiters (
    pipeline     TEXT NOT NULL,
    stage        TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (pipeline, stage, execution_id)
);

-- The release ledger: what was deployed where, from which execution, approved by whom.
CREATE TABLE releases (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline         TEXT NOT NULL,
    environment      TEXT NOT NULL,
    target           TEXT NOT NULL,           -- e.g. "lambda:orders-fn:live", "ecs:orders-dev/orders-api"
    execution_id     TEXT NOT NULL,
    revision         TEXT NOT NULL,
    version          TEXT NOT NULL,           -- Lambda version, task definition ARN, …
    digest           TEXT,                    -- code sha256, image digest
    previous_version TEXT,
    details          TEXT,                    -- JSON
    approved_by      TEXT,
    outcome          TEXT NOT NULL,           -- Deployed | RolledBack | Failed
    verified         INTEGER NOT NULL,        -- 1: it ran without alarms through its bake / steady state
    created_ms       INTEGER NOT NULL
);
CREATE INDEX releases_by_target ON releases (pipeline, environment, target, id);

-- Every transition, in order: the execution's history.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    stage        TEXT,
    action       TEXT,
    kind         TEXT NOT NULL,
    detail       TEXT,
    at_ms        INTEGER NOT NULL
);
