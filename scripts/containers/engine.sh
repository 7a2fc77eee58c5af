# Sourced by the scripts in scripts/containers/: picks the container engine and its compose.
#   MGS_ENGINE=podman|docker   force one (default: podman when installed, else docker)
# Sets ENGINE, BUILD (array: the build command) and COMPOSE (array: the compose command).
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
die() { echo "error: $*" >&2; exit 1; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

ENGINE=${MGS_ENGINE:-}
if [ -z "$ENGINE" ]; then
  if command -v podman >/dev/null 2>&1; then ENGINE=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker
  else die "no container engine: install podman (apt-get install podman buildah runc) or docker"
  fi
fi
case "$ENGINE" in
  podman)
    # runc and the ulimits this kind of host allows (containers.conf says why); an operator's
    # own CONTAINERS_CONF wins
    if [ -z "${CONTAINERS_CONF:-}" ] && command -v runc >/dev/null 2>&1; then
      export CONTAINERS_CONF="$ROOT/scripts/containers/containers.conf"
    fi
    # --format docker: OCI images drop HEALTHCHECK
    BUILD=(podman build --format docker --layers)
    if command -v podman-compose >/dev/null 2>&1; then COMPOSE=(podman-compose)
    elif [ -x "${VENV:-$ROOT/.venv}/bin/podman-compose" ]; then COMPOSE=("${VENV:-$ROOT/.venv}/bin/podman-compose")
    else COMPOSE=()
    fi
    ;;
  docker)
    BUILD=(docker build)
    if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(); fi
    ;;
  *) die "MGS_ENGINE must be podman or docker, not $ENGINE" ;;
esac
