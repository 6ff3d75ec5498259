//! Bad input, tried wide (issue 12 part 10): property-based tests (proptest) over the parsers
//! that face the world. The parsers that are library functions — SMART scopes, FHIR search
//! parameters, Bulk kick-off parameters, form bodies, source JSON — are called directly with
//! generated input and must never panic, and must refuse with a message naming what was
//! wrong. The HTTP surfaces — `/fhir` search, `/token` (forms and client assertions),
//! `/authorize`, `/login`, `$export` — get generated requests against one real gateway per
//! test and must answer a 4xx that says what was wrong (or a 2xx/3xx where the input is
//! valid), never a 5xx. Case counts are modest (64–256) to keep the module quick in debug.

use crate::common::*;
use chrono::FixedOffset;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};

const ZONE: FixedOffset = match FixedOffset::east_opt(0) {
    Some(z) => z,
    None => panic!("UTC"),
};

// ---- generators ----

/// Strings that look like what a client might send: mostly printable ASCII with the
/// characters parsers split on, some Unicode, some control characters.
fn wild() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_:.|,$/?=&%*+ -]{0,40}",
        1 => "\\PC{0,30}",
        1 => proptest::collection::vec(any::<char>(), 0..20).prop_map(|c| c.into_iter().collect()),
        1 => Just(String::new()),
        1 => "[0-9]{1,25}",
    ]
}

/// Search parameter names: real ones (with and without modifiers), controls, and noise.
fn param_name() -> impl Strategy<Value = String> {
    let real = prop::sample::select(vec![
        "patient",
        "subject",
        "code",
        "category",
        "date",
        "_id",
        "_lastUpdated",
        "status",
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_elements",
        "_summary",
        "_format",
        "identifier",
        "birthdate",
        "name",
        "clinical-status",
        "_cursor",
        "value-quantity",
        "_has",
        "_type",
        "_since",
    ]);
    let modifier =
        prop::sample::select(vec!["", ":exact", ":missing", ":not", ":text", ":contains", ":below", ":", ":x:y"]);
    prop_oneof![
        4 => (real, modifier).prop_map(|(n, m)| format!("{n}{m}")),
        1 => wild(),
    ]
}

/// Values: dates with prefixes, token and reference shapes, numbers, and noise.
fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (prop::sample::select(vec!["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz"]),
              "[0-9]{1,4}(-[0-9]{1,2}(-[0-9]{1,2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")
            .prop_map(|(p, d)| format!("{p}{d}")),
        2 => "([a-z:/.]{0,20}\\|)?[A-Za-z0-9-]{0,12}(,[A-Za-z0-9|-]{0,10}){0,3}",
        1 => "(Patient/)?[A-Za-z0-9.-]{0,70}",
        1 => "-?[0-9]{0,22}",
        2 => wild(),
    ]
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((param_name(), param_value()), 0..5)
}

/// SMART scopes from their grammar, with each part sometimes wrong.
fn scope() -> impl Strategy<Value = String> {
    let context = prop::sample::select(vec!["patient", "user", "system", "launch", "openid", "Patient", ""]);
    let kind = prop::sample::select(vec!["Observation", "Condition", "*", "Patient", "Foo", "", "observation"]);
    let perms = prop::sample::select(vec!["read", "write", "*", "rs", "cruds", "r", "s", "c", "sr", "x", "", "rsx"]);
    let query = prop_oneof![
        3 => Just(String::new()),
        1 => "\\?category=[a-z:/.|%0-9]{0,30}",
        1 => "\\?[a-z=&|]{0,20}",
    ];
    prop_oneof![
        5 => (context, kind, perms, query).prop_map(|(c, k, p, q)| format!("{c}/{k}.{p}{q}")),
        1 => wild(),
    ]
}

fn scopes() -> impl Strategy<Value = String> {
    proptest::collection::vec(scope(), 0..5).prop_map(|s| s.join(" "))
}

/// JSON shaped like a source's resource: a type, an id, and fields the gateway reads
/// (references, codes, dates, names, meta) holding values of any JSON type.
fn source_resource() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        wild().prop_map(Value::from),
        "Patient/[a-z0-9-]{0,10}".prop_map(|r| json!({ "reference": r })),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(Value::from),
    ];
    let any_json = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop::sample::select(vec![
                    "reference",
                    "system",
                    "code",
                    "coding",
                    "text",
                    "value",
                    "display",
                    "start",
                    "end",
                    "family",
                    "given",
                    "security",
                    "tag"
                ])
                .prop_map(str::to_string),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let field = prop::sample::select(vec![
        "subject",
        "patient",
        "code",
        "category",
        "effectiveDateTime",
        "effectivePeriod",
        "onsetDateTime",
        "recordedDate",
        "meta",
        "name",
        "birthDate",
        "identifier",
        "gender",
        "status",
        "clinicalStatus",
        "valueQuantity",
        "medicationCodeableConcept",
        "encounter",
        "link",
        "contained",
        "text",
        "issued",
        "authoredOn",
        "period",
        "performer",
        "result",
        "entry",
        "extension",
    ]);
    let kind = prop::sample::select(vec![
        "Patient",
        "Observation",
        "Condition",
        "MedicationRequest",
        "Encounter",
        "DiagnosticReport",
        "Procedure",
        "AllergyIntolerance",
        "Immunization",
        "DocumentReference",
        "Bundle",
        "Foo",
    ]);
    (kind, proptest::option::of("[A-Za-z0-9.-]{0,70}"), proptest::collection::btree_map(field, any_json, 0..8))
        .prop_map(|(kind, id, fields)| {
            let mut r = serde_json::Map::new();
            r.insert("resourceType".into(), json!(kind));
            if let Some(id) = id {
                r.insert("id".into(), json!(id));
            }
            for (k, v) in fields {
                r.insert(k.to_string(), v);
            }
            Value::Object(r)
        })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig { cases, failure_persistence: None, ..RunnerConfig::default() })
}

// ---- parsers called directly ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Scopes: accepted ones name served types (or `*`); refusals name the scope at fault.
    #[test]
    fn smart_scopes_parse_or_name_the_bad_scope(text in scopes()) {
        match portico::policy::viewer::parse_scopes(&text) {
            Ok(parsed) => for s in parsed {
                prop_assert!(s.resource_type == "*" || portico::fhir::is_served_type(&s.resource_type), "{s:?}");
                prop_assert!(s.read || s.search);
            },
            Err(e) => {
                let m = e.to_string();
                prop_assert!(text.split_whitespace().any(|s| m.contains(s)), "{m} names no scope of {text:?}");
            }
        }
        match portico::auth::oauth::parse_scopes(&text) {
            Ok(list) => prop_assert!(list.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace))),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// FHIR search parameters: parsed, or refused with a message naming the parameter.
    #[test]
    fn search_parameters_parse_or_name_the_parameter(
        kind in prop::sample::select(vec!["Observation", "Condition", "Patient", "Encounter", "MedicationRequest"]),
        pairs in pairs(),
        lenient in any::<bool>(),
    ) {
        match portico::fhir::search::parse(kind, &pairs, &["_cursor"], lenient, 100, ZONE) {
            Ok(q) => {
                prop_assert!(q.count.is_none_or(|c| c <= 100), "{:?}", q.count);
                // Every filter applies to any resource without panicking.
                for f in &q.filters {
                    let _ = portico::fhir::search::matches(&json!({ "resourceType": kind, "id": "x" }), f, ZONE);
                }
            }
            Err(e) => {
                let m = e.to_string();
                prop_assert!(pairs.iter().any(|(n, _)| m.contains(n.split(':').next().unwrap_or(n))), "{m} for {pairs:?}");
            }
        }
    }

    /// Bulk kick-off parameters (`_type`, `_since`, `_outputFormat`, `_typeFilter`, `patient`
    /// in a POSTed Parameters): parsed, or refused with a message.
    #[test]
    fn export_parameters_parse_or_say_what_is_wrong(
        names in proptest::collection::vec(prop::sample::select(vec!["_type", "_since", "_outputFormat", "_typeFilter", "_elements", "includeAssociatedData", "patient", "_until", "x"]), 0..4),
        values in proptest::collection::vec(prop_oneof![
            param_value(),
            "[A-Za-z]{1,12}(,[A-Za-z]{0,12}){0,3}",
            "(Observation|Condition|Foo)\\?[a-z_-]{0,10}=[a-z0-9|:%-]{0,20}",
            prop::sample::select(vec!["application/fhir+ndjson", "ndjson", "application/ndjson", "text/csv"]).prop_map(str::to_string),
        ], 4),
        post in any::<bool>(),
        lenient in any::<bool>(),
    ) {
        let pairs: Vec<(String, String)> = names.iter().zip(&values).map(|(n, v)| (n.to_string(), v.clone())).collect();
        let body = post.then(|| json!({
            "resourceType": "Parameters",
            "parameter": pairs.iter().map(|(n, v)| if n == "patient" {
                json!({ "name": n, "valueReference": { "reference": v } })
            } else {
                json!({ "name": n, "valueString": v })
            }).collect::<Vec<_>>(),
        }));
        let query = if post { Vec::new() } else { pairs.clone() };
        match portico::export::params::parse(&query, body.as_ref(), lenient, ZONE) {
            Ok(parsed) => {
                if let Ok(selection) = portico::export::params::Selection::new(&parsed.params, ZONE) {
                    let _ = selection.selects(&json!({ "resourceType": "Observation", "id": "x" }));
                }
            }
            Err(e) => prop_assert!(!e.0.trim().is_empty()),
        }
    }

    /// A form body of any bytes: parsed, or an OAuth `invalid_request` with a description.
    #[test]
    fn form_bodies_parse_or_are_invalid_requests(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "([a-z_]{0,12}=[A-Za-z0-9%+._~-]{0,20}&?){0,6}".prop_map(String::into_bytes),
            "(grant_type|code|client_id|client_id|scope)=[%0-9A-Fa-f]{0,9}(&(grant_type|code|client_id)=x){0,2}".prop_map(String::into_bytes),
        ],
    ) {
        match portico::auth::oauth::Form::parse(&body) {
            Ok(form) => { let _ = form.get("grant_type"); }
            Err(e) => {
                prop_assert_eq!(e.code, portico::auth::oauth::ErrorCode::InvalidRequest);
                prop_assert!(!e.description.trim().is_empty());
            }
        }
    }

    /// Source JSON of any shape the gateway reads (demographics, labels, merge, references,
    /// search matching) never makes it panic.
    #[test]
    fn source_json_of_any_shape_is_read_without_panicking(resources in proptest::collection::vec(source_resource(), 1..6)) {
        use portico::aggregate::merge::{merge, standalone, Fetched};
        for r in &resources {
            let _ = portico::identity::matching::Demographics::of(r);
            let _ = portico::fhir::reference::all(r);
            let _ = portico::label::labels_of(r);
            let _ = standalone("ehr", "Harbor General", r.clone());
            for (name, value) in [("date", "ge2020-01-01"), ("code", "http://loinc.org|1234-5"), ("patient", "Patient/x"), ("category", "laboratory")] {
                if let Ok(q) = portico::fhir::search::parse("Observation", &[(name.into(), value.into())], &[], true, 10, ZONE) {
                    for f in &q.filters {
                        let _ = portico::fhir::search::matches(r, f, ZONE);
                    }
                }
            }
        }
        let mut labelled = resources.clone();
        labeler().label(&mut labelled);
        let fetched = vec![Fetched { source: "ehr".into(), display: "Harbor".into(), patient_ids: vec!["x".into()], resources }];
        let _ = merge("g1", &fetched);
    }
}

fn labeler() -> std::sync::Arc<portico::label::Labeler> {
    static LABELER: std::sync::OnceLock<std::sync::Arc<portico::label::Labeler>> = std::sync::OnceLock::new();
    LABELER
        .get_or_init(|| {
            let config = portico::policy::PolicyConfig::load(&root().join("config/policy.toml")).unwrap();
            portico::policy::Policy::new(config, ZONE).unwrap().labeler()
        })
        .clone()
}

// ---- HTTP surfaces against a real gateway ----

/// Runs `cases` generated requests against one gateway; each must pass `check`.
fn against_gateway<S: Strategy>(
    cases: u32,
    config: &str,
    strategy: S,
    check: impl Fn(&Gateway, S::Value) -> futures::future::BoxFuture<'_, Result<(), TestCaseError>>,
) where
    S::Value: std::fmt::Debug,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let gw = rt.block_on(Gateway::start(config));
    let outcome = runner(cases).run(&strategy, |input| rt.block_on(check(&gw, input)));
    rt.block_on(gw.stop());
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// What every answer must be: no 5xx, and a 4xx body that says what was wrong.
fn clear_answer(status: u16, body: &str, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{what}: {status} {body}");
    if (400..500).contains(&status) {
        prop_assert!(body.trim().len() > 10, "{what}: {status} with an empty body");
        if let Ok(v) = serde_json::from_str::<Value>(body) {
            let says = v["issue"][0]["diagnostics"]
                .as_str()
                .or(v["issue"][0]["details"]["text"].as_str())
                .or(v["error_description"].as_str())
                .or(v["error"].as_str());
            prop_assert!(says.is_some_and(|s| !s.trim().is_empty()), "{what}: {status} {body}");
        }
    }
    Ok(())
}

fn query_of(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[test]
fn fhir_search_answers_bad_parameters_with_a_clear_4xx() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let counted = seen.clone();
    against_gateway(
        128,
        &fixture_file_sources(),
        (
            prop::sample::select(vec!["Observation", "Condition", "Patient", "Encounter", "AuditEvent"]),
            any::<bool>(),
            pairs(),
        ),
        move |gw, (kind, someone, mut pairs)| {
            let seen = counted.clone();
            Box::pin(async move {
                // Half the searches name a patient the gateway knows (then the other
                // parameters decide), or a random id would make nearly every search a 4xx
                // and leave the answered side to chance.
                if someone {
                    pairs.insert(0, ("patient".to_string(), gw.patient_id("ehr", "pt-10001")));
                }
                let url = format!("{}/{kind}?{}", gw.fhir, query_of(&pairs));
                let r = gw.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                clear_answer(status, &body, &url)?;
                prop_assert!(status == 200 || (400..500).contains(&status), "{url}: {status}");
                seen.lock().unwrap().insert(status / 100);
                Ok(())
            })
        },
    );
    // The generator reaches both sides: valid searches answered, bad ones refused.
    assert_eq!(*seen.lock().unwrap(), [2, 4].into_iter().collect(), "answers seen");
}

/// A backend client (`partner`, its JWKS written to `dir`) and a public app (`web`), and the
/// file sources.
fn clients_config(dir: &std::path::Path) -> String {
    let jwk: Value = serde_json::from_slice(&std::fs::read(root().join("tests/keys/es384.jwk.json")).unwrap()).unwrap();
    let jwks = dir.join("partner-jwks.json");
    std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string()).unwrap();
    format!(
        "[[auth.clients]]\nclient_id = \"partner\"\nname = \"Partner\"\nkind = \"backend\"\nallowed_scopes = \"system/*.rs\"\njwks_file = {:?}\npurpose = \"TREAT\"\n\
         [[auth.clients]]\nclient_id = \"web\"\nname = \"Web\"\nkind = \"public\"\nredirect_uris = [\"https://app.example/cb\"]\nallowed_scopes = \"openid launch/patient patient/*.rs\"\n{}",
        jwks.display().to_string(),
        fixture_file_sources()
    )
}

/// A JWT-shaped string: three base64url segments of (sometimes) JSON.
fn jwt_like() -> impl Strategy<Value = String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = prop_oneof![
        prop::sample::select(vec!["ES384", "RS384", "none", "HS256", "RS256", ""])
            .prop_map(|alg| json!({ "alg": alg, "typ": "JWT", "kid": "k1" }).to_string()),
        wild(),
    ];
    let claims = prop_oneof![
        (prop::sample::select(vec!["partner", "web", "nobody", ""]), any::<i64>(), wild()).prop_map(
            |(who, exp, jti)| json!({
                "iss": who, "sub": who, "aud": "http://x/token", "exp": exp, "jti": jti
            })
            .to_string()
        ),
        wild(),
    ];
    let segment = |s: String| URL_SAFE_NO_PAD.encode(s);
    prop_oneof![
        4 => (header, claims, "[A-Za-z0-9_-]{0,90}").prop_map(move |(h, c, sig)| format!("{}.{}.{sig}", segment(h), segment(c))),
        1 => wild(),
        1 => "[A-Za-z0-9_.-]{0,200}",
    ]
}

#[test]
fn token_endpoint_answers_any_form_and_any_client_assertion_with_an_oauth_error() {
    let form = prop_oneof![
        // client_credentials with a generated assertion (backend services).
        2 => (jwt_like(), prop::sample::select(vec!["system/*.rs", "system/Observation.rs", "", "patient/*.rs", "system/Foo.x"]))
            .prop_map(|(jwt, scope)| vec![
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("client_assertion_type".to_string(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
                ("client_assertion".to_string(), jwt),
                ("scope".to_string(), scope.to_string()),
            ]),
        // Any grant with generated fields.
        2 => proptest::collection::vec((
            prop::sample::select(vec!["grant_type", "code", "client_id", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_assertion", "client_assertion_type", "client_secret"]).prop_map(str::to_string),
            prop_oneof![prop::sample::select(vec!["authorization_code", "refresh_token", "client_credentials", "password", "web", "partner"]).prop_map(str::to_string), wild()],
        ), 0..6),
    ];
    let body = prop_oneof![
        4 => form.prop_map(|pairs| query_of(&pairs).into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..120),
    ];
    let dir = tempfile::tempdir().unwrap();
    let config = clients_config(dir.path());
    against_gateway(160, &config, body, |gw, body| {
        Box::pin(async move {
            let shown = String::from_utf8_lossy(&body).into_owned();
            let r = gw
                .http
                .post(format!("{}/token", gw.origin))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            clear_answer(status, &text, &shown)?;
            prop_assert!(matches!(status, 400 | 401 | 429), "{shown}: {status} {text}");
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{shown}: not JSON {e}: {text}")))?;
            prop_assert!(v["error"].as_str().is_some(), "{shown}: {text}");
            Ok(())
        })
    });
}

#[test]
fn authorize_and_login_answer_any_query_or_form_without_a_5xx() {
    let authorize = proptest::collection::vec(
        (
            prop::sample::select(vec![
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "aud",
                "code_challenge",
                "code_challenge_method",
                "nonce",
                "launch",
                "x",
            ])
            .prop_map(str::to_string),
            prop_oneof![
                prop::sample::select(vec![
                    "code",
                    "web",
                    "https://app.example/cb",
                    "openid launch/patient patient/*.rs",
                    "S256",
                    "plain",
                    "http://127.0.0.1/fhir"
                ])
                .prop_map(str::to_string),
                "[A-Za-z0-9_-]{43}",
                wild(),
            ],
        ),
        0..9,
    );
    let login = proptest::collection::vec(
        (
            prop::sample::select(vec!["username", "password", "csrf", "csrf_token", "x"]).prop_map(str::to_string),
            wild(),
        ),
        0..5,
    );
    let input = prop_oneof![authorize.prop_map(|q| (true, q)), login.prop_map(|f| (false, f))];
    let dir = tempfile::tempdir().unwrap();
    let config = clients_config(dir.path());
    against_gateway(128, &config, input, |gw, (is_authorize, pairs)| {
        Box::pin(async move {
            let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let (what, r) = if is_authorize {
                let url = format!("{}/authorize?{}", gw.origin, query_of(&pairs));
                (url.clone(), http.get(&url).send().await.unwrap())
            } else {
                let body = query_of(&pairs);
                (
                    format!("POST /login {body}"),
                    http.post(format!("{}/login", gw.origin))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .unwrap(),
                )
            };
            let status = r.status().as_u16();
            let location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
            let text = r.text().await.unwrap();
            clear_answer(status, &text, &what)?;
            if (300..400).contains(&status) {
                let to = location.unwrap_or_default();
                // Only to a registered app's address (with an error) or the gateway's own pages.
                prop_assert!(to.starts_with("https://app.example/cb") || to.starts_with('/'), "{what}: to {to}");
            }
            Ok(())
        })
    });
}

#[test]
fn export_kick_off_answers_any_parameters_with_202_or_a_clear_4xx() {
    let pairs = proptest::collection::vec(
        (
            prop::sample::select(vec![
                "_type",
                "_since",
                "_outputFormat",
                "_typeFilter",
                "_elements",
                "patient",
                "includeAssociatedData",
                "_count",
                "x",
            ])
            .prop_map(str::to_string),
            prop_oneof![
                param_value(),
                "[A-Za-z]{1,12}(,[A-Za-z]{0,12}){0,3}",
                "(Observation|Condition|Foo)\\?[a-z_-]{0,10}=[a-z0-9|:%-]{0,20}",
                prop::sample::select(vec!["application/fhir+ndjson", "ndjson", "application/ndjson", "text/csv"])
                    .prop_map(str::to_string),
            ],
        ),
        0..4,
    );
    let config = format!(
        "[export]\nworkers = 1\nmax_jobs_per_client = 4\n[[export.groups]]\nid = \"roster\"\nname = \"Roster\"\nmembers = [\"ehr/pt-10001\", \"ehr/pt-10004\"]\n{}",
        fixture_file_sources()
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let counted = seen.clone();
    against_gateway(96, &config, (any::<bool>(), pairs), move |gw, (lenient, pairs)| {
        let seen = counted.clone();
        Box::pin(async move {
            let url = format!("{}/Group/roster/$export?{}", gw.fhir, query_of(&pairs));
            let mut req = gw.http.get(&url).bearer_auth(TOKEN).header("accept", "application/fhir+json");
            req = req.header("prefer", if lenient { "respond-async, handling=lenient" } else { "respond-async" });
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let location = r.headers().get("content-location").and_then(|l| l.to_str().ok()).map(str::to_string);
            let text = r.text().await.unwrap();
            clear_answer(status, &text, &url)?;
            prop_assert!(matches!(status, 202 | 400 | 404 | 422 | 429), "{url}: {status} {text}");
            seen.lock().unwrap().insert(status);
            if let Some(job) = location.filter(|_| status == 202) {
                // Cancel at once: the next case starts from an empty queue.
                let gone = gw.http.delete(&job).bearer_auth(TOKEN).send().await.unwrap().status().as_u16();
                prop_assert!(gone == 202 || gone == 404, "cancel {job}: {gone}");
            }
            Ok(())
        })
    });
    // Valid kick-offs are accepted and bad ones refused (both sides reached).
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&202) && seen.contains(&400), "answers seen: {seen:?}");
}

/// Bytes no database text may hold (a NUL) and other non-ids, wherever a request names a
/// patient or a resource: refused or not found like any unknown id, never a 500 (PostgreSQL
/// refuses a NUL in text, SQLite does not, so the gateway must not hand it over).
#[tokio::test]
async fn a_nul_or_other_non_id_is_unknown_not_a_store_failure() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    for path in [
        "Observation?patient=%00",
        "Observation?patient=Patient/%00",
        "Observation?subject=%00",
        "Patient?_id=%00",
        "Patient/%00",
        "Patient/a%00b/$everything",
        "Observation/%00",
        "AuditEvent?patient=%00",
        "AuditEvent?agent=%00",
        "Observation?patient=pt-%E2%80%8B",
    ] {
        let r = gw.http.get(format!("{}/{path}", gw.fhir)).bearer_auth(TOKEN).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(status == 200 || (400..500).contains(&status), "{path}: {status} {body}");
        if status == 200 {
            let bundle: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(bundle["total"].as_u64().unwrap_or(0), 0, "{path}: nothing found: {body}");
        }
    }
}
