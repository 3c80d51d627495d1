#!/usr/bin/env bash
# TEST FIXTURE: the subset of the official postgres image's entrypoint that
# deploy/compose.yaml relies on. On an empty PGDATA: initdb with POSTGRES_USER and
# POSTGRES_PASSWORD, create POSTGRES_DB, run /docker-entrypoint-initdb.d/* (*.sh executed or
# sourced, *.sql and *.sql.gz through psql) against a server listening on its socket only;
# then PostgreSQL on every address, passwords (scram-sha-256) required from outside.
set -Eeuo pipefail

# VAR or the contents of VAR_FILE (Docker secrets), as the official image reads them.
file_env() {
	local var="$1" default="${2:-}" file_var="${1}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set"
		exit 1
	fi
	local value="$default"
	if [ -n "${!var:-}" ]; then
		value="${!var}"
	elif [ -n "${!file_var:-}" ]; then
		value="$(< "${!file_var}")"
	fi
	export "$var"="$value"
	unset "$file_var"
}

# What a sourced init script may call, as with the official image.
docker_process_sql() {
	local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ -n "${POSTGRES_DB:-}" ]; then
		query_runner+=(--dbname "$POSTGRES_DB")
	fi
	PGHOST= PGHOSTADDR= "${query_runner[@]}" "$@"
}

docker_process_init_files() {
	local f
	shopt -s nullglob
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					echo "$0: running $f"; "$f"
				else
					echo "$0: sourcing $f"; . "$f"
				fi
				;;
			*.sql) echo "$0: running $f"; docker_process_sql -f "$f" ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | docker_process_sql ;;
			*.sql.xz) echo "$0: running $f"; xzcat "$f" | docker_process_sql ;;
			*) echo "$0: ignoring $f" ;;
		esac
	done
}

init_database() {
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
		echo >&2 "error: database is uninitialized and POSTGRES_PASSWORD is not set"
		exit 1
	fi
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		${POSTGRES_INITDB_ARGS:-}
	# Inside the container: trust (initdb's default); from anywhere else: a password.
	printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" \
		>> "$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -w start -o "-c listen_addresses='' -p 5432"
	if [ "$POSTGRES_DB" != postgres ]; then
		POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" \
			<<<'CREATE DATABASE :"db";'
	fi
	docker_process_init_files
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
}

main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
		# A fresh named volume belongs to root: hand it over, then run as postgres.
		mkdir -p "$PGDATA"
		chown postgres:postgres "$PGDATA"
		chmod 700 "$PGDATA"
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
	fi
	if [ "$1" = postgres ]; then
		file_env POSTGRES_PASSWORD
		file_env POSTGRES_USER postgres
		file_env POSTGRES_DB "$POSTGRES_USER"
		if [ ! -s "$PGDATA/PG_VERSION" ]; then
			init_database
		else
			echo "PostgreSQL database directory appears to contain a database; skipping init"
		fi
		unset POSTGRES_PASSWORD
		set -- "$@" -c listen_addresses='*'
	fi
	exec "$@"
}

main "$@"
