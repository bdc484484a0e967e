#!/usr/bin/env bash
# guestforge MariaDB entrypoint: the runtime contract of the official mariadb image, run as the
# (non-root) service user the image declares. Environment (each also as NAME_FILE; MYSQL_* aliases):
#   MARIADB_ROOT_PASSWORD               root password; one of the next two is needed without it:
#   MARIADB_RANDOM_ROOT_PASSWORD        generate one and print it (GENERATED ROOT PASSWORD: ...)
#   MARIADB_ALLOW_EMPTY_ROOT_PASSWORD   allow an empty root password (not recommended)
#   MARIADB_ROOT_HOST                   host part of the network root account (default %)
#   MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD   a database and a user with all rights on it
#   MARIADB_INITDB_SKIP_TZINFO          do not load time zone tables (they load only where tzdata is)
# On first start (no mysql/ in the data directory) the system tables are created without anonymous
# users or test database, and /docker-entrypoint-initdb.d/*.sql[.gz|.xz|.zst] and *.sh run in name
# order; later starts skip all of that.
set -Eeuo pipefail

# shellcheck source=../common/entrypoint-lib.sh
. /usr/local/lib/guestforge/entrypoint-lib.sh

# MARIADB_<suffix> from MARIADB_<suffix>[_FILE], else from the MySQL name MYSQL_<alias>[_FILE]
# (alias defaults to the same suffix); exported as MARIADB_<suffix>.
load_env() {
	env_value "MARIADB_$1" "MYSQL_${2:-$1}"
	export "MARIADB_$1=${REPLY:-${3-}}"
}

wants_help() {
	local arg
	for arg; do
		case "$arg" in -'?'|--help|--print-defaults|-V|--version) return 0 ;; esac
	done
	return 1
}

# The value the server would use for option $1, given its command line ("$@" after $1): the
# variables table at the end of --verbose --help (lines that start in the first column).
server_option() {
	local option=$1
	shift
	"$@" --verbose --help 2>/dev/null | awk -v opt="$option" '/^[^ \t]/ && $1 == opt { print $2 }'
}

# SQL string literal and identifier quoting.
sql_string() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

# The client on the init server's socket as root (password from MYSQL_PWD once it is set).
sql() { mariadb --protocol=socket --socket="$SOCKET" --user=root --batch --skip-column-names "$@"; }

check_env() {
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
		&& [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		die "MARIADB_ROOT_PASSWORD is not set: set it (or MARIADB_ROOT_PASSWORD_FILE, MYSQL_ROOT_PASSWORD)," \
			"or set MARIADB_RANDOM_ROOT_PASSWORD=1 to generate one," \
			"or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 to allow an empty root password (not recommended)"
	fi
	if [ "$MARIADB_USER" = root ]; then
		die "MARIADB_USER=root: root is created from MARIADB_ROOT_PASSWORD; choose another user name"
	fi
	if [ -n "$MARIADB_PASSWORD" ] && [ -z "$MARIADB_USER" ]; then
		say "WARNING: MARIADB_PASSWORD is set but MARIADB_USER is not; no user is created"
	fi
}

start_init_server() {
	"$@" --skip-networking --socket="$SOCKET" --default-time-zone=SYSTEM --wsrep-on=OFF --skip-log-bin \
		--expire-logs-days=0 --skip-slave-start --loose-innodb-buffer-pool-load-at-startup=0 &
	INIT_PID=$!
	local i
	for i in $(seq 60); do
		if sql --database=mysql <<<'SELECT 1' >/dev/null 2>&1; then return 0; fi
		kill -0 "$INIT_PID" 2>/dev/null || die "the server stopped during initialisation (see the log above)"
		sleep 1
	done
	die "the server did not accept connections within 60s during initialisation"
}

setup_accounts() {
	if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ROOT_PASSWORD" ]; then
		MARIADB_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
		export MARIADB_ROOT_PASSWORD
		say "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
	fi
	local pw host statements drop
	pw=$(sql_string "$MARIADB_ROOT_PASSWORD")
	host=$(sql_string "$MARIADB_ROOT_HOST")
	# Every account but root@localhost and the system ones goes: anonymous users, root@<hostname>,
	# root@127.0.0.1 / ::1 and the socket-authenticated mysql@localhost.
	drop=$(sql --database=mysql <<<"SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';') FROM user
		WHERE NOT (User = 'root' AND Host = 'localhost') AND User NOT IN ('mariadb.sys', 'mysql.sys');")
	statements="SET @@SESSION.SQL_LOG_BIN = 0;
		$drop
		DROP DATABASE IF EXISTS test;
		ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
	if [ "$MARIADB_ROOT_HOST" != localhost ]; then
		statements+="
		CREATE USER 'root'@$host IDENTIFIED BY $pw;
		GRANT ALL ON *.* TO 'root'@$host WITH GRANT OPTION;
		GRANT PROXY ON ''@'%' TO 'root'@$host WITH GRANT OPTION;"
	fi
	if [ -n "$MARIADB_DATABASE" ]; then
		statements+="
		CREATE DATABASE IF NOT EXISTS $(sql_ident "$MARIADB_DATABASE");"
	fi
	if [ -n "$MARIADB_USER" ]; then
		statements+="
		CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"
		if [ -n "$MARIADB_DATABASE" ]; then
			statements+="
		GRANT ALL ON $(sql_ident "$MARIADB_DATABASE").* TO $(sql_string "$MARIADB_USER")@'%';"
		fi
	fi
	sql --database=mysql <<<"$statements"
	export MYSQL_PWD=$MARIADB_ROOT_PASSWORD
	if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ] && [ -d /usr/share/zoneinfo ]; then
		mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | sql --database=mysql
	fi
}

initialise() {
	check_env
	say "initialising the data directory $DATADIR"
	mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal --skip-test-db \
		--default-time-zone=SYSTEM --enforce-storage-engine= --skip-log-bin --expire-logs-days=0 \
		--loose-innodb-buffer-pool-load-at-startup=0 --loose-innodb-buffer-pool-dump-at-shutdown=0 "${@:2}"
	start_init_server "$@"
	setup_accounts
	run_init_files sql ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"}
	kill -TERM "$INIT_PID"
	wait "$INIT_PID" || die "the initialisation server did not stop cleanly"
	unset MYSQL_PWD
	say "MariaDB init process complete; ready for start up"
}

if [ "${1:0:1}" = - ]; then
	set -- mariadbd "$@"
fi

if [[ "$1" == mariadbd || "$1" == mysqld ]] && ! wants_help "$@"; then
	[ "$(id -u)" != 0 ] || die "MariaDB does not run as root here; run the container as the image's user"
	load_env ROOT_PASSWORD
	load_env ALLOW_EMPTY_ROOT_PASSWORD ALLOW_EMPTY_PASSWORD
	load_env RANDOM_ROOT_PASSWORD
	load_env ROOT_HOST ROOT_HOST %
	load_env DATABASE
	load_env USER
	load_env PASSWORD
	load_env INITDB_SKIP_TZINFO
	DATADIR=$(server_option datadir "$@")
	SOCKET=$(server_option socket "$@")
	[ -n "$DATADIR" ] || die "cannot determine the data directory from the server configuration"
	mkdir -p "$DATADIR" || die "cannot create the data directory $DATADIR as uid $(id -u)"
	[ -w "$DATADIR" ] || die "the data directory $DATADIR is not writable by uid $(id -u); give the volume to that uid"
	if [ -d "$DATADIR/mysql" ]; then
		say "$DATADIR holds a database; skipping initialisation"
	else
		initialise "$@"
	fi
fi

exec "$@"
