//! The simulated hospital's CapabilityStatement and SMART discovery document: which types
//! it answers (read + search-type), their search parameters (from `crate::fhir::search`),
//! `Patient/$everything`, `_revinclude=Provenance:target` and Bulk Data `$export` when
//! offered, and, when tokens
//! are required, where to get one. Built once at start; it describes the
//! simulator only and never mentions the data it holds.

use crate::fhir::search::{definition, type_params, ParamKind};
use crate::fhir::{FHIR_JSON, FHIR_VERSION};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

fn kind_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Token => "token",
        ParamKind::Date => "date",
        ParamKind::Text => "string",
        ParamKind::Reference => "reference",
    }
}

/// The search parameters a type answers here, as CapabilityStatement entries.
fn search_params(resource_type: &str) -> Vec<Value> {
    let mut params = vec![json!({"name": "_id", "type": "token"}), json!({"name": "_lastUpdated", "type": "date"})];
    let mut patient_params = vec!["patient", "subject"];
    if let Some(t) = crate::fhir::compartment::get(resource_type) {
        patient_params.push(t.search);
    }
    patient_params.dedup();
    for name in patient_params {
        if definition(resource_type, name).is_some() && !params.iter().any(|p| p["name"] == name) {
            params.push(json!({"name": name, "type": "reference"}));
        }
    }
    params.extend(type_params(resource_type).iter().map(|d| json!({"name": d.name, "type": kind_name(d.kind)})));
    params
}

/// What the simulator offers beyond read and search.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Features {
    /// `Patient/{id}/$everything`.
    pub everything: bool,
    /// `_revinclude=Provenance:target` on every search.
    pub revinclude_provenance: bool,
    /// Bulk Data `$export` at system, Patient and Group level.
    pub bulk: bool,
}

/// The canonical OperationDefinition of `Patient/$everything`.
const PATIENT_EVERYTHING: &str = "http://hl7.org/fhir/OperationDefinition/Patient-everything";

/// The CapabilityStatement. `token_url` is set when bearer tokens are required.
pub(super) fn statement(
    name: &str,
    base_url: &str,
    types: &BTreeSet<String>,
    token_url: Option<&str>,
    features: Features,
) -> Value {
    let resources: Vec<Value> = types
        .iter()
        .map(|t| {
            let mut resource = json!({
                "type": t,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": search_params(t),
            });
            if features.revinclude_provenance {
                resource["searchRevInclude"] = json!([crate::sources::PROVENANCE_REVINCLUDE]);
            }
            let mut operations = Vec::new();
            if features.everything && t == "Patient" {
                operations.push(json!({"name": "everything", "definition": PATIENT_EVERYTHING}));
            }
            if features.bulk && t == "Patient" {
                operations.push(json!({"name": "export", "definition": super::bulk::PATIENT_EXPORT}));
            }
            if features.bulk && t == "Group" {
                operations.push(json!({"name": "export", "definition": super::bulk::GROUP_EXPORT}));
            }
            if !operations.is_empty() {
                resource["operation"] = Value::Array(operations);
            }
            resource
        })
        .collect();
    let mut rest = json!({"mode": "server", "resource": resources});
    if features.bulk {
        rest["operation"] = json!([{"name": "export", "definition": super::bulk::SYSTEM_EXPORT}]);
    }
    if let Some(token_url) = token_url {
        rest["security"] = json!({
            "extension": [{
                "url": OAUTH_URIS,
                "extension": [{"url": "token", "valueUri": token_url}]
            }],
            "service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR"
            }]}],
            "description": "OAuth2 client credentials; send the access token as a Bearer token"
        });
    }
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "kind": "instance",
        "software": {"name": name, "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": name, "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", FHIR_JSON],
        "rest": [rest]
    });
    if features.bulk {
        statement["instantiates"] = json!(["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]);
    }
    statement
}

/// `.well-known/smart-configuration` for a server that issues client-credentials tokens.
pub(super) fn smart_configuration(token_url: &str) -> Value {
    json!({
        "token_endpoint": token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["system/*.read", "system/*.rs"],
        "capabilities": ["client-confidential-symmetric"]
    })
}
