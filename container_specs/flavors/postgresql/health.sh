#!/bin/sh
# HEALTHCHECK wrapper: run the probe (e.g. `pg_isready -q`) over TCP on the loopback. The server the
# entrypoint runs while initialising listens on its socket only, so this reports healthy only once
# initialisation is over and the real server accepts connections.
export PGHOST=127.0.0.1
exec "$@"
