#!/usr/bin/env python3
"""Build the reference list of sensitive resources in the Synthea R4 sample.

Reads codes.tsv (hand-reviewed code list, next to this script) and the bundles in
../shared/data/synthea-r4/ (relative to the repository root), applies the context
rules described in README.md and writes cases.tsv next to this script.

Usage (from the repository root):  python3 tests/data/synthea-sensitive/make_cases.py
Python 3 standard library only; output is deterministic.
"""
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DATA = os.path.join(REPO, "..", "shared", "data", "synthea-r4")

SKIP_TYPES = {"Patient", "Organization", "Practitioner"}
# Resources that are "in" an encounter via .encounter (R4) or .context (STU3-style).
CONTENT_TYPES = {"Observation", "Procedure", "MedicationRequest", "DiagnosticReport",
                 "Immunization", "Condition", "CarePlan", "CareTeam", "DocumentReference",
                 "ImagingStudy"}
# Clinical contents considered by rule 3 (confidential visit).
CLINICAL_TYPES = {"Procedure", "Condition", "MedicationRequest", "Observation",
                  "DiagnosticReport", "Immunization"}

# Reason priority: lower sorts first when picking the `why` text.
P_CODE, P_ENC, P_REPORT, P_ADDR, P_DIAG, P_CONF, P_CLAIM = range(7)


def load_codes(path):
    codes = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            cat, system, code, display, src = line.rstrip("\n").split("\t")
            # A row whose source says "display-specific" counts only for codings with that
            # display (a generic code whose display tells the service).
            exact = display if src.startswith("display-specific") else None
            codes.setdefault((system, code), []).append((cat, display, exact))
    return codes


def codings(obj):
    """Every (system, code) pair anywhere inside obj (codes anywhere count)."""
    return [sc for sc, _display in displayed_codings(obj)]


def displayed_codings(obj):
    """Every ((system, code), display) anywhere inside obj."""
    out = []
    if isinstance(obj, dict):
        if isinstance(obj.get("system"), str) and isinstance(obj.get("code"), str):
            out.append(((obj["system"], obj["code"]), obj.get("display")))
        for v in obj.values():
            out.extend(displayed_codings(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(displayed_codings(v))
    return out


def ref(x):
    return x.get("reference") if isinstance(x, dict) else None


def enc_refs(r):
    out = []
    for key in ("encounter", "context"):
        v = r.get(key)
        if isinstance(v, dict) and ref(v):
            out.append(ref(v))
        elif isinstance(v, list):
            out.extend(ref(x) for x in v if ref(x))
    return out


def item_enc_refs(r):
    out = []
    for it in r.get("item", []):
        for e in it.get("encounter", []):
            if ref(e):
                out.append(ref(e))
    return out


class Labels:
    def __init__(self):
        self.cats = {}  # fullUrl -> {cat: (prio, why)}

    def add(self, url, cat, prio, why):
        d = self.cats.setdefault(url, {})
        old = d.get(cat)
        if old is None or (prio, why) < old:
            d[cat] = (prio, why)
            return old is None
        return False

    def get(self, url):
        return self.cats.get(url, {})


def process(path, codes):
    bundle = json.load(open(path, encoding="utf-8"))
    res = {}
    for e in bundle.get("entry", []):
        r = e["resource"]
        res[e.get("fullUrl") or (r["resourceType"] + "/" + r["id"])] = r
    L = Labels()
    code_cats = {}  # fullUrl -> {cat: why} from the resource's own codes

    def rid(url):
        return res[url]["id"] if url in res else url

    # Step 0: codes anywhere in the resource.
    for url, r in res.items():
        if r["resourceType"] in SKIP_TYPES:
            continue
        for sc, shown in displayed_codings(r):
            for cat, disp, exact in codes.get(sc, []):
                if exact is not None and exact != shown:
                    continue
                why = "%s %s" % (sc[1], disp)
                code_cats.setdefault(url, {}).setdefault(cat, why)
                L.add(url, cat, P_CODE, why)

    # Encounter "own" sensitivity (rule 1): only its type / reasonCode.
    own = {}
    for url, r in res.items():
        if r["resourceType"] != "Encounter":
            continue
        cs = codings(r.get("type", [])) + codings(r.get("reasonCode", []))
        for sc in cs:
            for cat, _, exact in codes.get(sc, []):
                if exact is None:
                    own.setdefault(url, set()).add(cat)

    contents = {}  # encounter url -> [content urls]
    for url, r in res.items():
        if r["resourceType"] in CONTENT_TYPES:
            for e in enc_refs(r):
                contents.setdefault(e, []).append(url)

    def fixpoint():
        changed = True
        while changed:
            changed = False
            for url, r in res.items():
                t = r["resourceType"]
                if t == "DiagnosticReport":
                    for o in (ref(x) for x in r.get("result", [])):
                        if o is None:
                            continue
                        for cat in list(L.get(url)):
                            changed |= L.add(o, cat, P_REPORT, "result-of:" + r["id"])
                        for cat in list(L.get(o)):
                            changed |= L.add(url, cat, P_REPORT, "has-result:" + rid(o))
                elif t == "CarePlan":
                    for c in (ref(x) for x in r.get("addresses", [])):
                        for cat in list(L.get(c)):
                            changed |= L.add(url, cat, P_ADDR, "addresses:" + rid(c))
                elif t in ("Claim", "ExplanationOfBenefit"):
                    targets = []
                    for d in r.get("diagnosis", []):
                        if ref(d.get("diagnosisReference")):
                            targets.append(("diagnosis:", ref(d["diagnosisReference"])))
                    for p in r.get("procedure", []):
                        if ref(p.get("procedureReference")):
                            targets.append(("procedure:", ref(p["procedureReference"])))
                    if ref(r.get("prescription")):
                        targets.append(("prescription:", ref(r["prescription"])))
                    if t == "ExplanationOfBenefit" and ref(r.get("claim")):
                        targets.append(("claim:", ref(r["claim"])))
                    for label, tgt in targets:
                        for cat in list(L.get(tgt)):
                            changed |= L.add(url, cat, P_CLAIM, label + rid(tgt))

    # Step 1: report/result, CarePlan addresses, claim references on code-level labels.
    fixpoint()
    # Snapshot of each resource's sensitivity from its own codes (plus report/result and
    # CarePlan.addresses), before any encounter context: rule 3 is judged on this.
    intrinsic = {u: dict(d) for u, d in L.cats.items()}

    # Step 2 (rule 1): encounters with a sensitive type/reasonCode taint all contents,
    # their Claims (item.encounter) and EOBs (item.encounter, and via EOB.claim).
    for e_url in sorted(own):
        eid = rid(e_url)
        for cat in sorted(own[e_url]):
            for c in contents.get(e_url, []):
                L.add(c, cat, P_ENC, "in-encounter:" + eid)
            for url, r in res.items():
                if r["resourceType"] in ("Claim", "ExplanationOfBenefit") and e_url in item_enc_refs(r):
                    L.add(url, cat, P_ENC, "claim-for-encounter:" + eid)
    fixpoint()

    # Step 3 (rule 2): encounter whose diagnosis Condition is sensitive.
    for e_url, cs in contents.items():
        if e_url not in res:
            continue
        for c in cs:
            if res[c]["resourceType"] == "Condition":
                for cat in list(L.get(c)):
                    L.add(e_url, cat, P_DIAG, "diagnosis:" + rid(c))
        for d in res[e_url].get("diagnosis", []):
            c = ref(d.get("condition"))
            for cat in list(L.get(c)):
                L.add(e_url, cat, P_DIAG, "diagnosis:" + rid(c))

    # Step 4 (rule 3): confidential visit - every clinical content is sensitive.
    for e_url, cs in sorted(contents.items()):
        if e_url not in res:
            continue
        clin = [c for c in cs if res[c]["resourceType"] in CLINICAL_TYPES]
        if clin and all(intrinsic.get(c) for c in clin):
            cats = sorted({cat for c in clin for cat in intrinsic[c]})
            for cat in cats:
                L.add(e_url, cat, P_CONF, "confidential-visit:%d/%d-contents-sensitive" % (len(clin), len(clin)))
                # Reviewed: the bill for a confidential visit discloses the visit (billing is
                # a leak channel), so its Claim and EOB carry the visit's categories too.
                for url, r in res.items():
                    if r["resourceType"] in ("Claim", "ExplanationOfBenefit") and e_url in item_enc_refs(r):
                        L.add(url, cat, P_CONF, "claim-for-confidential-visit:" + rid(e_url))
    fixpoint()

    rows = []
    fname = os.path.basename(path)
    for url, d in L.cats.items():
        if url not in res:
            continue
        r = res[url]
        if r["resourceType"] in SKIP_TYPES:
            continue
        for cat, (_p, why) in d.items():
            rows.append((fname, r["resourceType"], r["id"], cat, why))
    return rows


def main():
    codes = load_codes(os.path.join(HERE, "codes.tsv"))
    files = sorted(glob.glob(os.path.join(DATA, "*.json")))
    if not files:
        sys.exit("no bundles found under %s" % DATA)
    rows = []
    for p in files:
        rows.extend(process(p, codes))
    rows = sorted(set(rows))
    out = os.path.join(HERE, "cases.tsv")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("#file\tresourceType\tid\tcategory\twhy\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    counts = {}
    for row in rows:
        counts[row[3]] = counts.get(row[3], 0) + 1
    for cat in sorted(counts):
        print("%-9s %d" % (cat, counts[cat]))
    print("total     %d (%d resources)" % (len(rows), len({(r[0], r[1], r[2]) for r in rows})))


if __name__ == "__main__":
    main()
