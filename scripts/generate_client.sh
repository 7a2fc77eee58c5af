#!/usr/bin/env bash
# Regenerate openapi.json and the Python SDK in clients/python from the app.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" scripts/export_openapi.py
"$(dirname "$(command -v "$PY")")/openapi-python-client" generate --path openapi.json \
  --output-path clients/python --overwrite --config scripts/openapi-client.yaml
echo "SDK in clients/python"
