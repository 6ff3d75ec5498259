//! The gateway's CapabilityStatement: exactly what the API implements — read and search
//! per type with their parameters, `$everything` on Patient, Bulk Data `$export` (system,
//! Patient, Group), the access log, JSON only, read-only. Built with the typed model
//! (`fhir::model`).

use crate::fhir::model::codes::{
    CapabilityStatementKind, FHIRVersion, PublicationStatus, ResourceType, ResourceVersionPolicy,
    RestfulCapabilityMode, SearchParamType,
};
use crate::fhir::model::resources::{
    CapabilityStatement, CapabilityStatementImplementation, CapabilityStatementRest, CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction, CapabilityStatementRestResourceOperation,
    CapabilityStatementRestResourceSearchParam, CapabilityStatementRestSecurity, CapabilityStatementSoftware,
};
use crate::fhir::model::types::{CodeableConcept, Coding, Extension, ExtensionValue};
use crate::fhir::model::{finish, instant, BuilderError, DateTime};
use crate::fhir::{self, search, FHIR_VERSION};
use chrono::{Timelike, Utc};
use serde_json::Value;

/// The Bulk Data Access IG's canonical base.
const BULK: &str = "http://hl7.org/fhir/uv/bulkdata";

/// The CapabilityStatement of the gateway at `base_url`, dated when it started.
pub fn capability_statement(base_url: &str, started: chrono::DateTime<Utc>) -> Value {
    finish(typed(base_url, started))
}

fn param(
    name: &str,
    kind: SearchParamType,
) -> Result<Option<CapabilityStatementRestResourceSearchParam>, BuilderError> {
    CapabilityStatementRestResourceSearchParam::builder().name(name.to_string()).r#type(kind).build().map(Some)
}

fn operation(name: &str, definition: String) -> Result<Option<CapabilityStatementRestResourceOperation>, BuilderError> {
    CapabilityStatementRestResourceOperation::builder().name(name.to_string()).definition(definition).build().map(Some)
}

fn interaction(code: &str) -> Result<Option<CapabilityStatementRestResourceInteraction>, BuilderError> {
    CapabilityStatementRestResourceInteraction::builder().code(code.to_string()).build().map(Some)
}

/// The patient parameters a type is searched with: `patient`, `subject` where the type's
/// patient element is `subject`, and the type's own compartment parameter (`actor` …).
fn patient_params(t: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = vec!["patient", "subject"];
    if let Some(c) = fhir::compartment::get(t) {
        if !names.contains(&c.search) {
            names.push(c.search);
        }
    }
    names.retain(|n| search::definition(t, n).is_some());
    names
}

/// Patient, and every type of the patient compartment, is searchable; supporting types
/// are read by id.
fn is_searchable(t: &str) -> bool {
    t == "Patient" || fhir::compartment::get(t).is_some()
}

/// `_summary` and `_elements`, on every search (and on reads, which a CapabilityStatement
/// does not list parameters for).
const SUMMARY_DOC: &str = "true (the elements R4 marks summary, plus mandatory ones), text, data, count or false; trimmed resources are tagged SUBSETTED.";
const ELEMENTS_DOC: &str =
    "Top-level elements to return (id, meta and mandatory elements always come); the resources are tagged SUBSETTED.";

fn documented(
    name: &str,
    kind: SearchParamType,
    doc: &str,
) -> Result<Option<CapabilityStatementRestResourceSearchParam>, BuilderError> {
    CapabilityStatementRestResourceSearchParam::builder()
        .name(name.to_string())
        .r#type(kind)
        .documentation(doc.to_string())
        .build()
        .map(Some)
}

/// `_include` values a search of `t` accepts: each R4 reference parameter of `t`.
fn includes(t: &str) -> Vec<String> {
    search::r4::facts(t).map(|f| f.references.iter().map(|r| format!("{t}:{}", r.name)).collect()).unwrap_or_default()
}

/// `_revinclude` values a search of `t` accepts: each reference parameter of a served type
/// that R4 lets point at `t` by name (parameters that may point at any type are accepted
/// too, but not listed for every type).
fn rev_includes(t: &str) -> Vec<String> {
    fhir::served_types()
        .into_iter()
        .filter_map(search::r4::facts)
        .flat_map(|f| {
            f.references
                .iter()
                .filter(move |r| r.targets.contains(&t))
                .map(move |r| format!("{}:{}", f.resource_type, r.name))
        })
        .collect()
}

/// One served type: read, and search with its parameters where it is searchable.
fn served_type(t: &str, kind: ResourceType) -> Result<CapabilityStatementRestResource, BuilderError> {
    let searchable = is_searchable(t);
    let mut params = Vec::new();
    if searchable {
        params.push(param("_id", SearchParamType::Token)?);
        params.push(param("_lastUpdated", SearchParamType::Date)?);
        for name in patient_params(t) {
            params.push(param(name, SearchParamType::Reference)?);
        }
        if t != "Patient" {
            for d in search::type_params(t) {
                params.push(param(d.name, kind_of(d.kind))?);
            }
        }
        params.push(documented("_summary", SearchParamType::Token, SUMMARY_DOC)?);
        params.push(documented("_elements", SearchParamType::Special, ELEMENTS_DOC)?);
    }
    let mut interactions = vec![interaction("read")?];
    if searchable {
        interactions.push(interaction("search-type")?);
    }
    let mut r = CapabilityStatementRestResource::builder()
        .r#type(kind)
        .interaction(interactions)
        .versioning(ResourceVersionPolicy::NoVersion)
        .read_history(false)
        .update_create(false)
        .search_param(params);
    if searchable {
        r = r
            .search_include(includes(t).into_iter().map(Some).collect())
            .search_rev_include(rev_includes(t).into_iter().map(Some).collect());
    }
    if t == "Patient" {
        r = r.operation(vec![
            operation("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything".into())?,
            operation("export", format!("{BULK}/OperationDefinition/patient-export"))?,
        ]);
    }
    r.build()
}

/// What `Binary` read serves (documents and attachments, `read::binary`).
const BINARY_DOC: &str = "The content of a document, report form or media item a resource released to the caller points at (attachment.url), by the id in that URL: raw bytes with the source's content type, or a Binary resource for Accept: application/fhir+json (up to 16 MiB). Not searched.";

fn typed(base_url: &str, started: chrono::DateTime<Utc>) -> Result<CapabilityStatement, BuilderError> {
    let endpoints = super::well_known::endpoints(base_url);
    let types = fhir::served_types();
    let mut resources = Vec::new();
    // Every served type is an R4 type that R4B kept (a unit test checks none is left out).
    for (t, kind) in types.iter().filter_map(|t| Some((*t, t.parse::<ResourceType>().ok()?))) {
        resources.push(Some(served_type(t, kind)?));
    }
    resources.push(Some(
        CapabilityStatementRestResource::builder()
            .r#type(ResourceType::AuditEvent)
            .documentation(
                "Who accessed a patient's record: the patient (not an app) searches by patient; staff by patient, agent and date."
                    .to_string(),
            )
            .interaction(vec![interaction("search-type")?])
            .search_param(vec![
                param("patient", SearchParamType::Reference)?,
                param("agent", SearchParamType::Reference)?,
                param("date", SearchParamType::Date)?,
            ])
            .build()?,
    ));
    resources.push(Some(
        CapabilityStatementRestResource::builder()
            .r#type(ResourceType::Group)
            .documentation("Groups a partner may export (its roster), by id; not read or searched.".to_string())
            .operation(vec![operation("export", format!("{BULK}/OperationDefinition/group-export"))?])
            .build()?,
    ));
    resources.push(Some(
        CapabilityStatementRestResource::builder()
            .r#type(ResourceType::Binary)
            .documentation(BINARY_DOC.to_string())
            .interaction(vec![interaction("read")?])
            .build()?,
    ));

    let uri = |name: &str| {
        let url = endpoints[name].as_str().unwrap_or_default().to_string();
        Extension::builder().url(name.to_string()).value(ExtensionValue::Uri(url)).build()
    };
    let oauth_uris = Extension::builder()
        .url("http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris".to_string())
        .extension(vec![uri("authorize")?, uri("token")?, uri("revoke")?, uri("introspect")?])
        .build()?;
    let smart = Coding::builder()
        .system("http://terminology.hl7.org/CodeSystem/restful-security-service".to_string())
        .code("SMART-on-FHIR".to_string())
        .build()?;
    let security = CapabilityStatementRestSecurity::builder()
        .extension(vec![oauth_uris])
        .cors(false)
        .service(vec![Some(
            CodeableConcept::builder()
                .coding(vec![Some(smart)])
                .text("OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)".to_string())
                .build()?,
        )])
        .description(
            "A SMART App Launch access token (or, on loopback only, a configured demo token) is required on every data endpoint."
                .to_string(),
        )
        .build()?;
    let rest = CapabilityStatementRest::builder()
        .mode(RestfulCapabilityMode::Server)
        .documentation("Read-only. Search on patient-compartment types needs patient=[id]. _include and _revinclude (also :iterate; not *) resolve only within what was released to the caller; _summary and _elements also apply to reads.".to_string())
        .security(security)
        .resource(resources)
        .operation(vec![operation("export", format!("{BULK}/OperationDefinition/export"))?])
        .build()?;
    // The FHIR version served is R4's; R4B's value set names it too.
    let fhir_version = FHIR_VERSION.parse::<FHIRVersion>().unwrap_or(FHIRVersion::N401);
    let started = started.with_nanosecond(0).unwrap_or(started);
    CapabilityStatement::builder()
        .status(PublicationStatus::Active)
        .date(DateTime::DateTime(instant(started)))
        .publisher("Portico".to_string())
        .kind(CapabilityStatementKind::Instance)
        .software(
            CapabilityStatementSoftware::builder()
                .name("Portico".to_string())
                .version(env!("CARGO_PKG_VERSION").to_string())
                .build()?,
        )
        .implementation(
            CapabilityStatementImplementation::builder()
                .description("Portico patient access gateway".to_string())
                .url(base_url.to_string())
                .build()?,
        )
        .fhir_version(fhir_version)
        .instantiates(vec![Some(format!("{BULK}/CapabilityStatement/bulk-data"))])
        .format(vec![Some("application/fhir+json".to_string()), Some("json".to_string())])
        .rest(vec![Some(rest)])
        .build()
}

fn kind_of(k: search::ParamKind) -> SearchParamType {
    match k {
        search::ParamKind::Token => SearchParamType::Token,
        search::ParamKind::Date => SearchParamType::Date,
        search::ParamKind::Text => SearchParamType::String,
        search::ParamKind::Reference => SearchParamType::Reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    trait KindName {
        fn kind_name(&self) -> &'static str;
    }
    impl KindName for search::ParamDef {
        fn kind_name(&self) -> &'static str {
            match self.kind {
                search::ParamKind::Token => "token",
                search::ParamKind::Date => "date",
                search::ParamKind::Text => "string",
                search::ParamKind::Reference => "reference",
            }
        }
    }

    /// The CapabilityStatement as the gateway wrote it with json! before the typed model.
    fn before(base_url: &str, date: &str) -> Value {
        let endpoints = crate::api::well_known::endpoints(base_url);
        let types = fhir::served_types();
        let resources: Vec<Value> = types
            .iter()
            .map(|t| {
                let searchable = super::is_searchable(t);
                let mut params: Vec<Value> = Vec::new();
                if searchable {
                    params.push(json!({"name": "_id", "type": "token"}));
                    params.push(json!({"name": "_lastUpdated", "type": "date"}));
                    for name in super::patient_params(t) {
                        params.push(json!({"name": name, "type": "reference"}));
                    }
                    if *t != "Patient" {
                        for d in search::type_params(t) {
                            params.push(json!({"name": d.name, "type": d.kind_name()}));
                        }
                    }
                    params.push(json!({"name": "_summary", "type": "token", "documentation": super::SUMMARY_DOC}));
                    params.push(json!({"name": "_elements", "type": "special", "documentation": super::ELEMENTS_DOC}));
                }
                let mut interactions = vec![json!({"code": "read"})];
                if searchable {
                    interactions.push(json!({"code": "search-type"}));
                }
                let mut r = json!({"type": t, "interaction": interactions, "versioning": "no-version", "readHistory": false, "updateCreate": false});
                if !params.is_empty() {
                    r["searchParam"] = json!(params);
                }
                if searchable {
                    let (inc, rev) = (super::includes(t), super::rev_includes(t));
                    if !inc.is_empty() {
                        r["searchInclude"] = json!(inc);
                    }
                    if !rev.is_empty() {
                        r["searchRevInclude"] = json!(rev);
                    }
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
        resources.push(json!({
            "type": "Binary",
            "documentation": super::BINARY_DOC,
            "interaction": [{"code": "read"}]
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
                "documentation": "Read-only. Search on patient-compartment types needs patient=[id]. _include and _revinclude (also :iterate; not *) resolve only within what was released to the caller; _summary and _elements also apply to reads.",
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

    #[test]
    fn the_capability_statement_is_what_the_gateway_wrote_before_and_reads_back_typed() {
        let started = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:20:30.456Z").unwrap().with_timezone(&Utc);
        let served = capability_statement("http://gw/fhir", started);
        assert_eq!(served, before("http://gw/fhir", "2026-03-01T10:20:30Z"));
        let listed: Vec<&str> =
            served["rest"][0]["resource"].as_array().unwrap().iter().filter_map(|r| r["type"].as_str()).collect();
        assert!(listed.iter().all(|t| fhir::is_served_type(t) || ["AuditEvent", "Group", "Binary"].contains(t)));
        assert_eq!(listed.len(), fhir::served_types().len() + 3, "{listed:?}");
        for t in ["Claim", "ExplanationOfBenefit", "ImagingStudy", "MedicationAdministration", "Coverage", "Device"] {
            assert!(listed.contains(&t), "{t}");
        }
        let back: CapabilityStatement = serde_json::from_value(served.clone()).unwrap();
        assert_eq!(serde_json::to_value(back).unwrap(), served, "round-trips through the R4B model");
        assert_eq!(served["fhirVersion"], json!("4.0.1"));
        let of = |t: &str| listed.iter().position(|l| *l == t).map(|i| &served["rest"][0]["resource"][i]).unwrap();
        let names =
            |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>();
        assert!(names(&of("Observation")["searchInclude"]).contains(&"Observation:performer".to_string()));
        assert!(names(&of("MedicationRequest")["searchInclude"]).contains(&"MedicationRequest:medication".to_string()));
        assert!(names(&of("Patient")["searchRevInclude"]).contains(&"Observation:subject".to_string()));
        assert!(of("Practitioner").get("searchInclude").is_none(), "read by id only");
        let summary = of("Observation")["searchParam"].as_array().unwrap().iter().any(|p| p["name"] == "_elements");
        assert!(summary);
    }
}
