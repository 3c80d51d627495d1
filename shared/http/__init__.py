"""The small HTTP server every consumer process runs for health, metrics (and the feed)."""
