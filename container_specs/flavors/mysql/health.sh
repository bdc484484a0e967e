#!/bin/sh
# HEALTHCHECK wrapper: run the probe (e.g. `mariadb-admin ping --silent`) over TCP on the loopback.
# The server the entrypoint runs while initialising has networking off, so this reports healthy only
# once initialisation is over. A ping needs no password: an "access denied" answer still means alive.
exec "$@" --protocol=tcp --host=127.0.0.1
