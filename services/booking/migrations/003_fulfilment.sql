-- The booking service's copy of what the consumers report: their own data stays theirs;
-- this is built only from the events they publish. No foreign keys: events may arrive in
-- any order, and a report must never be refused for it.
CREATE TABLE IF NOT EXISTS "{schema}".fulfilment (
    booking_id         uuid NOT NULL,
    step               text NOT NULL CHECK (step IN ('voucher', 'email', 'notification')),
    status             text NOT NULL CHECK (status IN ('retrying', 'done', 'failed')),
    attempts           integer NOT NULL,
    source_event_type  text NOT NULL,
    last_error         text,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (booking_id, step)
);

CREATE TABLE IF NOT EXISTS "{schema}".vouchers (
    booking_id  uuid PRIMARY KEY,
    code        text NOT NULL,
    pdf         bytea,
    voided_at   timestamptz,
    issued_at   timestamptz NOT NULL
);
