-- ferry's state on PostgreSQL: the same tables as the SQLite schema (`../00*.sql`, which
-- documents each column) as they stand after its fifth migration. Times are integer
-- milliseconds since the Unix epoch; JSON is kept as text, read and written as in SQLite.

CREATE TABLE executions (
    id             TEXT PRIMARY KEY,
    pipeline       TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    revision       TEXT NOT NULL,
    trigger        TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT,
    definition     TEXT NOT NULL,
    stop_requested TEXT,
    driver         TEXT,
    heartbeat_ms   BIGINT,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL,
    started_by     TEXT NOT NULL DEFAULT '[]',
    branch         TEXT,
    UNIQUE (pipeline, seq)
);
CREATE INDEX executions_by_time ON executions (created_ms DESC, seq DESC);
CREATE INDEX executions_listing ON executions (pipeline, created_ms DESC, seq DESC);

CREATE TABLE stage_runs (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    stage        TEXT NOT NULL,
    position     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    started_ms   BIGINT,
    ended_ms     BIGINT,
    PRIMARY KEY (execution_id, stage)
);

CREATE TABLE action_runs (
    execution_id    TEXT NOT NULL REFERENCES executions(id),
    stage           TEXT NOT NULL,
    action          TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    outputs         TEXT,
    error           TEXT,
    log_path        TEXT,
    started_ms      BIGINT NOT NULL,
    ended_ms        BIGINT,
    PRIMARY KEY (execution_id, stage, action, attempt)
);

CREATE TABLE artifacts (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    location     TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    produced_by  TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE approvals (
    execution_id     TEXT NOT NULL REFERENCES executions(id),
    stage            TEXT NOT NULL,
    action           TEXT NOT NULL,
    status           TEXT NOT NULL,
    approvers        TEXT NOT NULL,
    comment_required BIGINT NOT NULL,
    digests          TEXT NOT NULL,
    requested_ms     BIGINT NOT NULL,
    deadline_ms      BIGINT NOT NULL,
    identity         TEXT,
    comment          TEXT,
    decided_ms       BIGINT,
    required         BIGINT NOT NULL DEFAULT 1,
    forbidden        TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (execution_id, stage, action)
);

CREATE TABLE approval_votes (
    id           BIGSERIAL,                    -- the order votes were cast in (SQLite's rowid)
    execution_id TEXT NOT NULL,
    stage        TEXT NOT NULL,
    action       TEXT NOT NULL,
    identity     TEXT NOT NULL,
    approve      BIGINT NOT NULL,
    comment      TEXT,
    digests      TEXT NOT NULL,
    decided_ms   BIGINT NOT NULL,
    PRIMARY KEY (execution_id, stage, action, identity),
    FOREIGN KEY (execution_id, stage, action) REFERENCES approvals (execution_id, stage, action)
);

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
    seq          BIGINT NOT NULL,
    PRIMARY KEY (pipeline, stage, execution_id)
);

CREATE TABLE releases (
    id               BIGSERIAL PRIMARY KEY,
    pipeline         TEXT NOT NULL,
    environment      TEXT NOT NULL,
    target           TEXT NOT NULL,
    execution_id     TEXT NOT NULL,
    revision         TEXT NOT NULL,
    version          TEXT NOT NULL,
    digest           TEXT,
    previous_version TEXT,
    details          TEXT,
    approved_by      TEXT,
    outcome          TEXT NOT NULL,
    verified         BIGINT NOT NULL,
    created_ms       BIGINT NOT NULL,
    gate_override    TEXT
);
CREATE INDEX releases_by_target ON releases (pipeline, environment, target, id);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    execution_id TEXT NOT NULL,
    stage        TEXT,
    action       TEXT,
    kind         TEXT NOT NULL,
    detail       TEXT,
    at_ms        BIGINT NOT NULL
);
CREATE INDEX events_by_execution ON events (execution_id, id);

CREATE TABLE release_blocks (
    execution_id TEXT PRIMARY KEY REFERENCES executions(id),
    reason       TEXT NOT NULL,
    identity     TEXT NOT NULL,
    blocked_ms   BIGINT NOT NULL
);

CREATE TABLE gates (
    execution_id      TEXT NOT NULL REFERENCES executions(id),
    stage             TEXT NOT NULL,
    holds             TEXT NOT NULL,
    checked_ms        BIGINT NOT NULL,
    override_identity TEXT,
    override_reason   TEXT,
    override_ms       BIGINT,
    PRIMARY KEY (execution_id, stage)
);
