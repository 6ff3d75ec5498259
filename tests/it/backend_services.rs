//! SMART Backend Services over real HTTP: HIE partners' clients get `client_credentials`
//! tokens with signed assertions (RS384 and ES384; keys inline or at a `jwks_uri` served by
//! a small HTTP server here, refetched when a new `kid` appears), every refusal gets its
//! RFC 6749 error and issues nothing, system scopes (v1, v2, granular) are narrowed to what
//! the client is allowed, and a partner's token reads records as the policy says for its
//! purpose of use: 42 CFR Part 2 data only with a consent or in an emergency, scopes
//! narrowing types (403) and categories (absent). With TEST_ON_POSTGRES=1 every gateway runs
//! on PostgreSQL; `the_partner_flow_runs_on_postgres` does so in any run.

use crate::common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portico::store::Store;
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// TREAT partner, keys inline (RS384 and ES384), every system read.
const NORTH: &str = "hie-north";
/// ETREAT (emergency) partner, keys at a jwks_uri.
const ER: &str = "hie-er";
/// TREAT partner allowed only laboratory Observations and Patient.
const LABS: &str = "hie-labs";
/// PUBHLTH partner: the shipped policy refuses public health.
const PUBLIC_HEALTH: &str = "hie-pubhealth";
/// A TREAT partner that staff disable during a test.
const SOUTH: &str = "hie-south";
/// Not backend clients.
const SYMMETRIC: &str = "app-secret";
const ASYMMETRIC: &str = "app-keys";
const SECRET: &str = "symmetric-client-secret-0123456789";
const LAB_SCOPE: &str =
    "system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
const DANNY: (&str, &str) = ("ehr", "pt-10004");
const BOB: (&str, &str) = ("ehr", "pt-10001");
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/keys").join(name)).unwrap()
}

fn jwk(name: &str) -> Value {
    serde_json::from_slice(&key_file(&format!("{name}.jwk.json"))).unwrap()
}

struct Env {
    gw: Gateway,
    store: Store,
    served_jwks: Arc<Mutex<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// What to change in an otherwise valid assertion.
#[derive(Default, Clone)]
struct Assertion {
    aud: Option<String>,
    exp_in: Option<i64>,
    jti: Option<String>,
    sub: Option<String>,
}

impl Env {
    async fn start(database_url: Option<&str>) -> Env {
        let served_jwks = Arc::new(Mutex::new(json!({ "keys": [jwk("es384")] })));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let jwks_url = {
            let (served, fetches) = (served_jwks.clone(), jwks_fetches.clone());
            let app = axum::Router::new().route(
                "/jwks.json",
                axum::routing::get(move || {
                    let (served, fetches) = (served.clone(), fetches.clone());
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        axum::Json(served.lock().unwrap().clone())
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}/jwks.json")
        };
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let jwks_file = dir.path().join("partner-jwks.json");
        std::fs::write(&jwks_file, json!({ "keys": [jwk("rs384"), jwk("es384")] }).to_string()).unwrap();
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, SECRET).unwrap();
        let jwks = jwks_file.display().to_string();
        let backend = |id: &str, purpose: &str, scopes: &str, keys: &str, groups: &str| {
            format!(
                "[[auth.clients]]\nclient_id = \"{id}\"\nname = \"Partner {id}\"\nkind = \"backend\"\npurpose = \"{purpose}\"\n\
                 groups = [{groups}]\nallowed_scopes = \"{scopes}\"\n{keys}\n"
            )
        };
        let inline = format!("jwks_file = \"{jwks}\"");
        let body = format!(
            "{sources}\n[auth]\nbackend_token_ttl = \"4m\"\n\n{north}{er}{labs}{pubhealth}{south}\n\
             [[auth.clients]]\nclient_id = \"{SYMMETRIC}\"\nname = \"An app with a secret\"\nkind = \"confidential-symmetric\"\n\
             redirect_uris = [\"https://app.example/cb\"]\nallowed_scopes = \"patient/*.rs\"\nsecret = {{ file = \"{secret}\" }}\n\n\
             [[auth.clients]]\nclient_id = \"{ASYMMETRIC}\"\nname = \"An app with keys\"\nkind = \"confidential-asymmetric\"\n\
             redirect_uris = [\"https://app.example/cb\"]\nallowed_scopes = \"patient/*.rs\"\n{inline}\n",
            sources = fixture_file_sources(),
            north = backend(NORTH, "TREAT", "system/*.rs", &inline, "\"north-roster\", \"north-cardiology\""),
            er = backend(ER, "ETREAT", "system/*.read", &format!("jwks_uri = \"{jwks_url}\""), ""),
            labs = backend(LABS, "TREAT", &format!("{LAB_SCOPE} system/Patient.rs"), &inline, ""),
            pubhealth = backend(PUBLIC_HEALTH, "PUBHLTH", "system/*.rs", &inline, ""),
            south = backend(SOUTH, "TREAT", "system/*.rs", &inline, ""),
            secret = secret_file.display(),
        );
        let gw = Gateway::start_in(dir, &body, database_url).await;
        let store = Store::open(&gw.database_url, 2).await.unwrap_or_else(|e| panic!("{e}"));
        Env { gw, store, served_jwks, jwks_fetches }
    }

    fn token_url(&self) -> String {
        format!("{}/token", self.gw.origin)
    }

    /// An assertion for `client_id` signed with the test key `kid`.
    fn assertion(&self, client_id: &str, kid: &str, a: Assertion) -> String {
        let (alg, key) = match kid {
            "rs-1" => (Algorithm::RS384, EncodingKey::from_rsa_pem(&key_file("rs384.pem")).unwrap()),
            "es-1" => (Algorithm::ES384, EncodingKey::from_ec_pem(&key_file("es384.pem")).unwrap()),
            "es-2" => (Algorithm::ES384, EncodingKey::from_ec_pem(&key_file("es384-rotated.pem")).unwrap()),
            other => panic!("no key {other}"),
        };
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": client_id,
            "sub": a.sub.unwrap_or_else(|| client_id.to_string()),
            "aud": a.aud.unwrap_or_else(|| self.token_url()),
            "exp": now + a.exp_in.unwrap_or(240),
            "jti": a.jti.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        });
        jsonwebtoken::encode(&Header { kid: Some(kid.into()), ..Header::new(alg) }, &claims, &key).unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut req = self
            .gw
            .http
            .post(format!("{}{path}", self.gw.origin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Resp { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// `client_credentials` with `assertion` and `scope`.
    async fn token_with(&self, assertion: &str, scope: Option<&str>) -> Resp {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.post("/token", &form, None).await
    }

    /// A token for `client_id` (must succeed); returns the response body.
    async fn token(&self, client_id: &str, kid: &str, scope: &str) -> Value {
        let r = self.token_with(&self.assertion(client_id, kid, Assertion::default()), Some(scope)).await;
        assert_eq!(r.status, 200, "{client_id}/{kid}: {}", r.body);
        r.body
    }

    async fn access_token(&self, client_id: &str, scope: &str) -> String {
        let kid = if client_id == ER { "es-1" } else { "rs-1" };
        self.token(client_id, kid, scope).await["access_token"].as_str().unwrap().to_string()
    }

    async fn tokens_issued(&self) -> i64 {
        sqlx::query("SELECT count(*) FROM tokens").fetch_one(&self.store.pool).await.unwrap().get::<i64, _>(0)
    }

    async fn introspect(&self, as_client: &str, token: &str) -> Resp {
        let a = self.assertion(as_client, "rs-1", Assertion::default());
        self.post(
            "/introspect",
            &[("token", token), ("client_assertion_type", JWT_BEARER), ("client_assertion", &a)],
            None,
        )
        .await
    }

    /// Every resource of a patient's `$everything` for `token`, and the outcomes.
    async fn everything(&self, token: &str, patient: (&str, &str)) -> (Vec<Value>, Vec<Value>) {
        let pid = self.gw.patient_id(patient.0, patient.1);
        let (mut resources, mut outcomes) = (Vec::new(), Vec::new());
        let mut next = Some(format!("Patient/{pid}/$everything?_count=100"));
        while let Some(p) = next.take() {
            let (status, bundle) = self.gw.get_with(&p, Some(token), &[]).await;
            assert_eq!(status, 200, "{bundle}");
            for e in bundle["entry"].as_array().into_iter().flatten() {
                if e["search"]["mode"] == "outcome" {
                    outcomes.push(e["resource"].clone());
                } else {
                    resources.push(e["resource"].clone());
                }
            }
            next = link(&bundle, "next");
        }
        (resources, outcomes)
    }
}

fn assert_oauth_error(r: &Resp, status: u16, error: &str, what: &str) {
    assert_eq!((r.status, r.body["error"].as_str().unwrap_or("")), (status, error), "{what}: {}", r.body);
    assert!(r.body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {}", r.body);
    assert!(r.body.get("access_token").is_none(), "{what}: nothing issued");
    assert!(!r.body.to_string().contains("eyJ"), "{what}: the answer never echoes the assertion");
}

fn from_source(r: &Value, source: &str) -> bool {
    source_tags(r).iter().any(|s| s == source)
}

fn security_codes(r: &Value) -> BTreeSet<String> {
    r["meta"]["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(String::from))
        .collect()
}

fn has_redisclosure_notice(outcomes: &[Value]) -> bool {
    outcomes.iter().any(|o| o.to_string().contains("42 CFR part 2"))
}

#[tokio::test]
async fn partners_get_short_lived_tokens_with_rs384_and_es384_inline_or_at_a_jwks_uri() {
    let env = Env::start(None).await;
    // RS384 and ES384 keys of an inline JWKS.
    for kid in ["rs-1", "es-1"] {
        let r = env.token_with(&env.assertion(NORTH, kid, Assertion::default()), Some("system/*.rs")).await;
        assert_eq!(r.status, 200, "{kid}: {}", r.body);
        assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
        let b = &r.body;
        assert_eq!(b["token_type"], "bearer");
        assert_eq!(b["expires_in"], 240, "auth.backend_token_ttl");
        assert_eq!(b["scope"], "system/*.rs");
        assert!(b["access_token"].as_str().is_some_and(|t| t.len() >= 40));
        for absent in ["refresh_token", "patient", "id_token"] {
            assert!(b.get(absent).is_none(), "{absent} in {b}");
        }
    }
    // Keys at a jwks_uri: fetched once and cached; a new kid fetches them again.
    let fetches = || env.jwks_fetches.load(Ordering::SeqCst);
    env.token(ER, "es-1", "system/*.read").await;
    env.token(ER, "es-1", "system/*.read").await;
    assert_eq!(fetches(), 1, "cached");
    let r = env.token_with(&env.assertion(ER, "es-2", Assertion::default()), Some("system/*.read")).await;
    assert_oauth_error(&r, 400, "invalid_client", "a key not yet published");
    assert_eq!(fetches(), 2, "an unknown kid fetched the keys again");
    // The partner rotates: the new key is published, the old one withdrawn. After the
    // refetch floor (10 s) an unknown kid fetches again.
    *env.served_jwks.lock().unwrap() = json!({ "keys": [jwk("es384-rotated")] });
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    env.token(ER, "es-2", "system/*.read").await;
    assert_eq!(fetches(), 3, "the rotated key was fetched");
    // The discovery document says all this.
    let (status, conf) =
        env.gw.get_with(&format!("{}/.well-known/smart-configuration", env.gw.origin), None, &[]).await;
    assert_eq!(status, 200);
    assert!(conf["grant_types_supported"].as_array().unwrap().contains(&json!("client_credentials")));
    assert!(conf["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("private_key_jwt")));
    for alg in ["RS384", "ES384"] {
        assert!(conf["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap().contains(&json!(alg)));
    }
    assert!(conf["scopes_supported"].as_array().unwrap().contains(&json!("system/*.rs")));
}

#[tokio::test]
async fn refused_assertions_and_requests_get_their_rfc_6749_error_and_issue_nothing() {
    let env = Env::start(None).await;
    let origin = env.gw.origin.clone();
    // A replayed jti: the first use works, the second is refused.
    let jti = uuid::Uuid::new_v4().to_string();
    let replayed = env.assertion(NORTH, "rs-1", Assertion { jti: Some(jti.clone()), ..Default::default() });
    assert_eq!(env.token_with(&replayed, Some("system/*.rs")).await.status, 200);
    let issued = env.tokens_issued().await;
    assert_eq!(issued, 1);
    assert_oauth_error(&env.token_with(&replayed, Some("system/*.rs")).await, 400, "invalid_client", "replay");
    // The same jti in a freshly signed assertion (other key) is refused too.
    let again = env.assertion(NORTH, "es-1", Assertion { jti: Some(jti.clone()), ..Default::default() });
    assert_oauth_error(&env.token_with(&again, Some("system/*.rs")).await, 400, "invalid_client", "jti reuse");

    let hs256 = |secret: &[u8]| {
        let claims = json!({"iss": NORTH, "sub": NORTH, "aud": format!("{origin}/token"),
            "exp": chrono::Utc::now().timestamp() + 60, "jti": uuid::Uuid::new_v4().to_string()});
        let header = Header { kid: Some("rs-1".into()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
    };
    let bad_assertions = [
        ("expired", env.assertion(NORTH, "rs-1", Assertion { exp_in: Some(-120), ..Default::default() })),
        ("exp too far ahead", env.assertion(NORTH, "es-1", Assertion { exp_in: Some(3600), ..Default::default() })),
        (
            "wrong aud",
            env.assertion(NORTH, "rs-1", Assertion { aud: Some(format!("{origin}/fhir")), ..Default::default() }),
        ),
        ("iss ≠ sub", env.assertion(NORTH, "rs-1", Assertion { sub: Some(ER.into()), ..Default::default() })),
        ("HS256 with the public key as secret", hs256(&key_file("rs384.jwk.json"))),
        ("unknown client", env.assertion("hie-nobody", "rs-1", Assertion::default())),
        ("another client's key", env.assertion(ER, "rs-1", Assertion::default())),
        ("not a JWT", "a.b.c".to_string()),
    ];
    for (what, a) in &bad_assertions {
        assert_oauth_error(&env.token_with(a, Some("system/*.rs")).await, 400, "invalid_client", what);
    }
    // A client secret instead of an assertion: a backend client has none …
    let r = env
        .post("/token", &[("grant_type", "client_credentials"), ("client_id", NORTH), ("client_secret", SECRET)], None)
        .await;
    assert_oauth_error(&r, 400, "invalid_client", "client_secret_post for a backend client");
    let r = env
        .post("/token", &[("grant_type", "client_credentials"), ("scope", "system/*.rs")], Some((NORTH, SECRET)))
        .await;
    assert_oauth_error(&r, 401, "invalid_client", "HTTP Basic for a backend client");
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Basic realm=\"portico\"");
    let r = env.post("/token", &[("grant_type", "client_credentials"), ("client_id", NORTH)], None).await;
    assert_oauth_error(&r, 400, "invalid_client", "client_id alone");
    // … and a client that has a secret (or keys) is not a backend client.
    let r = env
        .post("/token", &[("grant_type", "client_credentials"), ("scope", "system/*.rs")], Some((SYMMETRIC, SECRET)))
        .await;
    assert_oauth_error(&r, 400, "unauthorized_client", "symmetric client");
    let r = env.token_with(&env.assertion(ASYMMETRIC, "rs-1", Assertion::default()), Some("system/*.rs")).await;
    assert_oauth_error(&r, 400, "unauthorized_client", "an app's client");
    // A backend client may use no other grant.
    let a = env.assertion(NORTH, "rs-1", Assertion::default());
    let r = env
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", "https://app.example/cb"),
                ("code_verifier", &"v".repeat(43)),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "unauthorized_client", "authorization_code for a backend client");
    let r = env.post("/token", &[("grant_type", "password"), ("client_id", NORTH)], None).await;
    assert_oauth_error(&r, 400, "unsupported_grant_type", "password grant");
    // Scopes: none, only non-system ones, none allowed, malformed.
    for (what, scope) in [
        ("no scope", None),
        ("patient scopes only", Some("patient/*.rs openid")),
        ("nothing allowed", Some("system/Condition.rs")),
        ("writes only", Some("system/Observation.cud")),
        ("malformed", Some("system/Observation.xyz")),
        ("unknown type", Some("system/Spaceship.rs")),
    ] {
        let r = env.token_with(&env.assertion(LABS, "rs-1", Assertion::default()), scope).await;
        assert_oauth_error(&r, 400, "invalid_scope", what);
    }
    assert_eq!(env.tokens_issued().await, issued, "no refusal issued a token");
    // Another partner that happens to pick the same jti is not locked out by it.
    let other = env.assertion(ER, "es-1", Assertion { jti: Some(jti), ..Default::default() });
    assert_eq!(env.token_with(&other, Some("system/*.read")).await.status, 200, "a jti is spent for its client only");
}

#[tokio::test]
async fn system_scopes_in_v1_and_v2_are_narrowed_to_what_the_client_is_allowed() {
    let env = Env::start(None).await;
    for (client, asked, granted) in [
        (NORTH, "system/*.read", "system/*.read"),
        (NORTH, "system/*.rs", "system/*.rs"),
        (NORTH, "system/Observation.rs system/Condition.read", "system/Observation.rs system/Condition.read"),
        (NORTH, "system/*.cruds", "system/*.rs"),
        (NORTH, "system/Observation.r openid launch patient/*.rs", "system/Observation.r"),
        (NORTH, LAB_SCOPE, LAB_SCOPE),
        (LABS, "system/*.rs", &format!("{LAB_SCOPE} system/Patient.rs")),
        (LABS, "system/*.read", &format!("{LAB_SCOPE} system/Patient.rs")),
        (ER, "system/Observation.rs", "system/Observation.rs"),
    ] {
        let kid = if client == ER { "es-1" } else { "rs-1" };
        assert_eq!(env.token(client, kid, asked).await["scope"], granted, "{client} asking {asked}");
    }
}

#[tokio::test]
async fn introspection_revocation_and_disabling_stop_partner_tokens() {
    let env = Env::start(None).await;
    let pid = env.gw.patient_id(BOB.0, BOB.1);
    let token = env.access_token(NORTH, "system/*.rs").await;
    let r = env.introspect(NORTH, &token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["active"], &r.body["client_id"], &r.body["scope"]),
        (&json!(true), &json!(NORTH), &json!("system/*.rs"))
    );
    assert!(r.body["exp"].as_i64().unwrap() <= chrono::Utc::now().timestamp() + 240);
    assert!(r.body.get("patient").is_none());
    // Another client learns nothing about it.
    assert_eq!(env.introspect(LABS, &token).await.body, json!({"active": false}));
    // Revoked by its client: gone at once.
    assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some(&token), &[]).await.0, 200);
    let a = env.assertion(NORTH, "es-1", Assertion::default());
    let r = env
        .post("/revoke", &[("token", &token), ("client_assertion_type", JWT_BEARER), ("client_assertion", &a)], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some(&token), &[]).await.0, 401);
    assert_eq!(env.introspect(NORTH, &token).await.body, json!({"active": false}));
    // Staff disable a partner: its live token stops, and it gets no new one.
    let south = env.access_token(SOUTH, "system/*.rs").await;
    assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some(&south), &[]).await.0, 200);
    let r = env
        .gw
        .http
        .post(format!("{}/admin/clients/{SOUTH}/disable", env.gw.origin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some(&south), &[]).await.0, 401);
    let r = env.token_with(&env.assertion(SOUTH, "rs-1", Assertion::default()), Some("system/*.rs")).await;
    assert_oauth_error(&r, 400, "invalid_client", "disabled client");
    // Staff register a partner through the admin API too; a partner without a purpose is refused.
    let register = |body: Value| {
        env.gw.http.post(format!("{}/admin/clients", env.gw.origin)).bearer_auth(TOKEN).json(&body).send()
    };
    let partner = json!({"name": "HIE West", "kind": "backend", "allowed_scopes": "system/*.read",
        "jwks": {"keys": [jwk("es384")]}, "purpose": "HPAYMT", "groups": ["west-roster"]});
    let r = register(partner.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let west = r.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_string();
    let mut no_purpose = partner.clone();
    no_purpose.as_object_mut().unwrap().remove("purpose");
    let r = register(no_purpose).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("purpose"));
    let west_token = env.token(&west, "es-1", "system/Observation.rs").await;
    assert_eq!(west_token["scope"], "system/Observation.rs");
    // The registry lists partners with their purpose and groups.
    let list: Value = env
        .gw
        .http
        .get(format!("{}/admin/clients", env.gw.origin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let north = list["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == NORTH).unwrap();
    assert_eq!(north["kind"], "backend");
    assert_eq!(north["partner"], json!({"purpose": "TREAT", "groups": ["north-roster", "north-cardiology"]}));
    let west = list["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == west.as_str()).unwrap();
    assert_eq!(west["partner"], json!({"purpose": "HPAYMT", "groups": ["west-roster"]}));
    assert_eq!(list["clients"].as_array().unwrap().len(), 8, "the refused registration wrote nothing");
}

/// Danny (P04) has a Part 2 program's record (behavioral). A TREAT partner sees the rest of
/// his record and nothing of it — until a Part 2 consent names that partner and purpose; an
/// emergency (ETREAT) partner sees it without one. What is released is stamped and carries
/// the redisclosure notice.
#[tokio::test]
async fn a_partners_purpose_and_consent_decide_part_2_data() {
    let env = Env::start(None).await;
    let pid = env.gw.patient_id(DANNY.0, DANNY.1);
    let (staff, _) = env.everything(TOKEN, DANNY).await;
    let part2: BTreeSet<String> = keys(
        &staff
            .iter()
            .filter(|r| r["resourceType"] != "Patient" && from_source(r, "behavioral"))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .collect();
    assert!(part2.len() >= 10 && part2.contains("Condition/behavioral.7300012"), "{part2:?}");
    let ehr: BTreeSet<String> = keys(
        &staff
            .iter()
            .filter(|r| r["resourceType"] != "Patient" && from_source(r, "ehr") && !from_source(r, "behavioral"))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .collect();
    assert!(ehr.contains("Immunization/ehr.imm-10004") && ehr.contains("Encounter/ehr.enc-10009"), "{ehr:?}");

    // TREAT without a consent: the EHR's part, nothing of the program, not even its name.
    let north = env.access_token(NORTH, "system/*.rs").await;
    let (shown, outcomes) = env.everything(&north, DANNY).await;
    let shown_keys: BTreeSet<String> = keys(&shown).into_iter().collect();
    assert!(ehr.is_subset(&shown_keys), "missing: {:?}", ehr.difference(&shown_keys).collect::<Vec<_>>());
    assert!(shown_keys.is_disjoint(&part2), "Part 2 leaked: {:?}", shown_keys.intersection(&part2).collect::<Vec<_>>());
    let text = serde_json::to_string(&shown).unwrap();
    assert!(!text.contains("behavioral") && !text.contains("42CFRPart2"), "the program is named");
    assert!(!has_redisclosure_notice(&outcomes));
    let (status, _) = env.gw.get_with("Condition/behavioral.7300012", Some(&north), &[]).await;
    assert_eq!(status, 404, "withheld reads as unknown");
    let (status, bundle) = env.gw.get_with(&format!("Condition?patient={pid}"), Some(&north), &[]).await;
    assert_eq!(status, 200);
    assert!(!bundle.to_string().contains("behavioral"), "{bundle}");

    // The patient consents to Part 2 disclosure to this partner for treatment.
    let ledger = portico::policy::holds::PolicyLedger::new(env.store.clone());
    ledger.add_consent(&pid, NORTH, &["TREAT".to_string()], true, "backend-services test").await.unwrap();
    let (shown, outcomes) = env.everything(&north, DANNY).await;
    let shown_keys: BTreeSet<String> = keys(&shown).into_iter().collect();
    assert!(part2.is_subset(&shown_keys), "missing: {:?}", part2.difference(&shown_keys).collect::<Vec<_>>());
    assert!(ehr.is_subset(&shown_keys));
    let f11 = shown.iter().find(|r| r["id"] == "behavioral.7300012").unwrap();
    let codes = security_codes(f11);
    assert!(["R", "42CFRPart2", "NORDSCLCD"].iter().all(|c| codes.contains(*c)), "{codes:?}");
    assert!(has_redisclosure_notice(&outcomes));
    let (status, read) = env.gw.get_with("Condition/behavioral.7300012", Some(&north), &[]).await;
    assert_eq!((status, &read["id"]), (200, &json!("behavioral.7300012")));
    // The consent names hie-north: another TREAT partner still gets nothing of it.
    let south = env.access_token(SOUTH, "system/*.rs").await;
    assert_eq!(env.gw.get_with("Condition/behavioral.7300012", Some(&south), &[]).await.0, 404);

    // An emergency partner gets the Part 2 records without a consent, stamped.
    let er = env.access_token(ER, "system/*.read").await;
    let (shown, outcomes) = env.everything(&er, DANNY).await;
    let shown_keys: BTreeSet<String> = keys(&shown).into_iter().collect();
    assert!(part2.is_subset(&shown_keys) && ehr.is_subset(&shown_keys));
    let stamped = |r: &&Value| security_codes(r).contains("NORDSCLCD");
    assert!(shown
        .iter()
        .filter(|r| part2.contains(&format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())))
        .all(|r| stamped(&r)));
    assert!(has_redisclosure_notice(&outcomes));

    // Public health is not an allowed purpose: the token is issued, the record refused.
    let ph = env.access_token(PUBLIC_HEALTH, "system/*.rs").await;
    let (status, body) = env.gw.get_with(&format!("Patient/{pid}"), Some(&ph), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
}

/// System scopes narrow a partner exactly as patient scopes narrow an app: a type not
/// granted is refused (403), a category not granted is absent.
#[tokio::test]
async fn system_scopes_narrow_what_a_partner_reads() {
    let env = Env::start(None).await;
    let pid = env.gw.patient_id(BOB.0, BOB.1);
    let labs = env.access_token(LABS, "system/*.rs").await;
    let (status, body) = env.gw.get_with(&format!("Condition?patient={pid}"), Some(&labs), &[]).await;
    assert_eq!(status, 403, "{body}");
    let (staff_obs, _) = env.gw.all_pages(&format!("Observation?patient={pid}&_count=100")).await;
    let is_lab = |o: &Value| o["category"].to_string().contains("\"laboratory\"");
    let lab: BTreeSet<String> =
        keys(&staff_obs.iter().filter(|o| is_lab(o)).cloned().collect::<Vec<_>>()).into_iter().collect();
    let other: BTreeSet<String> =
        keys(&staff_obs.iter().filter(|o| !is_lab(o)).cloned().collect::<Vec<_>>()).into_iter().collect();
    assert!(!lab.is_empty() && !other.is_empty(), "Bob has lab and other observations");
    let mut got = BTreeSet::new();
    let mut next = Some(format!("Observation?patient={pid}&_count=100"));
    while let Some(p) = next.take() {
        let (status, bundle) = env.gw.get_with(&p, Some(&labs), &[]).await;
        assert_eq!(status, 200, "{bundle}");
        for e in bundle["entry"].as_array().into_iter().flatten().filter(|e| e["search"]["mode"] == "match") {
            got.insert(format!("Observation/{}", e["resource"]["id"].as_str().unwrap()));
        }
        next = link(&bundle, "next");
    }
    assert_eq!(got, lab, "exactly the laboratory observations");
    // A withheld category reads as unknown; a granted one reads.
    let (one_other, one_lab) = (other.iter().next().unwrap(), lab.iter().next().unwrap());
    assert_eq!(env.gw.get_with(one_other, Some(&labs), &[]).await.0, 404);
    assert_eq!(env.gw.get_with(one_lab, Some(&labs), &[]).await.0, 200);
    assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some(&labs), &[]).await.0, 200);
    // $everything holds only what the scopes grant.
    let (all, _) = env.everything(&labs, BOB).await;
    assert!(all.iter().all(|r| r["resourceType"] == "Patient" || (r["resourceType"] == "Observation" && is_lab(r))));
    // No token, a bogus one: 401.
    assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some("not-a-token"), &[]).await.0, 401);
}

#[tokio::test]
async fn the_partner_flow_runs_on_postgres() {
    if !require("postgres") {
        return;
    }
    with_schema(|schema, _pool| async move {
        let env = Env::start(Some(&url_for(&schema))).await;
        let pid = env.gw.patient_id(DANNY.0, DANNY.1);
        let jti = uuid::Uuid::new_v4().to_string();
        let a = env.assertion(ER, "es-1", Assertion { jti: Some(jti), ..Default::default() });
        let r = env.token_with(&a, Some("system/*.read")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_oauth_error(&env.token_with(&a, Some("system/*.read")).await, 400, "invalid_client", "replay");
        let expired = env.assertion(NORTH, "rs-1", Assertion { exp_in: Some(-120), ..Default::default() });
        assert_oauth_error(&env.token_with(&expired, Some("system/*.rs")).await, 400, "invalid_client", "expired");
        let er = r.body["access_token"].as_str().unwrap();
        let (status, _) = env.gw.get_with("Condition/behavioral.7300012", Some(er), &[]).await;
        assert_eq!(status, 200, "an emergency partner reads Part 2 data");
        let north = env.access_token(NORTH, "system/*.rs").await;
        assert_eq!(env.gw.get_with("Condition/behavioral.7300012", Some(&north), &[]).await.0, 404);
        assert_eq!(env.gw.get_with(&format!("Patient/{pid}"), Some(&north), &[]).await.0, 200);
        assert_eq!(env.introspect(NORTH, &north).await.body["active"], true);
        env.store.pool.close().await;
        env.gw.stop().await;
    })
    .await;
}
