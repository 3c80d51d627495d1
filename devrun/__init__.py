"""Running the whole system on a developer's machine (`make run`, `make services`): not part of
the product, never in the image. deploy/ holds what production uses; this package holds what
only a local run uses: the runner (run.py: ``python -m devrun.run``), its process supervisor,
the checks that start the machine's PostgreSQL and RabbitMQ (local_services.py), the mail
catcher, and broker_limits.py, which gives the machine's own RabbitMQ the compose broker's
limits.
"""
