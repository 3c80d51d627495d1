-- POST /bookings places a booking in one statement (services/booking/placing.py): the
-- idempotency claim, every night's reservation, the booking, its token and its outbox row.
-- A statement outside a transaction is all or nothing, so when a night turns out to be taken
-- (a concurrent booking got the last room after the statement began) it must fail, not
-- commit the nights it did take: this check raises, with its own SQLSTATE, and the whole
-- statement is undone.
CREATE OR REPLACE FUNCTION "{schema}".all_nights_taken(taken bigint, wanted integer)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF taken < wanted THEN
        RAISE EXCEPTION 'only % of % nights could be reserved', taken, wanted
            USING ERRCODE = 'HB409';
    END IF;
    RETURN true;
END
$$;
