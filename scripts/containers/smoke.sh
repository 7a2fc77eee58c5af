#!/usr/bin/env bash
# `make stack-smoke`: the compose stack from the images `make images` built, end to end.
#   docker-compose.yml + scripts/containers/compose.local.yml (Postgres/Redis from Debian
#   packages, moto's S3 server for MinIO, the CPU report worker), then: migrate, create a key,
#   upload the real Visium sample, run a job to success through API -> relay -> analysis
#   worker -> report worker (template backend; then the tiny random-weight Gemma 3 on the
#   transformers backend unless MGS_SMOKE_TINY=0), download the report and an artifact.
#   Everything is torn down with its volumes at the end, pass or fail. Prints each step's time.
# Environment: MGS_ENGINE (podman|docker), MGS_IMAGE_TAG, MGS_SMOKE_TINY (1), MGS_SMOKE_KEEP
# (1: leave the stack up for a look), MGS_SMOKE_DATA (../shared/data), PYTHON (.venv/bin/python:
# builds the tiny model and runs the HTTP client).
set -euo pipefail
. "$(dirname "$0")/engine.sh"
cd "$ROOT"
[ ${#COMPOSE[@]} -gt 0 ] || die "no compose for $ENGINE: pip install podman-compose==1.6.0 (podman) or the docker compose plugin"

PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
DATA=${MGS_SMOKE_DATA:-$ROOT/../shared/data}
SAMPLE=$DATA/visium_10x_v1_subset
[ -d "$SAMPLE" ] || die "the Visium sample is not at $SAMPLE (set MGS_SMOKE_DATA)"
TINY=${MGS_SMOKE_TINY:-1}
export MGS_IMAGE_TAG=${MGS_IMAGE_TAG:-latest}
for img in medgemma-spatial-api medgemma-spatial-analysis medgemma-spatial-report-cpu; do
  "$ENGINE" image inspect "$img:$MGS_IMAGE_TAG" >/dev/null 2>&1 \
    || die "image $img:$MGS_IMAGE_TAG is missing: run make images first"
done

PROJECT=mgs-smoke-$$
WORK=$(mktemp -d /var/tmp/mgs-smoke.XXXXXX)
chmod 755 "$WORK"
FILES=(-f docker-compose.yml -f scripts/containers/compose.local.yml)
# compose reads these (docker-compose.yml refuses to start without the passwords)
export POSTGRES_PASSWORD=smoke-$RANDOM$RANDOM MINIO_ROOT_PASSWORD=smoke-$RANDOM$RANDOM
export FLOWER_BASIC_AUTH=smoke:smoke API_BIND=127.0.0.1 API_WORKERS=1 ANALYSIS_CONCURRENCY=1
API_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export API_PORT
API=http://127.0.0.1:$API_PORT
T_START=$SECONDS
STEPS=()

compose() { "${COMPOSE[@]}" -p "$PROJECT" "${FILES[@]}" "$@"; }
cid() {  # the container of one service (running or exited)
  "$ENGINE" ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" | head -1
}
step() {  # step LABEL TIMEOUT CMD...: run with a time limit, record and print its time
  local label=$1 limit=$2 t0=$SECONDS rc=0 pid timer done_pid=""; shift 2
  log "step: $label (limit ${limit}s)"
  ( "$@" ) & pid=$!
  sleep "$limit" & timer=$!
  wait -n -p done_pid "$pid" "$timer" || rc=$?
  if [ "$done_pid" = "$timer" ]; then  # time is up: stop the step and what it started
    kill -TERM $(pgrep -P "$pid") "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    die "step '$label' timed out after ${limit}s"
  fi
  kill "$timer" 2>/dev/null || true
  wait "$timer" 2>/dev/null || true
  local dt=$((SECONDS - t0))
  [ $rc -eq 0 ] || die "step '$label' failed (exit $rc) after ${dt}s"
  STEPS+=("$(printf '%-50s %5d s' "$label" "$dt")")
  log "step: $label: ${dt}s"
}

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [ $rc -ne 0 ]; then
    log "FAILED: the last lines of each service's log follow"
    for c in $("$ENGINE" ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
      echo "----- $("$ENGINE" inspect -f '{{.Name}} {{.State.Status}} exit={{.State.ExitCode}}' "$c" 2>/dev/null)" >&2
      "$ENGINE" logs --tail 30 "$c" 2>&1 | sed 's/^/    /' >&2 || true
    done
  fi
  if [ "${MGS_SMOKE_KEEP:-0}" = 1 ]; then
    log "MGS_SMOKE_KEEP=1: the stack $PROJECT stays up; remove it with: ${COMPOSE[*]} -p $PROJECT ${FILES[*]} down -v"
  else
    local t0=$SECONDS
    timeout 180 "${COMPOSE[@]}" -p "$PROJECT" "${FILES[@]}" down -v -t 5 >/dev/null 2>&1 || true
    # whatever compose left behind: containers, volumes and the network of this project
    for c in $("$ENGINE" ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
      "$ENGINE" rm -f -v "$c" >/dev/null 2>&1 || true
    done
    for v in $("$ENGINE" volume ls -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
      "$ENGINE" volume rm -f "$v" >/dev/null 2>&1 || true
    done
    "$ENGINE" network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
    log "teardown (down -v): $((SECONDS - t0)) s"
    local left
    left=$("$ENGINE" ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null | wc -l)
    [ "$left" = 0 ] || { log "teardown left $left containers of $PROJECT"; rc=1; }
  fi
  rm -rf "$WORK"
  if [ $rc -eq 0 ]; then
    printf '\nstack smoke test passed (%s, project %s)\n' "$ENGINE" "$PROJECT"
    printf '  %s\n' "${STEPS[@]}"
    printf '  %-50s %5d s\n' "total (with teardown)" $((SECONDS - T_START))
  else
    printf '\nstack smoke test FAILED (exit %s)\n' "$rc" >&2
    printf '  %s\n' "${STEPS[@]}" >&2
  fi
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

health() {  # health CONTAINER: 0 when its image's/compose's health check passes now
  if [ "$ENGINE" = podman ]; then
    # podman 4.3 runs health checks only from systemd timers: run it here
    podman healthcheck run "$1" >/dev/null 2>&1
  else
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ]
  fi
}
wait_healthy() {  # wait_healthy SERVICE...: compose's depends_on service_healthy, done here
  local s c
  for s in "$@"; do
    c=$(cid "$s"); [ -n "$c" ] || { echo "no container for $s" >&2; return 1; }
    log "  waiting for $s to be healthy"
    until health "$c"; do
      if [ "$("$ENGINE" inspect -f '{{.State.Running}}' "$c")" != true ]; then
        echo "$s stopped before it was healthy" >&2; return 1
      fi
      sleep 2
    done
    log "  $s healthy"
  done
}
wait_exit0() {  # wait_exit0 SERVICE: a one-shot service ran to exit 0
  local c code; c=$(cid "$1"); [ -n "$c" ] || { echo "no container for $1" >&2; return 1; }
  code=$("$ENGINE" wait "$c" | tail -1)
  [ "$code" = 0 ] || { echo "$1 exited $code" >&2; "$ENGINE" logs --tail 20 "$c" >&2; return 1; }
}
up() { compose up -d --no-build --no-deps "$@" >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; return 1; }; }

image_checks() {  # what operators expect of each image: non-root, a health check, no compiler or cache
  local img out
  for img in medgemma-spatial-api medgemma-spatial-analysis medgemma-spatial-report-cpu; do
    "$ENGINE" image inspect "$img:$MGS_IMAGE_TAG" >"$WORK/inspect.json"
    "$PYTHON" - "$WORK/inspect.json" "$img" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))[0]
cfg = d.get("Config") or {}
user = cfg.get("User") or d.get("User") or ""
hc = cfg.get("Healthcheck") or d.get("Healthcheck") or {}
problems = []
if user in ("", "root", "0") or user.startswith(("0:", "root:")):
    problems.append(f"runs as {user or 'root'}")
if not hc.get("Test") or hc["Test"][0] == "NONE":
    problems.append("no HEALTHCHECK (podman: build with --format docker)")
if problems:
    sys.exit(f"{sys.argv[2]}: " + "; ".join(problems))
PY
    out=$("$ENGINE" run --rm --user 0 --entrypoint sh "$img:$MGS_IMAGE_TAG" -c '
      for b in gcc cc c++ g++ clang make ld; do command -v $b >/dev/null && echo "compiler: $b"; done
      for d in /root/.cache/pip /home/mgs/.cache/pip /wheels /var/lib/apt/lists/partial/*; do [ -e "$d" ] && echo "left: $d"; done
      [ -n "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e ^lock -e ^partial -e ^auxfiles)" ] && echo "left: apt lists"
      true' 2>/dev/null) || { echo "$img: could not run the check" >&2; return 1; }
    [ -z "$out" ] || { echo "$img: $out" >&2; return 1; }
    log "  $img: user $("$ENGINE" image inspect -f '{{.Config.User}}' "$img:$MGS_IMAGE_TAG"), health check, no compiler, no caches"
  done
}
step "image checks (non-root, health check, no compiler/cache)" 180 image_checks
step "backing services up (postgres redis s3)"   180 up postgres redis minio
step "backing services healthy"                  180 wait_healthy postgres redis minio
oneshot() { up "$1" && wait_exit0 "$1"; }
step "bucket (minio-init)"                       120 oneshot minio-init
step "one-shot migration (migrate: db upgrade)"  300 oneshot migrate
step "api relay workers up"                      180 up api relay worker-analysis worker-report
step "api relay workers healthy"                 420 wait_healthy api relay worker-analysis worker-report

create_key() {
  "$ENGINE" exec "$(cid api)" medgemma-spatial keys create --tenant SMOKE >"$WORK/key.txt"
  grep -q '^api_key: ' "$WORK/key.txt"
}
step "create an API key (keys create)"           120 create_key
KEY=$(sed -n 's/^api_key: //p' "$WORK/key.txt")

client() { "$PYTHON" scripts/containers/smoke_client.py --api "$API" --key "$KEY" --out "$WORK" "$@"; }
step "job on the template backend (Visium upload, report, artifact)" 600 client --sample "$SAMPLE" --label template

if [ "$TINY" = 1 ]; then
  build_tiny() {
    "$PYTHON" -c 'import sys; from pathlib import Path; from tests.fixtures.tiny_model import build_tiny_gemma3; print(build_tiny_gemma3(Path(sys.argv[1])))' "$WORK/tiny" | tail -n 1 >"$WORK/tiny.path"
    chmod -R a+rX "$WORK/tiny"
    cat >"$WORK/tiny.yml" <<YAML
services:
  worker-report:
    environment:
      MGS_REPORT_BACKEND: transformers
      MGS_MODEL_ID: /tiny-gemma3
      MGS_MAX_NEW_TOKENS: "16"
    volumes:
      - $(cat "$WORK/tiny.path"):/tiny-gemma3:ro
YAML
  }
  step "tiny Gemma 3 built on the host"          300 build_tiny
  FILES+=(-f "$WORK/tiny.yml")
  recreate() { compose up -d --no-build --no-deps --force-recreate worker-report >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; return 1; }; }
  step "report worker on transformers (recreate)" 180 recreate
  step "report worker healthy (model loaded)"    420 wait_healthy worker-report
  step "job on tiny Gemma 3 (transformers, CPU)" 900 client --sample "$SAMPLE" --label tiny-gemma3 --expect-backend transformers
fi
