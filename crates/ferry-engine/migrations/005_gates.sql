-- Each environment stage's gates, as their action last found them: `holds` is a JSON array of
-- reasons (empty: open). `ferry override` sets the override columns; the gate action then
-- lets the release in, and the stage's releases carry the override into the ledger.
CREATE TABLE gates (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    stage TEXT NOT NULL,
    holds TEXT NOT NULL,
    checked_ms INTEGER NOT NULL,
    override_identity TEXT,
    override_reason TEXT,
    override_ms INTEGER,
    PRIMARY KEY (execution_id, stage)
);

-- Who let the release past its stage's gates, and why: `identity: reason`.
ALTER TABLE releases ADD COLUMN gate_override TEXT;
