-- Demo hotels, seeded on first start so the API is usable from /docs straight away.
INSERT INTO "{schema}".hotels (id, name, city, currency) VALUES
    (1, 'Hotel Aurora', 'Lisbon', 'EUR'),
    (2, 'Alpine Lodge', 'Innsbruck', 'EUR'),
    (3, 'Harbour View', 'Copenhagen', 'EUR')
ON CONFLICT (id) DO NOTHING;

INSERT INTO "{schema}".room_types (hotel_id, code, name, price_per_night, total_rooms) VALUES
    (1, 'standard', 'Standard double', 120.00, 20),
    (1, 'deluxe', 'Deluxe with river view', 190.00, 8),
    (1, 'suite', 'Aurora suite', 350.00, 2),
    (2, 'standard', 'Mountain-view double', 140.00, 12),
    (2, 'family', 'Family room', 210.00, 4),
    (3, 'standard', 'Harbour double', 160.00, 15),
    (3, 'deluxe', 'Corner deluxe', 240.00, 5)
ON CONFLICT (hotel_id, code) DO NOTHING;
