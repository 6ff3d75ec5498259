#!/usr/bin/env bash
# Replays a login flood (issue 12 part 2) against a running gateway and shows it stopped:
# many parallel sign-ins with wrong passwords from one address must be answered 429 with
# Retry-After (rate limit per client IP, or the full password-hashing pool), never 5xx, and
# the FHIR API must keep answering meanwhile. Exits non-zero when the flood is not stopped.
#
#   conformance/attacks/login_flood.sh [BASE_URL] [REQUESTS]
#
# BASE_URL is the gateway's origin (e.g. http://127.0.0.1:8080); without it the script
# serves the embedded demo (config/portico.toml) on a free loopback port with a throwaway
# database. Needs bash, curl and (without BASE_URL) cargo and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=${1:-}
requests=${2:-200}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
if [ -z "$base" ]; then
  cargo build -q
  portico="${CARGO_TARGET_DIR:-target}/debug/portico"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PORTICO_DATABASE__URL="sqlite://$work/portico.db" \
    "$portico" serve --config config/portico.toml --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 120); do
    curl -sf "$base/health/ready" >/dev/null && break
    sleep 0.5
  done
fi
base=${base%/}

# A sign-in form and its CSRF token, as a browser would get them.
jar="$work/cookies"
csrf=$(curl -sf -c "$jar" "$base/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
[ -n "$csrf" ] || { echo "login_flood: no sign-in form at $base/login" >&2; exit 2; }

# The flood: $requests sign-ins, 32 at a time, each recording "status retry-after".
flood() {
  local i=$1
  curl -s -o /dev/null --max-time 120 -b "$jar" -D - -X POST "$base/login" \
    --data-urlencode "csrf=$csrf" --data-urlencode "username=flood-$i@example.org" \
    --data-urlencode "password=not-the-password-$i" |
    awk 'NR==1 {s=$2} tolower($1)=="retry-after:" {r=$2} END {gsub("\r","",r); print s, (r==""?"-":r)}'
}
export -f flood
export base jar csrf
seq 1 "$requests" | xargs -P 32 -I{} bash -c 'flood {}' >"$work/answers" &
flooding=$!
# Meanwhile the FHIR API answers (the capability statement needs no token).
fhir_during=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$base/fhir/metadata")
wait $flooding
fhir_after=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$base/fhir/metadata")

total=$(wc -l <"$work/answers")
limited=$(awk '$1==429' "$work/answers" | wc -l)
limited_with_wait=$(awk '$1==429 && $2!="-"' "$work/answers" | wc -l)
failed=$(awk '$1>=500 || $1=="000"' "$work/answers" | wc -l)
echo "login_flood: $total sign-ins: $limited answered 429 ($limited_with_wait with Retry-After), $failed 5xx or no answer;" \
  "FHIR during: $fhir_during, after: $fhir_after"
awk '{print $1}' "$work/answers" | sort | uniq -c | sed 's/^/  status /'
if [ "$limited" -eq 0 ] || [ "$limited_with_wait" -ne "$limited" ] || [ "$failed" -ne 0 ] ||
  [ "$fhir_during" != 200 ] || [ "$fhir_after" != 200 ]; then
  echo "login_flood: NOT stopped" >&2
  exit 1
fi
echo "login_flood: stopped"
