-- The dead-letter console's index: a derived copy of what the dead-letter queues hold. The
-- queues are the truth; a sync replaces a queue's rows with what it read there, and every
-- retry or purge acts on the queue itself, never on these rows.
CREATE TABLE IF NOT EXISTS "{schema}".dead_letters (
    id               bigserial PRIMARY KEY,
    queue            text NOT NULL,
    message_id       text,
    fingerprint      text NOT NULL,
    consumer         text NOT NULL,
    event_type       text,
    event_version    integer,
    exception_type   text,
    frame            text,
    reason           text,
    reason_pattern   text NOT NULL,
    exception        text,
    booking_id       text,
    attempts         integer NOT NULL,
    replay_count     integer NOT NULL,
    first_failure_at timestamptz,
    last_failure_at  timestamptz NOT NULL,
    headers          jsonb NOT NULL,
    body             bytea NOT NULL,
    indexed_at       timestamptz NOT NULL DEFAULT now()
);

-- A group's messages, newest first, paged by (last_failure_at, id): keyset pagination.
CREATE INDEX IF NOT EXISTS dead_letters_group
    ON "{schema}".dead_letters (fingerprint, last_failure_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS dead_letters_booking ON "{schema}".dead_letters (booking_id);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON "{schema}".dead_letters (queue);
CREATE INDEX IF NOT EXISTS dead_letters_message ON "{schema}".dead_letters (message_id);

-- Every parking the syncs have seen, kept after the message left its queue: a message's
-- history in the console (a parking is one (message, queue, last failure) triple).
CREATE TABLE IF NOT EXISTS "{schema}".dead_letter_parkings (
    message_id       text NOT NULL,
    queue            text NOT NULL,
    last_failure_at  timestamptz NOT NULL,
    first_failure_at timestamptz,
    reason           text,
    exception        text,
    frame            text,
    attempts         integer NOT NULL,
    replay_count     integer NOT NULL,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, queue, last_failure_at)
);

-- A group an operator muted (until a time) or archived (until restored).
CREATE TABLE IF NOT EXISTS "{schema}".dead_letter_groups (
    fingerprint  text PRIMARY KEY,
    state        text NOT NULL CHECK (state IN ('muted', 'archived')),
    until        timestamptz,
    actor        text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE "{schema}".dlq_audit DROP CONSTRAINT IF EXISTS dlq_audit_operation_check;
ALTER TABLE "{schema}".dlq_audit ADD CONSTRAINT dlq_audit_operation_check
    CHECK (operation IN ('replay', 'purge', 'mute', 'archive', 'restore', 'edit'));
