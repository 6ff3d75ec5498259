//! Vendor-grade source connections (issue 13 parts 4 and 7): the gateway reaches a source
//! that requires SMART Backend Services (RS384 and ES384 assertions, verified by the
//! simulator: signature, `aud`, `exp`, `jti` reuse refused) with its token cached, and
//! publishes only the public half of its keys at `/jwks/sources.json` for the source to
//! register; a source behind mutual TLS with its own CA is read with the right client
//! certificate and, without it, is a named gap (partial, never silent); a reference carrying
//! another server's base URL is never taken for the source's own resource; and the
//! simulator's vendor profiles (Epic-like: no unparameterized Patient search;
//! Oracle-Health-like: `_count` at most 100 with its own paging links). With
//! TEST_ON_POSTGRES=1 every gateway here runs on PostgreSQL.

use crate::common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portico::simulator::{BackendClient, ClientKeys, SimulatorOptions, SimulatorProfile, SimulatorTls};
use portico::sources::files::ResourceStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const CLIENT_ID: &str = "portico-gateway";
const LAB: &str = "Bayview Regional Reference Lab";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key_path(name: &str) -> PathBuf {
    root().join("tests/keys").join(name)
}

/// The public JWK of a test key (`rs384` or `es384`), as a JWKS.
fn registered_jwks(name: &str) -> Value {
    let jwk: Value = serde_json::from_slice(&std::fs::read(key_path(&format!("{name}.jwk.json"))).unwrap()).unwrap();
    json!({ "keys": [jwk] })
}

fn kid_of(name: &str) -> &'static str {
    if name == "rs384" {
        "rs-1"
    } else {
        "es-1"
    }
}

/// A lab simulator that requires Backend Services from [`CLIENT_ID`] with `keys`.
async fn backend_lab(keys: ClientKeys, extra: SimulatorOptions) -> portico::simulator::RunningSimulator {
    let client = BackendClient { client_id: CLIENT_ID.into(), keys };
    simulate("lab", SimulatorOptions { backend_services: Some(client), ..extra }).await
}

/// The lab's `auth` line: Backend Services with test key `name`.
fn backend_auth(token_url: &str, name: &str) -> String {
    format!(
        "auth = {{ type = \"backend_services\", token_url = \"{token_url}\", client_id = \"{CLIENT_ID}\", \
         private_key = {{ file = {:?} }}, kid = \"{}\", scope = \"system/*.rs\" }}",
        key_path(&format!("{name}.pem")).display().to_string(),
        kid_of(name)
    )
}

/// The EHR (plain) and the lab at `lab_url` with `lab_extra` lines.
async fn ehr_and(lab_url: &str, lab_extra: &str) -> (portico::simulator::RunningSimulator, Gateway) {
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let body = format!(
        "[aggregate]\ncache_ttl = \"1ms\"\n{}{}",
        rest_source("ehr", "Harbor General Hospital", ehr.base_url(), ""),
        rest_source("lab", LAB, lab_url, &format!("retry_backoff = \"20ms\"\nmax_retries = 0\n{lab_extra}"))
    );
    (ehr, Gateway::start(&body).await)
}

/// P01 (Bob) is held by the EHR and the lab.
const BOB: &str = "pt-10001";

#[tokio::test]
async fn a_backend_services_source_is_read_with_rs384_and_es384_and_its_token_is_cached() {
    for name in ["rs384", "es384"] {
        let lab = backend_lab(ClientKeys::Jwks(registered_jwks(name)), SimulatorOptions::default()).await;
        let (_ehr, gw) = ehr_and(lab.base_url(), &backend_auth(&lab.token_url(), name)).await;
        let person = gw.patient_id("ehr", BOB);
        assert_eq!(
            gw.index.resolve(&person).await.unwrap().unwrap().members.len(),
            2,
            "{name}: the index read the lab"
        );
        assert_eq!(lab.stats().token_requests, 1, "{name}: one token for the index build");
        let path = format!("Patient/{person}/$everything?_count=500");
        for _ in 0..3 {
            let (resources, outcomes) = gw.all_pages(&path).await;
            assert!(warnings(&outcomes).is_empty(), "{name}: {outcomes:?}");
            assert!(count_from_source(&resources, "lab") > 0, "{name}");
        }
        let stats = lab.stats();
        assert_eq!(stats.token_requests, 1, "{name}: the token is cached across records: {stats:?}");
        assert_eq!(stats.rejected_401, 0, "{name}: {stats:?}");

        // A token the source no longer honours is replaced once, with a new assertion (a
        // reused jti would be refused).
        lab.controls().expire_tokens();
        let (resources, outcomes) = gw.all_pages(&path).await;
        assert!(warnings(&outcomes).is_empty(), "{name}: {outcomes:?}");
        assert!(count_from_source(&resources, "lab") > 0);
        let stats = lab.stats();
        assert_eq!(stats.token_requests, 2, "{name}: {stats:?}");
        assert_eq!(stats.rejected_401, 1, "{name}: only the expired token was refused: {stats:?}");

        // The gateway publishes the key's public half, nothing private.
        let jwks: Value = reqwest::get(format!("{}/jwks/sources.json", gw.origin)).await.unwrap().json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{jwks}");
        let expected = &registered_jwks(name)["keys"][0];
        for f in ["kty", "kid", "alg", "n", "e", "crv", "x", "y"] {
            assert_eq!(keys[0].get(f), expected.get(f), "{name} {f}");
        }
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(keys[0].get(private).is_none(), "{name}: {private} published");
        }
    }
}

#[tokio::test]
async fn a_source_registering_the_gateways_jwks_url_accepts_its_assertions_at_its_discovered_token_url() {
    // A first gateway publishes the JWKS (its source is not up yet: a named gap, no failure).
    let dead = "http://127.0.0.1:9/fhir";
    let first =
        Gateway::start(&rest_source("lab", LAB, dead, &backend_auth("http://127.0.0.1:9/token", "es384"))).await;
    let url = format!("{}/jwks/sources.json", first.origin);
    let lab = backend_lab(ClientKeys::JwksUrl(url), SimulatorOptions::default()).await;
    // No token_url: the gateway finds it in the lab's .well-known/smart-configuration.
    let auth = backend_auth(&lab.token_url(), "es384").replace(&format!("token_url = \"{}\", ", lab.token_url()), "");
    assert!(!auth.contains("token_url"), "{auth}");
    let (_ehr, gw) = ehr_and(lab.base_url(), &auth).await;
    let person = gw.patient_id("ehr", BOB);
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);
    assert_eq!(lab.stats().rejected_401, 0);
}

#[tokio::test]
async fn a_source_whose_key_is_not_registered_is_a_named_gap() {
    // The lab registered the RSA key; the gateway signs with the EC one.
    let lab = backend_lab(ClientKeys::Jwks(registered_jwks("rs384")), SimulatorOptions::default()).await;
    let mut auth = backend_auth(&lab.token_url(), "es384");
    auth = auth.replace("kid = \"es-1\"", "kid = \"rs-1\"");
    let (_ehr, gw) = ehr_and(lab.base_url(), &auth).await;
    let person = gw.patient_id("ehr", BOB);
    assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 1, "the lab was not read");
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).iter().any(|w| w.contains(LAB)), "{outcomes:?}");
    assert_eq!(count_from_source(&resources, "lab"), 0);
    assert!(count_from_source(&resources, "ehr") > 1);
    assert!(lab.stats().rejected_401 >= 1);
}

/// What to change in an otherwise valid assertion.
#[derive(Default)]
struct Tweak {
    aud: Option<String>,
    exp_in: Option<i64>,
    iss: Option<String>,
    jti: Option<String>,
    kid: Option<String>,
}

fn assertion(key: &str, token_url: &str, t: &Tweak) -> String {
    let now = chrono::Utc::now().timestamp();
    let iss = t.iss.clone().unwrap_or_else(|| CLIENT_ID.into());
    let claims = json!({
        "iss": iss, "sub": iss,
        "aud": t.aud.clone().unwrap_or_else(|| token_url.to_string()),
        "exp": now + t.exp_in.unwrap_or(240),
        "jti": t.jti.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    });
    let pem = std::fs::read(key_path(&format!("{key}.pem"))).unwrap();
    let (alg, encoding) = if key == "rs384" {
        (Algorithm::RS384, EncodingKey::from_rsa_pem(&pem).unwrap())
    } else {
        (Algorithm::ES384, EncodingKey::from_ec_pem(&pem).unwrap())
    };
    let header = Header { kid: Some(t.kid.clone().unwrap_or_else(|| kid_of(key).into())), ..Header::new(alg) };
    jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
}

async fn ask_token(token_url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new().post(token_url).form(form).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn present(token_url: &str, assertion: &str) -> (u16, Value) {
    ask_token(
        token_url,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", "system/*.rs"),
        ],
    )
    .await
}

#[tokio::test]
async fn the_simulator_verifies_signature_audience_expiry_and_jti() {
    let mut jwks = registered_jwks("rs384");
    jwks["keys"].as_array_mut().unwrap().extend(registered_jwks("es384")["keys"].as_array().unwrap().clone());
    let lab = backend_lab(ClientKeys::Jwks(jwks), SimulatorOptions::default()).await;
    let token_url = lab.token_url();

    for key in ["rs384", "es384"] {
        let good = assertion(key, &token_url, &Tweak::default());
        let (status, body) = present(&token_url, &good).await;
        assert_eq!(status, 200, "{key}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        // The token opens the FHIR API; no token does not.
        let (s, _) =
            get_with_token(&format!("{}/Observation?patient=lp-1", lab.base_url()), body["access_token"].as_str())
                .await;
        assert_eq!(s, 200);
        let (s, _) = get_with_token(&format!("{}/Observation?patient=lp-1", lab.base_url()), None).await;
        assert_eq!(s, 401);

        let (status, body) = present(&token_url, &good).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{key}: a reused assertion");
        assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
    }
    let refused = [
        ("another audience", Tweak { aud: Some(format!("{}/other", lab.base_url())), ..Default::default() }, "aud"),
        ("expired", Tweak { exp_in: Some(-120), ..Default::default() }, "expired"),
        ("an hour ahead", Tweak { exp_in: Some(3600), ..Default::default() }, "five minutes"),
        ("another client", Tweak { iss: Some("someone-else".into()), ..Default::default() }, "client id"),
        ("a key it does not have", Tweak { kid: Some("nobody".into()), ..Default::default() }, "kid"),
        ("another key's kid", Tweak { kid: Some("es-1".into()), ..Default::default() }, "kid"),
        ("a reused jti", Tweak { jti: Some("fixed-jti".into()), ..Default::default() }, "issued-then-reused"),
    ];
    // The fixed jti is spent once first (a fresh assertion with it is accepted).
    let (status, _) = present(
        &token_url,
        &assertion("rs384", &token_url, &Tweak { jti: Some("fixed-jti".into()), ..Default::default() }),
    )
    .await;
    assert_eq!(status, 200);
    let before = lab.stats().token_requests;
    for (what, tweak, word) in refused {
        let (status, body) = present(&token_url, &assertion("rs384", &token_url, &tweak)).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{what}: {body}");
        assert!(body.get("access_token").is_none(), "{what}");
        let description = body["error_description"].as_str().unwrap();
        if word != "issued-then-reused" {
            assert!(description.contains(word), "{what}: {description}");
        } else {
            assert!(description.contains("already used"), "{what}: {description}");
        }
    }
    assert_eq!(lab.stats().token_requests - before, 7);
    // A tampered signature, a secret instead of an assertion, and no assertion at all.
    let good = assertion("rs384", &token_url, &Tweak::default());
    let (head, _) = good.rsplit_once('.').unwrap();
    let (status, body) = present(&token_url, &format!("{head}.AAAA")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = ask_token(
        &token_url,
        &[("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", "x")],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = ask_token(&token_url, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 401);
}

async fn get_with_token(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// A CA, the lab's server certificate (127.0.0.1) and the gateway's client certificate,
/// written to a folder as PEM.
struct Pki {
    dir: tempfile::TempDir,
    server: SimulatorTls,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        (cert, key)
    };
    let leaf = |issuer: &(rcgen::Certificate, KeyPair), name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer.0, &issuer.1).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let server_ca = ca("Bayview Lab CA");
    let client_ca = ca("Portico clients CA");
    let other_ca = ca("Someone else's CA");
    let (server_cert, server_key) = leaf(&server_ca, "lab.bayview.test", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(&client_ca, "portico-gateway", ExtendedKeyUsagePurpose::ClientAuth);
    let (stranger_cert, stranger_key) = leaf(&other_ca, "stranger", ExtendedKeyUsagePurpose::ClientAuth);
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("lab-ca.pem", server_ca.0.pem()),
        ("other-ca.pem", other_ca.0.pem()),
        ("client.pem", client_cert),
        ("client.key", client_key),
        ("stranger.pem", stranger_cert),
        ("stranger.key", stranger_key),
    ] {
        write_file(dir.path(), name, &text);
    }
    let server = SimulatorTls { cert_pem: server_cert, key_pem: server_key, client_ca_pem: Some(client_ca.0.pem()) };
    Pki { dir, server }
}

fn tls_lines(dir: &Path, ca: &str, client: Option<&str>) -> String {
    let p = |f: &str| format!("{:?}", dir.join(f).display().to_string());
    match client {
        Some(c) => format!(
            "tls = {{ ca_file = {}, client_cert = {}, client_key = {{ file = {} }} }}",
            p(ca),
            p(&format!("{c}.pem")),
            p(&format!("{c}.key"))
        ),
        None => format!("tls = {{ ca_file = {} }}", p(ca)),
    }
}

#[tokio::test]
async fn a_mutual_tls_source_is_read_with_the_right_client_certificate_and_is_a_named_gap_without() {
    let pki = pki();
    let lab = simulate("lab", SimulatorOptions { tls: Some(pki.server.clone()), ..Default::default() }).await;
    assert!(lab.base_url().starts_with("https://127.0.0.1:"), "{}", lab.base_url());

    let (_ehr, gw) = ehr_and(lab.base_url(), &tls_lines(pki.dir.path(), "lab-ca.pem", Some("client"))).await;
    let person = gw.patient_id("ehr", BOB);
    assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 2);
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);
    let served = lab.stats().fhir_requests;
    assert!(served > 0);

    // No client certificate, one from a CA the lab does not trust, or a lab certificate
    // from a CA the gateway was not told to trust: the lab is never read, and every record
    // says so.
    for (what, ca, client) in [
        ("no client certificate", "lab-ca.pem", None),
        ("a stranger's client certificate", "lab-ca.pem", Some("stranger")),
        ("the lab's CA not trusted", "other-ca.pem", Some("client")),
    ] {
        let (_ehr, gw) = ehr_and(lab.base_url(), &tls_lines(pki.dir.path(), ca, client)).await;
        let person = gw.patient_id("ehr", BOB);
        assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 1, "{what}");
        let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
        assert!(warnings(&outcomes).iter().any(|w| w.contains(LAB)), "{what}: {outcomes:?}");
        assert_eq!(count_from_source(&resources, "lab"), 0, "{what}");
        assert!(count_from_source(&resources, "ehr") > 1, "{what}");
    }
    assert_eq!(lab.stats().fhir_requests, served, "no request got past the handshake");
}

#[tokio::test]
async fn a_reference_with_another_servers_base_url_is_not_the_sources_own() {
    let obs = |id: &str, subject: &str, extra: Value| {
        let mut o = json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}], "text": format!("result {id}")},
            "subject": {"reference": subject},
            "effectiveDateTime": format!("2025-12-0{}T08:00:00Z", id.len())
        });
        o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        o
    };
    let store = ResourceStore::from_resources([
        json!({"resourceType": "Patient", "id": "p123", "name": [{"family": "Quill", "given": ["Ada"]}],
               "birthDate": "1980-02-02", "gender": "female"}),
        json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Local"}]}),
        obs(
            "mine",
            "Patient/p123",
            json!({
                "performer": [{"reference": "http://other.example/fhir/Practitioner/dr1", "display": "Dr Elsewhere"}],
                "hasMember": [{"reference": "http://other.example/fhir/Observation/also-mine"}]
            }),
        ),
        obs("also-mine", "Patient/p123", json!({"performer": [{"reference": "Practitioner/dr1"}]})),
        obs("theirs", "http://other.example/fhir/Patient/p123", json!({})),
    ]);
    let sim = simulate_store(store, SimulatorOptions { name: "clinic".into(), ..Default::default() }).await;
    let gw = Gateway::start(&rest_source("clinic", "Quill Clinic", sim.base_url(), "")).await;
    let person = gw.patient_id("clinic", "p123");
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    let ids: Vec<String> = keys(&resources);
    assert!(ids.contains(&"Observation/clinic.mine".to_string()), "{ids:?}");
    assert!(ids.contains(&"Observation/clinic.also-mine".to_string()), "{ids:?}");
    assert!(!ids.iter().any(|k| k.contains("theirs")), "another server's patient's result is not attached: {ids:?}");
    let mine = resources.iter().find(|r| r["id"] == "clinic.mine").unwrap();
    assert_eq!(mine["performer"][0], json!({"display": "Dr Elsewhere"}), "display-only, not Practitioner/clinic.dr1");
    assert_eq!(mine["hasMember"][0], json!({"display": "(not available through this gateway)"}));
    let also = resources.iter().find(|r| r["id"] == "clinic.also-mine").unwrap();
    assert_eq!(also["performer"][0]["reference"], "Practitioner/clinic.dr1", "a relative reference is local");
    assert!(!serde_json::to_string(&resources).unwrap().contains("other.example"));
    let (status, _) = gw.get("Observation/clinic.theirs").await;
    assert_eq!(status, 404);
    let (search, _) = gw.all_pages(&format!("Observation?patient={person}")).await;
    assert_eq!(search.len(), 2, "{:?}", keys(&search));
}

#[tokio::test]
async fn the_simulator_profiles_behave_like_the_vendors() {
    // Epic-like: a Patient search needs parameters.
    let epic = simulate("ehr", SimulatorOptions { profile: SimulatorProfile::Epic, ..Default::default() }).await;
    for query in ["", "?_count=50", "?_format=json&_count=10"] {
        let (status, body) = get_with_token(&format!("{}/Patient{query}", epic.base_url()), None).await;
        assert_eq!(status, 403, "{query}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    let (status, body) = get_with_token(&format!("{}/Patient?_id={BOB}", epic.base_url()), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entry"].as_array().unwrap().len(), 1);
    let (status, _) = get_with_token(&format!("{}/Patient/{BOB}", epic.base_url()), None).await;
    assert_eq!(status, 200);

    // Oracle-Health-like: at most 100 per page whatever is asked, with its own next links.
    let many: Vec<Value> = (0..130)
        .map(|i| json!({"resourceType": "Observation", "id": format!("o{i:03}"), "status": "final",
                         "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}))
        .chain([json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Many", "given": ["Olive"]}], "birthDate": "1970-01-01"})])
        .collect();
    let oracle = simulate_store(
        ResourceStore::from_resources(many),
        SimulatorOptions { profile: SimulatorProfile::OracleHealth, page_size: 500, ..Default::default() },
    )
    .await;
    let (status, page) =
        get_with_token(&format!("{}/Observation?patient=p1&_count=500", oracle.base_url()), None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["entry"].as_array().unwrap().len(), 100);
    let next = link(&page, "next").expect("a next link");
    assert!(next.contains("-pageContext="), "{next}");
    let (status, rest) = get_with_token(&next, None).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["entry"].as_array().unwrap().len(), 30);
    assert!(link(&rest, "next").is_none());

    // The gateway reads the Oracle-like source whole, page by page.
    let gw = Gateway::start(&rest_source("oracle", "Oracle-like EHR", oracle.base_url(), "page_size = 500")).await;
    let person = gw.patient_id("oracle", "p1");
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert_eq!(resources.iter().filter(|r| r["resourceType"] == "Observation").count(), 130);
}

#[tokio::test]
async fn source_auth_and_tls_config_is_checked_at_load() {
    let load = |lines: &str| {
        let text =
            format!("[[sources]]\nname = \"lab\"\nkind = \"fhir\"\nurl = \"https://lab.example/fhir\"\n{lines}\n");
        portico::config::Config::from_toml(&text, "t.toml", &root(), &[]).map(|_| ()).map_err(|e| e.to_string())
    };
    let key = key_path("es384.pem").display().to_string();
    assert!(load(&format!(
        "auth = {{ type = \"backend_services\", token_url = \"https://lab.example/token\", client_id = \"gw\", \
         private_key = {{ file = {key:?} }}, kid = \"k1\" }}"
    ))
    .is_ok());
    // Without a token_url it is discovered (SMART configuration); a bad one is refused.
    assert!(load(&format!(
        "auth = {{ type = \"backend_services\", client_id = \"gw\", private_key = {{ file = {key:?} }}, kid = \"k1\" }}"
    ))
    .is_ok());
    let bad_token_url = load(&format!(
        "auth = {{ type = \"backend_services\", token_url = \"not a url\", client_id = \"gw\", \
         private_key = {{ file = {key:?} }}, kid = \"k1\" }}"
    ))
    .unwrap_err();
    assert!(bad_token_url.contains("sources[0].auth.token_url"), "{bad_token_url}");
    let missing_key = load(
        "auth = { type = \"backend_services\", token_url = \"https://lab.example/token\", client_id = \"gw\", \
         private_key = { file = \"/nonexistent/key.pem\" }, kid = \"k1\" }",
    )
    .unwrap_err();
    assert!(missing_key.contains("sources[0].auth.private_key"), "{missing_key}");
    // What loads as a file but is no key or certificate is refused by the settings check
    // (`check-config`, start-up), naming the key.
    let settings = |lines: &str| {
        let text =
            format!("[[sources]]\nname = \"lab\"\nkind = \"fhir\"\nurl = \"https://lab.example/fhir\"\n{lines}\n");
        let config = portico::config::Config::from_toml(&text, "t.toml", &root(), &[]).unwrap();
        portico::settings::Settings::from_config(config).map(|_| ()).map_err(|e| e.to_string())
    };
    let not_a_key = key_path("es384.jwk.json").display().to_string();
    let refused = settings(&format!(
        "auth = {{ type = \"backend_services\", token_url = \"https://lab.example/token\", client_id = \"gw\", \
         private_key = {{ file = {not_a_key:?} }}, kid = \"k1\" }}"
    ))
    .unwrap_err();
    assert!(refused.contains("sources[0].auth.private_key"), "{refused}");
    let refused = settings(&format!("tls = {{ ca_file = {not_a_key:?} }}")).unwrap_err();
    assert!(refused.contains("sources[0].tls") && refused.contains("no PEM certificate"), "{refused}");
    assert!(settings(&format!(
        "auth = {{ type = \"backend_services\", token_url = \"https://lab.example/token\", client_id = \"gw\", \
         private_key = {{ file = {key:?} }}, kid = \"k1\" }}"
    ))
    .is_ok());
    let half = load(&format!("tls = {{ client_cert = {key:?} }}")).unwrap_err();
    assert!(half.contains("sources[0].tls.client_key"), "{half}");
    let no_ca = load("tls = { ca_file = \"/nonexistent/ca.pem\" }").unwrap_err();
    assert!(no_ca.contains("sources[0].tls.ca_file"), "{no_ca}");
}

#[tokio::test]
async fn a_simulated_source_can_require_backend_services_or_a_secret_or_behave_like_epic() {
    let simulated = |name: &str, extra: &str| {
        let anchor = fixture_anchor();
        format!(
            "[[sources]]\nname = \"{name}\"\ndisplay = \"{LAB}\"\nkind = \"simulated\"\npath = {:?}\n\
             shift_dates_from = \"{anchor}\"\nmax_retries = 0\n{extra}\n",
            fixtures("lab").display().to_string()
        )
    };
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let ehr_source = rest_source("ehr", "Harbor General Hospital", ehr.base_url(), "");
    // The in-process simulator registers the gateway's key and requires its assertions
    // (no token_url: the simulator's own).
    let auth = format!(
        "auth = {{ type = \"backend_services\", client_id = \"{CLIENT_ID}\", private_key = {{ file = {:?} }}, kid = \"rs-1\" }}",
        key_path("rs384.pem").display().to_string()
    );
    let gw = Gateway::start(&format!("{ehr_source}{}", simulated("lab", &auth))).await;
    let person = gw.patient_id("ehr", BOB);
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);

    // An Oracle-Health-like system with client credentials (its secret from a file).
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "secret", "oracle-like-secret\n");
    let auth = format!(
        "simulator_profile = \"oracle-health\"\npage_size = 500\n\
         auth = {{ type = \"client_credentials\", client_id = \"gw\", client_secret = {{ file = {:?} }} }}",
        dir.path().join("secret").display().to_string()
    );
    let gw = Gateway::start(&format!("{ehr_source}{}", simulated("lab", &auth))).await;
    let person = gw.patient_id("ehr", BOB);
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);

    // An Epic-like system does not list its patients: the index looks the person up there
    // (by identifier, by birth date and family name) when their record is first asked for.
    let gw = Gateway::start(&format!("{ehr_source}{}", simulated("lab", "simulator_profile = \"epic\""))).await;
    let person = gw.patient_id("ehr", BOB);
    assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 1, "the lab listed nobody");
    let (resources, outcomes) = gw.all_pages(&format!("Patient/{person}/$everything?_count=500")).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);
    assert_eq!(gw.index.resolve(&person).await.unwrap().unwrap().members.len(), 2, "linked and stored");
}

#[test]
fn portico_source_jwks_prints_the_public_keys_to_register() {
    let dir = tempfile::tempdir().unwrap();
    let source = |name: &str, key: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\nkind = \"fhir\"\nurl = \"https://{name}.example/fhir\"\n\
             auth = {{ type = \"backend_services\", token_url = \"https://{name}.example/token\", client_id = \"gw\", \
             private_key = {{ file = {:?} }}, kid = \"{}\" }}\n",
            key_path(&format!("{key}.pem")).display().to_string(),
            kid_of(key)
        )
    };
    write_file(dir.path(), "portico.toml", &format!("{}{}", source("epic", "rs384"), source("oracle", "es384")));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["source-jwks", "--config"])
        .arg(dir.path().join("portico.toml"))
        .env(KEK_ENV, TEST_KEK)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jwks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let printed = jwks["keys"].as_array().unwrap();
    assert_eq!(printed.len(), 2, "{jwks}");
    for (printed, name) in printed.iter().zip(["rs384", "es384"]) {
        let expected = &registered_jwks(name)["keys"][0];
        for f in ["kty", "kid", "n", "e", "crv", "x", "y"] {
            assert_eq!(printed.get(f), expected.get(f), "{name} {f}");
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("\"d\"") && !text.contains("PRIVATE"), "{text}");
}

#[tokio::test]
async fn a_backend_services_token_is_replaced_shortly_before_it_expires() {
    let lab = backend_lab(
        ClientKeys::Jwks(registered_jwks("es384")),
        SimulatorOptions { token_ttl: std::time::Duration::from_secs(10), ..Default::default() },
    )
    .await;
    let (_ehr, gw) = ehr_and(lab.base_url(), &backend_auth(&lab.token_url(), "es384")).await;
    let person = gw.patient_id("ehr", BOB);
    let path = format!("Patient/{person}/$everything?_count=500");
    let (_, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    let before = lab.stats();
    // A 10 s token is used until a fifth of its life is left, then replaced before the
    // source would refuse it: a new token, no 401.
    tokio::time::sleep(std::time::Duration::from_millis(8500)).await;
    let (resources, outcomes) = gw.all_pages(&path).await;
    assert!(warnings(&outcomes).is_empty(), "{outcomes:?}");
    assert!(count_from_source(&resources, "lab") > 0);
    let after = lab.stats();
    assert_eq!(after.token_requests, before.token_requests + 1, "{before:?} {after:?}");
    assert_eq!(after.rejected_401, 0, "{after:?}");
}
