#!/usr/bin/env bash
# Serves the embedded demo on a free loopback port with a throwaway database and checks
# what it serves against FHIR R4 with an independent validator (PyPI fhir.resources 6.4.0,
# R4), then replays the attacks under conformance/attacks/ against it (each exits non-zero
# when the attack is not stopped). Needs python3 and curl; installs the validator into a virtualenv under target/ (`--install`
# does only that).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/conformance-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'fhir.resources==6.4.0' 'pydantic<2'
fi
[ "${1:-}" = --install ] && exit 0
cargo build -q
portico="${CARGO_TARGET_DIR:-target}/debug/portico"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PORTICO_DATABASE__URL="sqlite://$work/portico.db"
"$portico" serve --config config/portico.toml --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break
  sleep 0.5
done
patients=$("$portico" patients --config config/portico.toml --json | "$venv/bin/python" -c 'import json,sys; print(" ".join(l["gateway_id"] for l in json.load(sys.stdin)["links"]))')
# Staff first (every patient), then the demo's other viewers (config/portico.toml).
tokens=portico-demo-token-loopback-only,demo-maya-rodriguez-self,demo-maya-mother-proxy,demo-ethan-mother-proxy,demo-bob-martinez-lab-app,demo-hie-partner-treatment
"$venv/bin/python" conformance/validate_r4.py "http://127.0.0.1:$port/fhir" "$tokens" $patients
# Attack replays (issue 12): each serves its own demo gateway and exits non-zero unless the
# attack is stopped.
conformance/attacks/enrollment_guessing.sh
# Attacks last (a flood spends this address's sign-in allowance).
conformance/attacks/login_flood.sh "http://127.0.0.1:$port"
