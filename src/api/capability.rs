//! The gateway's CapabilityStatement: exactly what the API implements — read and search
//! per type with their parameters, `$everything` on Patient, Bulk Data `$export` (system,
//! Patient, Group), the access log, JSON only, read-only.

use crate::fhir::{self, search, FHIR_VERSION};
use serde_json::{json, Value};

/// The Bulk Data Access IG's canonical base.
const BULK: &str = "http://hl7.org/fhir/uv/bulkdata";

pub fn capability_statement(base_url: &str, date: &str) -> Value {
    let endpoints = super::well_known::endpoints(base_url);
    let mut types: Vec<&str> = vec!["Patient"];
    types.extend(fhir::PATIENT_COMPARTMENT_TYPES);
    types.extend(fhir::SUPPORTING_TYPES);
    let resources: Vec<Value> = types
        .iter()
        .map(|t| {
            let searchable = *t == "Patient" || fhir::patient_element(t).is_some() || *t == "Provenance";
            let mut params: Vec<Value> = Vec::new();
            if searchable {
                params.push(json!({"name": "_id", "type": "token"}));
                params.push(json!({"name": "_lastUpdated", "type": "date"}));
                for name in ["patient", "subject"] {
                    if search::definition(t, name).is_some() {
                        params.push(json!({"name": name, "type": "reference"}));
                    }
                }
                if *t != "Patient" {
                    for d in search::type_params(t) {
                        params.push(json!({"name": d.name, "type": kind_name(d.kind)}));
                    }
                }
            }
            let mut interactions = vec![json!({"code": "read"})];
            if searchable {
                interactions.push(json!({"code": "search-type"}));
            }
            let mut r = json!({"type": t, "interaction": interactions, "versioning": "no-version", "readHistory": false, "updateCreate": false});
            if !params.is_empty() {
                r["searchParam"] = json!(params);
            }
            if *t == "Patient" {
                r["operation"] = json!([
                    {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                    {"name": "export", "definition": format!("{BULK}/OperationDefinition/patient-export")}
                ]);
            }
            r
        })
        .collect();
    let mut resources = resources;
    resources.push(json!({
        "type": "AuditEvent",
        "documentation": "Who accessed a patient's record: the patient (not an app) searches by patient; staff by patient, agent and date.",
        "interaction": [{"code": "search-type"}],
        "searchParam": [
            {"name": "patient", "type": "reference"},
            {"name": "agent", "type": "reference"},
            {"name": "date", "type": "date"}
        ]
    }));
    resources.push(json!({
        "type": "Group",
        "documentation": "Groups a partner may export (its roster), by id; not read or searched.",
        "operation": [{"name": "export", "definition": format!("{BULK}/OperationDefinition/group-export")}]
    }));
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Portico",
        "kind": "instance",
        "software": {"name": "Portico", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Portico patient access gateway", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "instantiates": [format!("{BULK}/CapabilityStatement/bulk-data")],
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Read-only. Search on patient-compartment types needs patient=[id].",
            "security": {
                "cors": false,
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}], "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"}],
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": endpoints["authorize"]},
                        {"url": "token", "valueUri": endpoints["token"]},
                        {"url": "revoke", "valueUri": endpoints["revoke"]},
                        {"url": "introspect", "valueUri": endpoints["introspect"]}
                    ]
                }],
                "description": "A SMART App Launch access token (or, on loopback only, a configured demo token) is required on every data endpoint."
            },
            "resource": resources,
            "operation": [{"name": "export", "definition": format!("{BULK}/OperationDefinition/export")}]
        }]
    })
}

fn kind_name(k: search::ParamKind) -> &'static str {
    match k {
        search::ParamKind::Token => "token",
        search::ParamKind::Date => "date",
        search::ParamKind::Text => "string",
        search::ParamKind::Reference => "reference",
    }
}
