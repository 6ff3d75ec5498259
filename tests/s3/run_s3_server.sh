#!/usr/bin/env bash
# Runs an S3-compatible server for the export storage tests — PyPI moto[server] 5.2.5, with
# the exact versions in requirements.txt — from a virtualenv under target/ (created on first
# use). Prints the port it listens on (127.0.0.1), then serves until killed.
# Usage: run_s3_server.sh, or run_s3_server.sh --install (installs only).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/s3-venv"
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/tests/s3/requirements.txt"
fi
[ "${1:-}" = --install ] && exit 0
exec "$venv/bin/python" "$root/tests/s3/s3_server.py"
