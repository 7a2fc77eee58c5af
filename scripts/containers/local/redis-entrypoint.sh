#!/bin/sh
# redis-server without a config file: listen on all interfaces, protected mode off (the
# container network is the boundary), everything else from the command line
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --bind 0.0.0.0 --protected-mode no --dir /data "$@"
fi
exec "$@"
