CREATE TABLE IF NOT EXISTS "{schema}".vouchers (
    booking_id  uuid PRIMARY KEY,
    event_id    uuid NOT NULL,
    code        text NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'issued',
    issued_at   timestamptz NOT NULL DEFAULT now()
);
