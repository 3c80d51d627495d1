-- What a guest needs at the hotel, printed on the voucher and carried by the booking events
-- (their optional stay_details): the address, how to reach the hotel, when a room is ready
-- and must be left, and what cancelling costs. Hotels added without them get the usual times.
ALTER TABLE "{schema}".hotels ADD COLUMN IF NOT EXISTS address text;
ALTER TABLE "{schema}".hotels ADD COLUMN IF NOT EXISTS phone text;
ALTER TABLE "{schema}".hotels ADD COLUMN IF NOT EXISTS email text;
ALTER TABLE "{schema}".hotels ADD COLUMN IF NOT EXISTS check_in_from time NOT NULL DEFAULT '15:00';
ALTER TABLE "{schema}".hotels ADD COLUMN IF NOT EXISTS check_out_until time NOT NULL DEFAULT '11:00';
ALTER TABLE "{schema}".hotels ADD COLUMN IF NOT EXISTS cancellation_policy text;

-- The demo hotels of 002 (fictional addresses and numbers: 555 and example domains).
UPDATE "{schema}".hotels AS h SET
    address = d.address, phone = d.phone, email = d.email,
    check_in_from = d.check_in_from::time, check_out_until = d.check_out_until::time,
    cancellation_policy = d.cancellation_policy
FROM (VALUES
    (1, 'Rua das Flores 12, 1200-195 Lisboa, Portugal', '+351 21 555 0100',
        'reception@aurora.example', '15:00', '11:00',
        'Free cancellation until 48 hours before check-in; later, the first night is charged.'),
    (2, 'Maria-Theresien-Strasse 7, 6020 Innsbruck, Austria', '+43 512 555 0200',
        'stay@alpinelodge.example', '14:00', '10:00',
        'Free cancellation until 7 days before check-in; later, 50% of the stay is charged.'),
    (3, 'Nyhavn 21, 1051 Copenhagen, Denmark', '+45 33 55 50 30',
        'hello@harbourview.example', '16:00', '12:00',
        'Free cancellation until 24 hours before check-in; later, the first night is charged.')
) AS d (id, address, phone, email, check_in_from, check_out_until, cancellation_policy)
WHERE h.id = d.id AND h.address IS NULL;
