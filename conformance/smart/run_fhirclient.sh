#!/usr/bin/env bash
# Runs launch_fhirclient.py with PyPI fhirclient 4.4 from a virtualenv under target/
# (created on first use). Arguments are passed through; `--install` only installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/smart-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import fhirclient, requests' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'fhirclient==4.4.0' 'requests>=2.31'
fi
[ "${1:-}" = --install ] && exit 0
exec "$venv/bin/python" "$root/conformance/smart/launch_fhirclient.py" "$@"
