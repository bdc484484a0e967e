#!/usr/bin/env bash
# guestforge PostgreSQL entrypoint: the runtime contract of the official postgres image, run as the
# (non-root) service user the image declares. Environment:
#   POSTGRES_PASSWORD[_FILE]    superuser password (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER[_FILE]        superuser name (default postgres)
#   POSTGRES_DB[_FILE]          database created at initialisation (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS        extra initdb arguments;  POSTGRES_INITDB_WALDIR: a separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD   pg_hba method for host connections (default scram-sha-256; md5 before 14)
#   PGDATA                      the data directory
# On first start (no $PGDATA/PG_VERSION) the cluster is created and /docker-entrypoint-initdb.d/*.sql,
# *.sql.gz, *.sql.xz, *.sql.zst and *.sh run in name order; later starts skip all of that.
set -Eeuo pipefail

# shellcheck source=../common/entrypoint-lib.sh
. /usr/local/lib/guestforge/entrypoint-lib.sh

# VAR from VAR or VAR_FILE (not both), exported as VAR.
file_env() {
	env_value "$1"
	export "$1=${REPLY:-${2-}}"
}

wants_help() {
	local arg
	for arg; do
		case "$arg" in -'?'|--help|--describe-config|-V|--version) return 0 ;; esac
	done
	return 1
}

server_major() {
	local version
	version=$(postgres -V)        # "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
	version=${version#*) }
	printf '%s\n' "${version%%.*}"
}

init_cluster() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die "POSTGRES_PASSWORD is not set: set it (or POSTGRES_PASSWORD_FILE) to the superuser password," \
			"or set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a password (not recommended)"
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		say "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: anyone who can reach the server connects without a password"
	fi
	local args=(--username="$POSTGRES_USER" --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD")
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		args+=(--waldir="$POSTGRES_INITDB_WALDIR")
	fi
	# POSTGRES_INITDB_ARGS is split into words on purpose (it holds several options); it comes last
	# so that it can override the defaults above.
	# shellcheck disable=SC2206
	args+=(${POSTGRES_INITDB_ARGS:-})
	if [ -n "$POSTGRES_PASSWORD" ]; then
		initdb "${args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
	else
		initdb "${args[@]}"
	fi
	printf '\n# guestforge: connections from other hosts\nhost all all all %s\n' \
		"$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# psql as the superuser over the local socket (trusted) into database $1.
sql() {
	psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username="$POSTGRES_USER" --dbname="$1" "${@:2}"
}

initialise() {
	local port=${PGPORT:-5432} options
	init_cluster
	# A server on the socket only (no TCP), so nothing outside sees a half-initialised database;
	# the container's own server options ("${@}", e.g. -c settings) apply to it too.
	options=$(printf '%q ' -c "listen_addresses=" -p "$port" "$@")
	pg_ctl -D "$PGDATA" -o "$options" -w start
	if [ "$POSTGRES_DB" != postgres ]; then
		sql postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
	fi
	run_init_files sql "$POSTGRES_DB"
	pg_ctl -D "$PGDATA" -m fast -w stop
	say "PostgreSQL init process complete; ready for start up"
}

if [ "${1:0:1}" = - ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ] && ! wants_help "$@"; then
	[ "$(id -u)" != 0 ] || die "PostgreSQL does not run as root; run the container as the image's user (uid $(stat -c %u /var/lib/postgresql))"
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	if [ -z "${POSTGRES_HOST_AUTH_METHOD:-}" ]; then
		if [ "$(server_major)" -ge 14 ]; then POSTGRES_HOST_AUTH_METHOD=scram-sha-256; else POSTGRES_HOST_AUTH_METHOD=md5; fi
	fi
	export POSTGRES_HOST_AUTH_METHOD
	: "${PGDATA:?PGDATA is not set}"
	mkdir -p "$PGDATA" || die "cannot create PGDATA=$PGDATA as uid $(id -u)"
	[ -w "$PGDATA" ] || die "PGDATA=$PGDATA is not writable by uid $(id -u); give the volume to that uid"
	chmod 0700 "$PGDATA" 2>/dev/null || :
	if [ -s "$PGDATA/PG_VERSION" ]; then
		say "$PGDATA holds a database; skipping initialisation"
	else
		initialise "${@:2}"
	fi
fi

exec "$@"
