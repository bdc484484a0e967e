#!/bin/sh
# HEALTHCHECK wrapper: run the probe (e.g. `redis-cli ping`) authenticated with the container's
# password (REDIS_PASSWORD[_FILE] or VALKEY_PASSWORD[_FILE], passed to the client in REDISCLI_AUTH,
# not on its command line). A ping is healthy only if the answer is PONG: redis-cli exits 0 on
# error replies such as NOAUTH or LOADING.
for name in REDIS_PASSWORD VALKEY_PASSWORD; do
	eval "value=\${$name:-}; file=\${${name}_FILE:-}"
	if [ -z "$value" ] && [ -n "$file" ] && [ -r "$file" ]; then
		value=$(cat "$file")
	fi
	if [ -n "$value" ]; then
		REDISCLI_AUTH=$value
		export REDISCLI_AUTH
		break
	fi
done
case "$*" in
	*" ping"|*" PING")
		reply=$("$@") || exit 1
		[ "$reply" = PONG ] ;;
	*) exec "$@" ;;
esac
