#!/usr/bin/env bash
# Replays the enrollment-guessing attack of issue 12 against a running gateway and shows it
# stopped; exits non-zero if it is not.
#
#   conformance/attacks/enrollment_guessing.sh              # serves the embedded demo itself
#   conformance/attacks/enrollment_guessing.sh URL [TOKEN]  # a gateway already running (loopback,
#                                                           # the demo config; TOKEN: staff dev token)
#
# The attack, as the outside review tried it: throwaway accounts make wrong guesses at one
# patient's medical record number + birth date + last name (each account far below its own
# lockout), then another account enrolls with the right details. What must happen:
#   1. the record's throttle (per target record, whatever the account) answers every try
#      once it is spent — a refusal (400) or a rate limit (429), never a link;
#   2. the right details, from any account, do not link the record;
#   3. a record that already has an owner is never linked again: a try with its right details
#      (under the throttle) is refused and goes on HIM's enrollment review list.
# Needs bash, curl and python3 (JSON). With no URL it builds and serves config/portico.toml on a
# free port with a throwaway database, like conformance/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
portico="${CARGO_TARGET_DIR:-target}/debug/portico"
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ $# -ge 1 ]; then
  base=${1%/}
  token=${2:-portico-demo-token-loopback-only}
else
  cargo build -q
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export PORTICO_DATABASE__URL="sqlite://$work/portico.db"
  export PORTICO_EXPORT__DIRECTORY="$work/exports"
  "$portico" serve --config config/portico.toml --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  token=portico-demo-token-loopback-only
  for _ in $(seq 1 120); do
    curl -sf "$base/health/ready" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; echo "FAIL: the gateway did not start" >&2; exit 1; }
    sleep 0.5
  done
fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
say() { echo "== $*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# A browser: a cookie jar per account. `page NAME PATH` fetches a page and keeps its CSRF token.
page() { curl -s -b "$work/$1.jar" -c "$work/$1.jar" "$base$2"; }
csrf_of() { page "$1" "$2" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
# `post NAME PATH field=value …` posts a form with the page's CSRF token; prints the status.
post() {
  local who=$1 path=$2
  shift 2
  local csrf
  csrf=$(csrf_of "$who" "$path")
  local args=(--data-urlencode "csrf=$csrf")
  for f in "$@"; do args+=(--data-urlencode "$f"); done
  curl -s -o "$work/$who.last" -w '%{http_code}' -b "$work/$who.jar" -c "$work/$who.jar" "${args[@]}" "$base$path"
}
connected() { ! page "$1" /account | grep -q 'not connected to a record'; }

# Where accounts verify their email before they may enroll (issue 12 part 1/3). If this
# gateway's `portico account` has a staff path for it, use it; else the account is used as
# registered (gateways before email verification). With a gateway given by URL, the
# verification step is up to the operator (run it between register and enroll).
verify_email() {
  local username=$1
  if [ -n "$pid" ] && "$portico" account --help 2>/dev/null | grep -q 'verify-email'; then
    "$portico" account verify-email --config config/portico.toml --username "$username" >/dev/null
  fi
}

# `register NAME` creates account NAME@attack.example and signs it in (its jar); prints the status.
register() {
  local status
  status=$(post "$1" /register "display_name=$1" "username=$1@attack.example" "password=correct horse battery staple $1")
  [ "$status" = 303 ] && verify_email "$1@attack.example"
  echo "$status"
}

# What an attacker who knows the patient has: the birth date and family name, read here from
# the demo's EHR fixture (fixtures/ehr/patient-ID.json) with its dates shifted as the demo
# serves them (anchor 2026-01-01 moved to today, UTC). Prints "BIRTH FAMILY".
details() {
  python3 - "$1" <<'PY'
import datetime, json, sys
bundle = json.load(open(f"fixtures/ehr/patient-{sys.argv[1]}.json"))
p = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
shift = datetime.datetime.now(datetime.timezone.utc).date() - datetime.date(2026, 1, 1)
born = datetime.date.fromisoformat(p["birthDate"]) + shift
print(born.isoformat(), p["name"][0]["family"])
PY
}

# The target: Bob Martinez, MRN HG100142 (ehr/pt-10001) in the demo's EHR.
mrn=HG100142
read -r birth family <<<"$(details pt-10001)"
say "target: MRN $mrn (birth date and family name known to the attacker)"

# --- 1. Six throwaway accounts, five wrong guesses each (thirty in all). ---
say "six throwaway accounts guess MRN $mrn"
refused=0 throttled=0 linked=0
for i in 1 2 3 4 5 6; do
  who="mallory$i-$RANDOM"
  status=$(register "$who")
  if [ "$status" = 429 ]; then throttled=$((throttled + 5)); continue; fi
  [ "$status" = 303 ] || { fail "registering $who answered $status"; continue; }
  for guess in 1 2 3 4 5; do
    year=$((1950 + i * 7 + guess))
    status=$(post "$who" /enroll "mrn=$mrn" "birth_date=$year-0$guess-1$i" "family=$family")
    case $status in
      400) refused=$((refused + 1)) ;;
      429) throttled=$((throttled + 1)) ;;
      303) linked=$((linked + 1)); fail "$who linked with a wrong guess" ;;
      *) fail "$who guess answered $status" ;;
    esac
  done
done
echo "   wrong guesses: $refused refused, $throttled rate-limited, $linked linked"
[ "$linked" = 0 ] || fail "a wrong guess linked a record"

# --- 2. A seventh account with the right details: the record is throttled. ---
say "a seventh account enrolls with the right details"
who="mallory7-$RANDOM"
status=$(register "$who")
if [ "$status" = 303 ]; then
  status=$(post "$who" /enroll "mrn=$mrn" "birth_date=$birth" "family=$family")
  echo "   answered $status"
  case $status in
    400 | 429) ;;
    *) fail "the right details after the guessing answered $status (expected a refusal)" ;;
  esac
  if connected "$who"; then fail "the seventh account was connected to the record"; else echo "   not connected: stopped"; fi
else
  echo "   registering answered $status (rate-limited): stopped"
  [ "$status" = 429 ] || fail "registering the seventh account answered $status"
fi

# --- 3. A record that already has an owner is never linked again. ---
# Thomas Reyes's record (MRN HG100521, ehr/pt-10005) gets its owner through an activation
# code from HIM (admin API); then an attacker tries its right details once (under the
# record's throttle).
say "an owned record: the owner enrolls by activation code, an attacker tries the right details"
o_mrn=HG100521
read -r o_birth o_family <<<"$(details pt-10005)"
code=$(curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"patient": "ehr/pt-10005"}' "$base/admin/activation-codes" | json 'd["code"]')
owner="owner-$RANDOM"
[ "$(register "$owner")" = 303 ] || fail "registering the owner failed"
status=$(post "$owner" /enroll "code=$code" "birth_date=$o_birth")
[ "$status" = 303 ] && connected "$owner" || fail "the owner's activation code did not enroll ($status)"
reviews_before=$(curl -s -H "Authorization: Bearer $token" "$base/admin/enrollment-reviews" -o "$work/reviews0.json" -w '%{http_code}')
claimer="claimer-$RANDOM"
status=$(register "$claimer")
if [ "$status" = 303 ]; then
  status=$(post "$claimer" /enroll "mrn=$o_mrn" "birth_date=$o_birth" "family=$o_family")
  echo "   the claim answered $status"
  case $status in 400 | 429) ;; *) fail "claiming an owned record answered $status" ;; esac
  if connected "$claimer"; then fail "the owned record was linked to a second account"; else echo "   not linked: stopped"; fi
else
  [ "$status" = 429 ] || fail "registering the claimer answered $status"
fi

# The review list: the admin API if this gateway has one, else the CLI on its database.
if [ "$reviews_before" = 200 ]; then
  reviews=$(curl -sf -H "Authorization: Bearer $token" "$base/admin/enrollment-reviews")
elif [ -n "$pid" ]; then
  reviews=$("$portico" account enrollment-reviews --config config/portico.toml 2>"$work/reviews.err" || cat "$work/reviews.err")
else
  reviews="(no admin API for reviews on $base; run \`portico account enrollment-reviews\` on its database)"
fi
echo "   review list:"
echo "$reviews" | sed 's/^/     /'
if [ -n "$pid" ] || [ "$reviews_before" = 200 ]; then
  echo "$reviews" | grep -q 'pt-10005' || fail "the claim on the owned record is not on the review list"
fi

if [ "$failures" -gt 0 ]; then
  echo "enrollment guessing: NOT stopped ($failures failures)" >&2
  exit 1
fi
echo "enrollment guessing: stopped"
