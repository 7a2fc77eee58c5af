#!/usr/bin/env bash
# `make images`: the API, analysis-worker and CPU report-worker images, with podman or docker.
#   scripts/containers/build.sh [api|analysis|report-cpu|report|local-services ...]
# (default: api analysis report-cpu). Environment:
#   PYTHON_IMAGE    the Python base (default: python:3.11.11-slim-bookworm when the engine can
#                   pull it, else a local Debian 12 base built with mmdebstrap: MGS_LOCAL_BASE)
#   MGS_IMAGE_TAG   tag of the images (default latest)
#   MGS_WHEELHOUSE  1 (default): resolve every wheel on the host into wheels/<target> and build
#                   offline from it (--no-index); 0: pip inside the build uses PyPI
#   PYTHON          the host Python that fills the wheelhouse (default .venv/bin/python)
# Prints the time of each step. The CUDA `report` target needs a registry (nvidia/cuda base).
set -euo pipefail
. "$(dirname "$0")/engine.sh"
cd "$ROOT"

TAG=${MGS_IMAGE_TAG:-latest}
LOCAL_BASE=${MGS_LOCAL_BASE:-localhost/mgs-python:3.11-bookworm}
DEBIAN_MIRROR=${MGS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
WHEELHOUSE=${MGS_WHEELHOUSE:-1}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(api analysis report-cpu)

timed() {  # timed LABEL CMD...: run, print the time it took
  local label=$1 t0=$SECONDS; shift
  log "$label ..."
  if ! "$@"; then die "$label failed after $((SECONDS - t0)) s"; fi
  log "$label: $((SECONDS - t0)) s"
}

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

local_base() {
  # Debian 12 minbase + Debian's python3 (3.11) and python3-venv, imported as an image
  command -v mmdebstrap >/dev/null 2>&1 || die "no registry and no mmdebstrap: apt-get install mmdebstrap (or set PYTHON_IMAGE)"
  local tmp rc=0 suite=bookworm sec=${DEBIAN_MIRROR%/debian}/debian-security
  tmp=$(mktemp -d /var/tmp/mgs-base.XXXXXX)
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates,libgomp1 \
    --aptopt='Acquire::Retries "3"' "$suite" "$tmp/rootfs.tar" \
    "deb $DEBIAN_MIRROR $suite main" "deb $DEBIAN_MIRROR $suite-updates main" \
    "deb $sec $suite-security main" \
  && "$ENGINE" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$tmp/rootfs.tar" "$LOCAL_BASE" >/dev/null || rc=$?
  rm -rf "$tmp"
  return $rc
}

choose_base() {
  if [ -n "${PYTHON_IMAGE:-}" ]; then return; fi
  local official=docker.io/library/python:3.11.11-slim-bookworm
  if image_exists "$official" || timeout 120 "$ENGINE" pull -q "$official" >/dev/null 2>&1; then
    PYTHON_IMAGE=$official
  else
    if ! image_exists "$LOCAL_BASE" || [ "${MGS_REBUILD_BASE:-0}" = 1 ]; then
      timed "local base $LOCAL_BASE (mmdebstrap: no registry)" local_base
    else
      log "local base $LOCAL_BASE: cached"
    fi
    PYTHON_IMAGE=$LOCAL_BASE
  fi
}

wheelhouse() {  # wheelhouse DIR LOCK: every pinned wheel of LOCK into wheels/DIR
  mkdir -p "wheels/$1"
  local out rc=0
  out=$("$PYTHON" -m pip wheel --quiet --no-deps --disable-pip-version-check \
        -r "scripts/containers/locks/$2.txt" -w "wheels/$1" 2>&1) || rc=$?
  grep -v "^WARNING: Location .* is ignored" <<<"$out" >&2 || true
  return $rc
}

build() {  # build DIR LOCK -- BUILD ARGS...
  local dir=$1 lock=$2; shift 3
  local flags=""
  if [ "$WHEELHOUSE" = 1 ]; then
    timed "wheelhouse wheels/$dir" wheelhouse "$dir" "$lock"
    flags=--no-index
  fi
  timed "image $*" "${BUILD[@]}" --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" \
    --build-arg PIP_INSTALL_FLAGS="$flags" "$@" .
}

choose_base
log "engine $ENGINE, base $PYTHON_IMAGE, tag $TAG"
for t in "${TARGETS[@]}"; do
  case "$t" in
    api) build api api -- -f Dockerfile.api -t "medgemma-spatial-api:$TAG" ;;
    analysis) build analysis analysis -- -f Dockerfile.worker --target analysis \
                -t "medgemma-spatial-analysis:$TAG" ;;
    report-cpu) build report-cpu report -- -f Dockerfile.worker --target report-cpu \
                  -t "medgemma-spatial-report-cpu:$TAG" ;;
    report) timed "image report (CUDA)" "${BUILD[@]}" -f Dockerfile.worker --target report \
              -t "medgemma-spatial-report:$TAG" . ;;
    local-services)
      # the stack smoke test's stand-ins (scripts/containers/local/): Postgres and Redis from
      # Debian's packages, moto's S3 server for MinIO
      for svc in postgres redis; do
        timed "image mgs-local-$svc" "${BUILD[@]}" --build-arg BASE_IMAGE="$PYTHON_IMAGE" \
          -f "scripts/containers/local/$svc.Dockerfile" -t "localhost/mgs-local-$svc:$TAG" \
          scripts/containers/local
      done
      build s3 s3 -- -f scripts/containers/local/s3.Dockerfile -t "localhost/mgs-local-s3:$TAG" ;;
    *) die "unknown target $t (api, analysis, report-cpu, report, local-services)" ;;
  esac
done
if [ "$ENGINE" = podman ]; then
  "$ENGINE" images --filter reference='*medgemma-spatial*' --filter reference='*mgs-local*' \
    --format '{{.Repository}}:{{.Tag}} {{.Size}}' >&2 || true
else
  "$ENGINE" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'medgemma-spatial|mgs-local' >&2 || true
fi
