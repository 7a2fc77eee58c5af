#!/usr/bin/env bash
# Remove the project's image tags TAG (CI gives each run its own); the layers stay as build cache.
#   scripts/containers/untag.sh TAG
set -euo pipefail
. "$(dirname "$0")/engine.sh"
tag=${1:?usage: untag.sh TAG}
[ "$tag" != latest ] || die "untag.sh leaves :latest alone"
for img in medgemma-spatial-api medgemma-spatial-analysis medgemma-spatial-report-cpu \
           localhost/mgs-local-postgres localhost/mgs-local-redis localhost/mgs-local-s3; do
  "$ENGINE" rmi "$img:$tag" >/dev/null 2>&1 || true
done
