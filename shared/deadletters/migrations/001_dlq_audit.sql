-- Every replay and purge, from the CLI or the admin API. A row is written when the
-- operation starts and completed when it ends, so a run that was killed stays visible
-- as 'running' with no finished_at.
CREATE TABLE IF NOT EXISTS "{schema}".dlq_audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    operation    text NOT NULL CHECK (operation IN ('replay', 'purge')),
    queue        text NOT NULL,
    filters      jsonb NOT NULL,
    dry_run      boolean NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    seen         integer,
    replayed     integer,
    purged       integer,
    skipped      integer,
    failed       integer,
    error        text,
    finished_at  timestamptz
);

CREATE INDEX IF NOT EXISTS dlq_audit_at ON "{schema}".dlq_audit (at DESC);
