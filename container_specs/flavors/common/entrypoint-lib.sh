# Shared by every flavor's docker-entrypoint.sh (sourced, bash): messages, and secrets from the
# environment the way the official images take them (NAME, or NAME_FILE naming a file to read).

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf 'entrypoint: %s\n' "$*"; }

# env_value NAME [ALIAS...]: set REPLY to the value of the first of NAME, NAME_FILE, ALIAS, ALIAS_FILE ...
# that is set. A name given both directly and as NAME_FILE is an error; the _FILE names are unset so
# that the paths do not leak to the server's environment.
env_value() {
	local name file
	REPLY=''
	for name; do
		file="${name}_FILE"
		if [ -n "${!name-}" ] && [ -n "${!file-}" ]; then
			die "both $name and $file are set; set only one"
		fi
		if [ -z "$REPLY" ] && [ -n "${!file-}" ]; then
			[ -r "${!file}" ] || die "$file=${!file} is not a readable file"
			REPLY=$(<"${!file}")
		elif [ -z "$REPLY" ]; then
			REPLY=${!name-}
		fi
		unset "$file"
	done
}

# run_init_files COMMAND...: the /docker-entrypoint-initdb.d contract of the official images, in name
# order: executable *.sh run, other *.sh are sourced, *.sql[.gz|.xz|.zst] are fed to COMMAND on stdin.
run_init_files() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then say "running $f"; "$f"
				else say "sourcing $f"; # shellcheck disable=SC1090
					. "$f"; fi ;;
			*.sql) say "running $f"; "$@" <"$f" ;;
			*.sql.gz) say "running $f"; gzip -dc "$f" | "$@" ;;
			*.sql.xz) say "running $f"; xz -dc "$f" | "$@" ;;
			*.sql.zst) say "running $f"; zstd -dc "$f" | "$@" ;;
			*) say "ignoring $f" ;;
		esac
	done
}
