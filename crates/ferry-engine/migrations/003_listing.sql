-- Listing a pipeline's executions reads only this index: it holds every column a list shows,
-- so the newest 50 are a few adjacent index pages instead of 50 rows scattered through a
-- table whose rows carry their pipeline's definition.

DROP INDEX executions_by_pipeline;
CREATE INDEX executions_listing ON executions
    (pipeline, created_ms DESC, seq DESC, id, status, revision, trigger, branch, reason, updated_ms);
