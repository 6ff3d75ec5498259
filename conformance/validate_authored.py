"""Validates resources the gateway writes itself (CapabilityStatement, OperationOutcome,
Bundle shells, AuditEvent) against FHIR R4 with the same independent validator as
validate_r4.py (fhir.resources 6.4.0, R4; a Bundle's source resources are validated too),
and round-trips each: the R4 model, written back
as JSON, still holds every element the gateway wrote (nothing R4 does not know, which the
validator would also refuse) with the same values (instants compared as instants).

Usage: validate_authored.py FILE   (FILE: a JSON array of resources)
Exits non-zero, naming each resource that fails.
"""
import json
import sys
from datetime import datetime

from fhir.resources import construct_fhir_element


def same(a, b):
    """Whether b (the R4 model's JSON) says what a (the gateway's) says."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, str) and isinstance(b, str) and a != b:
        try:  # an instant written with other digits or offset notation
            return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(b.replace("Z", "+00:00"))
        except ValueError:
            return False
    return a == b


AUTHORED = {"CapabilityStatement", "OperationOutcome", "Bundle", "AuditEvent"}


def shell(bundle):
    """A Bundle with the source resources of its entries left out (they are the sources'
    JSON, passed through; validation covers them, the round trip is about what the gateway
    wrote)."""
    if bundle.get("resourceType") != "Bundle":
        return bundle
    out = dict(bundle)
    out["entry"] = [
        {k: (v if k != "resource" or v.get("resourceType") in AUTHORED else "source") for k, v in e.items()}
        for e in bundle.get("entry", [])
    ]
    return out


def main():
    resources = json.load(open(sys.argv[1]))
    failures = []
    for r in resources:
        label = f"{r.get('resourceType')}/{r.get('id')}"
        try:
            model = construct_fhir_element(r["resourceType"], r)
        except Exception as e:  # pydantic.ValidationError and friends
            failures.append(f"{label}: invalid: {e}")
            continue
        back = json.loads(model.json())
        if not same(shell(r), shell(back)):
            failures.append(f"{label}: changed by the R4 round trip:\n  {json.dumps(r)[:1500]}\n  {json.dumps(back)[:1500]}")
    for f in failures:
        print("FAILED", f[:4000])
    print(f"{len(resources)} authored resources checked against FHIR R4, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
