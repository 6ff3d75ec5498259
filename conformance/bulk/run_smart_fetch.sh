#!/usr/bin/env bash
# Runs an independent Bulk Data client — PyPI smart-fetch 1.0.3 (SMART Health IT), with the
# exact versions in requirements.txt — from a virtualenv under target/ (created on first
# use). Usage: run_smart_fetch.sh FHIR_BASE_URL TOKEN_FILE OUTPUT_DIR [smart-fetch bulk options],
# or run_smart_fetch.sh --install (installs only).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/bulk-venv"
if [ ! -x "$venv/bin/smart-fetch" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/conformance/bulk/requirements.txt"
fi
[ "${1:-}" = --install ] && exit 0
base="$1"; token="$2"; out="$3"; shift 3
exec "$venv/bin/smart-fetch" bulk --fhir-url "$base" --bearer-token "$token" --no-compression --no-default-filters "$@" "$out"
