CREATE TABLE IF NOT EXISTS "{schema}".hotels (
    id        integer PRIMARY KEY,
    name      text NOT NULL,
    city      text NOT NULL,
    currency  char(3) NOT NULL DEFAULT 'EUR'
);

CREATE TABLE IF NOT EXISTS "{schema}".room_types (
    hotel_id         integer NOT NULL REFERENCES "{schema}".hotels (id),
    code             text NOT NULL,
    name             text NOT NULL,
    price_per_night  numeric(10, 2) NOT NULL CHECK (price_per_night > 0),
    total_rooms      integer NOT NULL CHECK (total_rooms >= 0),
    PRIMARY KEY (hotel_id, code)
);

-- One row per room type and night once anything is booked for it. The CHECK is the last
-- line of defence against overbooking; the conditional upsert in the repository is the first.
CREATE TABLE IF NOT EXISTS "{schema}".room_nights (
    hotel_id   integer NOT NULL,
    room_type  text NOT NULL,
    night      date NOT NULL,
    reserved   integer NOT NULL,
    capacity   integer NOT NULL,
    PRIMARY KEY (hotel_id, room_type, night),
    FOREIGN KEY (hotel_id, room_type) REFERENCES "{schema}".room_types (hotel_id, code),
    CHECK (reserved >= 0 AND reserved <= capacity)
);

CREATE TABLE IF NOT EXISTS "{schema}".bookings (
    id           uuid PRIMARY KEY,
    hotel_id     integer NOT NULL,
    room_type    text NOT NULL,
    check_in     date NOT NULL,
    check_out    date NOT NULL,
    nights       integer NOT NULL CHECK (nights > 0),
    guest_name   text NOT NULL,
    guest_email  text NOT NULL,
    total_price  numeric(12, 2) NOT NULL,
    currency     char(3) NOT NULL,
    status       text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (hotel_id, room_type) REFERENCES "{schema}".room_types (hotel_id, code),
    CHECK (check_out > check_in)
);

CREATE TABLE IF NOT EXISTS "{schema}".idempotency_keys (
    key           text PRIMARY KEY,
    request_hash  text NOT NULL,
    booking_id    uuid REFERENCES "{schema}".bookings (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written in the booking's transaction, published by the relay.
CREATE TABLE IF NOT EXISTS "{schema}".outbox (
    id                bigserial PRIMARY KEY,
    event_id          uuid NOT NULL UNIQUE,
    event_type        text NOT NULL,
    booking_id        uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    body              text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    publish_attempts  integer NOT NULL DEFAULT 0,
    last_error        text
);
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON "{schema}".outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_booking_idx ON "{schema}".outbox (booking_id);
