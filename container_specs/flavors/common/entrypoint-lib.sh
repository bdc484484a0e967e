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
