"""The dead-letter console: server-rendered pages (Jinja2) with htmx, served by the booking
service under ``/admin/console``. It uses the dead-letter library (shared/deadletters/), as
the admin API does, and has no path of its own to the broker."""
