#!/usr/bin/env python3
"""Writes src/fhir/r4-patient-compartment.json from the official FHIR R4 definitions
(npm package hl7.fhir.r4.examples@4.0.1, CC0): CompartmentDefinition-patient.json and the
SearchParameter-*.json files. Usage: scripts/r4-compartment.py <package dir> > file.
Facts only: for each type of the Patient compartment, its compartment parameters, the
parameter to ask a source with (`patient` where R4 defines one for the type, else the first
compartment parameter), that parameter's element paths, and the type's date/code/category/
status/reason-code parameters with their element paths (FHIRPath simplified to dotted
paths; `x as dateTime` becomes `xDateTime`; parts that are not plain paths are left out)."""
import glob, json, re, sys

pkg = sys.argv[1]
params = {}
for f in sorted(glob.glob(f"{pkg}/SearchParameter-*.json")):
    d = json.load(open(f))
    for base in d.get("base", []):
        params[(base, d["code"])] = (d.get("type"), d.get("expression") or "")

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

compartment = json.load(open(f"{pkg}/CompartmentDefinition-patient.json"))
types = []
for r in compartment["resource"]:
    t, cparams = r["code"], r.get("param", [])
    if not cparams:
        continue
    search = "patient" if (t, "patient") in params else cparams[0]
    extra = {}
    for name in ["date", "code", "category", "status", "reason-code"]:
        if (t, name) in params:
            kind, expr = params[(t, name)]
            ps = paths(t, expr)
            if ps:
                extra[name] = {"type": kind, "paths": ps}
    types.append({"type": t, "compartment": cparams, "search": search,
                  "paths": paths(t, params[(t, search)][1]), "params": extra})

json.dump({
    "source": "HL7 FHIR R4 (4.0.1), CompartmentDefinition/patient and SearchParameter resources, "
              "npm package hl7.fhir.r4.examples@4.0.1; FHIR is published under CC0. "
              "Written by scripts/r4-compartment.py.",
    "types": types}, sys.stdout, indent=1)
print()
