"""Validates what a running Portico gateway serves against FHIR R4 (fhir.resources 6.4.0,
the last R4 release of that library): the CapabilityStatement, every patient's
$everything Bundle (all pages), a search Bundle, and the OperationOutcomes of errors.

Usage: validate_r4.py BASE_URL TOKEN[,TOKEN...] PATIENT_ID [PATIENT_ID ...]

The first token must reach every patient (staff); the others (patient, proxy, partner, app
viewers) are checked on the patients they may see, so what the privacy policy prunes is
validated too.
Exits non-zero, naming each invalid resource, when anything fails validation.
"""
import json
import sys
import urllib.error
import urllib.request

from fhir.resources import construct_fhir_element


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def validate(label, resource, failures):
    try:
        construct_fhir_element(resource["resourceType"], resource)
    except Exception as e:  # pydantic.ValidationError and friends
        failures.append(f"{label}: {resource.get('resourceType')}/{resource.get('id')}: {e}")


def main():
    base, tokens, patients = sys.argv[1].rstrip("/"), sys.argv[2].split(","), sys.argv[3:]
    token = tokens[0]
    failures, checked = [], 0
    status, cs = get(f"{base}/metadata")
    assert status == 200, f"metadata answered {status}"
    validate("metadata", cs, failures)
    checked += 1
    for tok, pid in [(t, p) for t in tokens for p in patients]:
        url = f"{base}/Patient/{pid}/$everything?_count=50"
        first = True
        while url:
            status, bundle = get(url, tok)
            if first and status == 404 and tok != token:
                break  # this viewer may not see this patient
            first = False
            assert status == 200, f"{url} answered {status}"
            validate(f"$everything {pid}", bundle, failures)
            checked += 1 + len(bundle.get("entry", []))
            url = next((l["url"] for l in bundle.get("link", []) if l["relation"] == "next"), None)
        status, search = get(f"{base}/Observation?patient={pid}&_count=5", tok)
        assert status == 200
        validate(f"search {pid}", search, failures)
    for url, tok, want in [
        (f"{base}/Patient/{patients[0]}", None, 401),
        (f"{base}/Patient/no-such-patient", token, 404),
        (f"{base}/Observation?patient={patients[0]}&colour=red", token, 400),
    ]:
        status, outcome = get(url, tok)
        assert status == want, f"{url} answered {status}, expected {want}"
        validate(f"error {want}", outcome, failures)
        checked += 1
    for f in failures:
        print("INVALID", f[:2000])
    print(f"{checked} resources checked against FHIR R4, {len(failures)} invalid")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
