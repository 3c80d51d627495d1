#!/usr/bin/env bash
# TEST FIXTURE: as the official image's entrypoint does, hand a fresh data volume to the
# rabbitmq user and run the server as that user.
set -Eeuo pipefail
if [ "${1:-}" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
	chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
	exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$BASH_SOURCE" "$@"
fi
exec "$@"
