#!/usr/bin/env python3
"""Writes src/fhir/search/r4-search-extras.json from the official FHIR R4 definitions
(npm package hl7.fhir.r4.examples@4.0.1, CC0): the StructureDefinition and
SearchParameter-*.json files. Usage: scripts/r4-search-extras.py <package dir> > file.
Facts only, for each type the gateway serves (the types of src/fhir/r4-patient-compartment.json,
Patient, and the supporting and referenced types): its top-level elements (a choice element
as `value[x]`), which of them R4 marks isSummary, which are mandatory (min >= 1), and its
reference search parameters with their element paths (FHIRPath simplified to dotted paths as
scripts/r4-compartment.py does) and target types (an empty list: any type)."""
import json, os, re, sys

pkg = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
compartment = json.load(open(os.path.join(here, "..", "src", "fhir", "r4-patient-compartment.json")))
types = sorted({t["type"] for t in compartment["types"]} | {
    "Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Medication",
    "Substance", "Endpoint", "Device", "Specimen"})

def paths(t, expr):
    out = []
    for part in expr.split("|"):
        p = part.strip()
        p = re.sub(r"^\((.*)\)$", r"\1", p)
        if not p.startswith(t + "."):
            continue
        p = p[len(t) + 1:]
        p = re.sub(r"\.where\(resolve\(\) is \w+\)$", "", p)
        m = re.fullmatch(r"([\w.]+) as (\w+)", p) or re.fullmatch(r"([\w.]+)\.as\((\w+)\)", p)
        if m:
            p = m.group(1) + m.group(2)[0].upper() + m.group(2)[1:]
        if re.fullmatch(r"[A-Za-z][\w.]*", p):
            out.append(p)
    return out

refs = {t: {} for t in types}
for f in sorted(os.listdir(pkg)):
    if not f.startswith("SearchParameter-"):
        continue
    d = json.load(open(os.path.join(pkg, f)))
    # The package also holds example SearchParameters (`example-reference` …), not R4's.
    if d.get("type") != "reference" or d.get("experimental") or "example" in d["id"]:
        continue
    for base in d.get("base", []):
        if base not in refs:
            continue
        ps = paths(base, d.get("expression") or "")
        if ps:
            targets = sorted(d.get("target", []))
            # A reference to any resource (Observation.focus …) lists every type: kept as [].
            refs[base][d["code"]] = {"paths": ps, "targets": targets if len(targets) < 100 else []}

out = []
for t in types:
    sd = json.load(open(os.path.join(pkg, f"StructureDefinition-{t}.json")))
    elements, summary, mandatory = [], [], []
    for e in sd["snapshot"]["element"]:
        p = e["path"]
        if p.count(".") != 1:
            continue
        name = p.split(".", 1)[1]
        elements.append(name)
        if e.get("isSummary"):
            summary.append(name)
        if e.get("min", 0) >= 1:
            mandatory.append(name)
    out.append({"type": t, "elements": elements, "summary": summary, "mandatory": mandatory,
                "references": dict(sorted(refs[t].items()))})

# One type per line, so a change to the table reads as a change to its types.
source = ("HL7 FHIR R4 (4.0.1), StructureDefinition and SearchParameter resources, "
          "npm package hl7.fhir.r4.examples@4.0.1; FHIR is published under CC0. "
          "Written by scripts/r4-search-extras.py.")
print('{"source": ' + json.dumps(source) + ',\n "types": [')
print(",\n".join("  " + json.dumps(t, separators=(",", ":")) for t in out))
print(" ]}")
