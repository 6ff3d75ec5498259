//! The token side of the SMART authorization server over real HTTP: code exchange with
//! PKCE, refresh rotation and reuse detection, client authentication of every kind
//! (public, secret, RS384 / ES384 assertions), introspection, revocation, the JWKS, the
//! client registry, and refusals that change nothing. Accounts, patient links and grants are
//! written straight into the gateway's store (login lives elsewhere); codes are issued
//! through a library handle on the same store, as `/authorize` does.

use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::FutureExt;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portico::auth::oauth::{Clients, CodeRequest, OAuthSettings, Tokens};
use portico::store::Store;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PUBLIC: &str = "app-public";
const SYMMETRIC: &str = "app-secret";
const OTHER_SYMMETRIC: &str = "app-secret-2";
const ASYMMETRIC: &str = "app-keys";
const BY_URI: &str = "app-keys-uri";
const REDIRECT: &str = "https://app.example/callback";
const SECRET: &str = "symmetric-client-secret-0123456789";
const SCOPES: &str = "openid fhirUser launch/patient offline_access patient/*.rs";

fn keys_dir() -> std::path::PathBuf {
    root().join("tests/keys")
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).unwrap()
}

fn jwk(name: &str) -> Value {
    serde_json::from_slice(&key_file(&format!("{name}.jwk.json"))).unwrap()
}

/// A running gateway with the test clients, and a library handle on its store.
struct Env {
    gw: Gateway,
    store: Store,
    tokens: Tokens,
    /// What the `jwks_uri` client's key server serves.
    served_jwks: Arc<Mutex<Value>>,
    jwks_fetches: Arc<std::sync::atomic::AtomicUsize>,
}

struct Grant {
    id: String,
    account: String,
    link: String,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Env {
    async fn start(code_ttl: Duration, database_url: Option<&str>) -> Env {
        let served_jwks = Arc::new(Mutex::new(json!({ "keys": [jwk("es384")] })));
        let jwks_fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let jwks_url = {
            let (served, fetches) = (served_jwks.clone(), jwks_fetches.clone());
            let app = axum::Router::new().route(
                "/jwks",
                axum::routing::get(move || {
                    let (served, fetches) = (served.clone(), fetches.clone());
                    async move {
                        fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        axum::Json(served.lock().unwrap().clone())
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}/jwks")
        };
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let jwks_file = dir.path().join("client-jwks.json");
        std::fs::write(&jwks_file, json!({ "keys": [jwk("rs384"), jwk("es384")] }).to_string()).unwrap();
        let body = format!(
            r#"
[[sources]]
name = "ehr"
kind = "files"
path = "../fixtures/ehr"

[auth]
access_token_ttl = "1h"

[[auth.clients]]
client_id = "{PUBLIC}"
name = "A public app"
kind = "public"
redirect_uris = ["{REDIRECT}", "http://127.0.0.1:9999/cb"]
allowed_scopes = "{SCOPES}"

[[auth.clients]]
client_id = "{SYMMETRIC}"
name = "A confidential app"
kind = "confidential-symmetric"
redirect_uris = ["{REDIRECT}"]
allowed_scopes = "{SCOPES}"
secret = {{ file = "{secret}" }}

[[auth.clients]]
client_id = "{OTHER_SYMMETRIC}"
name = "Another confidential app"
kind = "confidential-symmetric"
redirect_uris = ["{REDIRECT}"]
allowed_scopes = "{SCOPES}"
secret = {{ file = "{secret}" }}

[[auth.clients]]
client_id = "{ASYMMETRIC}"
name = "An app with keys"
kind = "confidential-asymmetric"
redirect_uris = ["{REDIRECT}"]
allowed_scopes = "{SCOPES}"
jwks_file = "{jwks}"

[[auth.clients]]
client_id = "{BY_URI}"
name = "An app with a jwks_uri"
kind = "confidential-asymmetric"
allowed_scopes = "{SCOPES}"
jwks_uri = "{jwks_url}"
"#,
            secret = secret_file.display(),
            jwks = jwks_file.display(),
        );
        let gw = Gateway::start_in(dir.clone(), &body, database_url).await;
        let store = Store::open(&gw.database_url, 2).await.unwrap_or_else(|e| panic!("{e}"));
        let settings = OAuthSettings {
            issuer: gw.origin.clone(),
            fhir_base: gw.fhir.clone(),
            token_url: format!("{}/token", gw.origin),
            access_token_ttl: Duration::from_secs(3600),
            backend_token_ttl: Duration::from_secs(300),
            refresh_token_ttl: Duration::from_secs(86400),
            code_ttl,
        };
        let tokens = Tokens::new(store.clone(), Clients::new(store.clone()), gw.index.clone(), settings, test_kek())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Env { gw, store, tokens, served_jwks, jwks_fetches }
    }

    /// An account, its link to ehr/pt-10001 and a grant to `client_id`. A record has one
    /// owner (the database keeps one live SELF link per record), so every SELF grant of a
    /// test goes to the same owner's account and link while it is live.
    async fn grant(&self, client_id: &str, relationship: &str, related_person: Option<&str>) -> Grant {
        let now = chrono::Utc::now().to_rfc3339();
        let id = uuid::Uuid::new_v4().to_string();
        if relationship == "SELF" {
            let owner: Option<(String, String)> = sqlx::query_as(
                "SELECT account_id, id FROM account_patients
                 WHERE source = 'ehr' AND source_patient_id = 'pt-10001' AND relationship = 'SELF' AND terminated_at IS NULL",
            )
            .fetch_optional(&self.store.pool)
            .await
            .unwrap();
            if let Some((account, link)) = owner {
                self.insert_grant(&id, &account, &link, client_id, &now).await;
                return Grant { id, account, link };
            }
        }
        let (account, link) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
        sqlx::query("INSERT INTO accounts (id, username, display_name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&account)
            .bind(format!("{account}@example.org"))
            .bind("Test Account")
            .bind(&now)
            .execute(&self.store.pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO account_patients (id, account_id, source, source_patient_id, relationship, related_person, created_by, created_at)
             VALUES ($1, $2, 'ehr', 'pt-10001', $3, $4, 'test', $5)",
        )
        .bind(&link)
        .bind(&account)
        .bind(relationship)
        .bind(related_person)
        .bind(&now)
        .execute(&self.store.pool)
        .await
        .unwrap();
        self.insert_grant(&id, &account, &link, client_id, &now).await;
        Grant { id, account, link }
    }

    async fn insert_grant(&self, id: &str, account: &str, link: &str, client_id: &str, now: &str) {
        sqlx::query(
            "INSERT INTO grants (id, account_id, account_patient_id, client_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(account)
        .bind(link)
        .bind(client_id)
        .bind(SCOPES)
        .bind(now)
        .execute(&self.store.pool)
        .await
        .unwrap();
    }

    /// A code as `/authorize` would issue it; returns (code, verifier).
    async fn code(&self, grant: &Grant, client_id: &str, scopes: &str, nonce: Option<&str>) -> (String, String) {
        let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let code = self
            .tokens
            .issue_code(CodeRequest {
                grant_id: grant.id.clone(),
                client_id: client_id.into(),
                redirect_uri: REDIRECT.into(),
                code_challenge: challenge,
                scopes: scopes.into(),
                nonce: nonce.map(str::to_string),
            })
            .await
            .unwrap();
        (code, verifier)
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
        into_resp(req.send().await.unwrap()).await
    }

    /// The client authentication form fields of a client.
    fn auth(&self, client_id: &str) -> (Fields, Option<(&'static str, &'static str)>) {
        match client_id {
            PUBLIC => (vec![("client_id", PUBLIC.to_string())], None),
            SYMMETRIC => (vec![], Some((SYMMETRIC, SECRET))),
            OTHER_SYMMETRIC => (vec![], Some((OTHER_SYMMETRIC, SECRET))),
            ASYMMETRIC => (
                vec![
                    ("client_assertion_type", portico::auth::oauth::JWT_BEARER.to_string()),
                    ("client_assertion", self.assertion(ASYMMETRIC, "rs-1", Assertion::default())),
                ],
                None,
            ),
            other => panic!("no auth for {other}"),
        }
    }

    /// POST with the client's authentication added.
    async fn call(&self, path: &str, client_id: &str, form: &[(&str, &str)]) -> Resp {
        let (fields, basic) = self.auth(client_id);
        let mut all: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(form);
        self.post(path, &all, basic).await
    }

    async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> Resp {
        self.call(
            "/token",
            client_id,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    async fn refresh(&self, client_id: &str, refresh_token: &str, scope: Option<&str>) -> Resp {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.call("/token", client_id, &form).await
    }

    async fn introspect(&self, client_id: &str, token: &str) -> Resp {
        self.call("/introspect", client_id, &[("token", token)]).await
    }

    /// A client assertion for `client_id` signed with the test key of `kid`.
    fn assertion(&self, client_id: &str, kid: &str, a: Assertion) -> String {
        let (alg, key) = match kid {
            "rs-1" => (Algorithm::RS384, EncodingKey::from_rsa_pem(&key_file("rs384.pem")).unwrap()),
            "es-1" => (Algorithm::ES384, EncodingKey::from_ec_pem(&key_file("es384.pem")).unwrap()),
            "es-2" => (Algorithm::ES384, EncodingKey::from_ec_pem(&key_file("es384-rotated.pem")).unwrap()),
            other => panic!("no key {other}"),
        };
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": a.aud.unwrap_or_else(|| format!("{}/token", self.gw.origin)),
            "exp": now + a.exp_in.unwrap_or(240),
            "jti": a.jti.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        });
        if a.no_jti {
            claims.as_object_mut().unwrap().remove("jti");
        }
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    /// A token exchange for a fresh grant; returns the grant and the token response.
    async fn tokens_for(&self, client_id: &str, scopes: &str) -> (Grant, Value) {
        let grant = self.grant(client_id, "SELF", None).await;
        let (code, verifier) = self.code(&grant, client_id, scopes, None).await;
        let r = self.exchange(client_id, &code, &verifier).await;
        assert_eq!(r.status, 200, "{}", r.body);
        (grant, r.body)
    }

    async fn assert_inactive(&self, client_id: &str, token: &str) {
        let r = self.introspect(client_id, token).await;
        assert_eq!((r.status, &r.body), (200, &json!({ "active": false })));
    }
}

/// Form fields that authenticate a client.
type Fields = Vec<(&'static str, String)>;
/// A refused request: what is wrong, the form, the expected error.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

#[derive(Default)]
struct Assertion {
    aud: Option<String>,
    exp_in: Option<i64>,
    jti: Option<String>,
    no_jti: bool,
}

async fn into_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Resp { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!((r.status, r.error()), (status, error), "{}", r.body);
    assert!(r.body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(&store.pool).await.unwrap().get::<i64, _>(0)
}

#[tokio::test]
async fn a_code_becomes_tokens_and_an_id_token_that_verifies_against_the_jwks() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let grant = env.grant(PUBLIC, "SELF", None).await;
    let (code, verifier) = env.code(&grant, PUBLIC, SCOPES, Some("n-0S6_WzA2Mj")).await;
    let r = env.exchange(PUBLIC, &code, &verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let patient = env.gw.patient_id("ehr", "pt-10001");
    let b = &r.body;
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 3600);
    assert_eq!(b["scope"], SCOPES);
    assert_eq!(b["patient"], patient.as_str());
    let access = b["access_token"].as_str().unwrap();
    assert!(access.len() >= 43, "at least 256 bits");
    assert!(b["refresh_token"].as_str().is_some_and(|t| t.len() >= 43 && t != access));

    // The id_token: RS256 (OIDC's default), kid in the header, verifies with the published key.
    let id_token = b["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let (status, jwks) = env.gw.get_with(&format!("{}/jwks", env.gw.origin), None, &[]).await;
    assert_eq!(status, 200);
    let (_, well_known) = env.gw.get_with(&format!("{}/.well-known/jwks.json", env.gw.origin), None, &[]).await;
    assert_eq!(jwks, well_known);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let key = set.find(header.kid.as_deref().unwrap()).expect("the id_token's kid is published");
    assert!(jwks.to_string().find("\"d\"").is_none(), "no private key material: {jwks}");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[PUBLIC]);
    validation.set_issuer(&[env.gw.origin.as_str()]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(key).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["sub"], grant.account.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["fhirUser"], format!("{}/Patient/{patient}", env.gw.fhir));
    assert!(claims["iat"].as_i64().unwrap() <= claims["exp"].as_i64().unwrap());

    // The resource server's view of the access token.
    let bearer = env.tokens.bearer(access).await.unwrap().expect("live token");
    assert_eq!((bearer.client_id.as_str(), bearer.scopes.as_str()), (PUBLIC, SCOPES));
    assert_eq!(
        (bearer.grant.grant_id.as_str(), bearer.grant.source_patient_id.as_str()),
        (grant.id.as_str(), "pt-10001")
    );
    assert!(bearer.expires_at > chrono::Utc::now() + chrono::Duration::minutes(59));
    let used: Option<String> = sqlx::query("SELECT last_used FROM grants WHERE id = $1")
        .bind(&grant.id)
        .fetch_one(&env.store.pool)
        .await
        .unwrap()
        .get(0);
    assert!(used.is_some(), "bearer use is recorded on the grant");
    assert!(env.tokens.bearer("not-a-token").await.unwrap().is_none());
    assert!(
        env.tokens.bearer(b["refresh_token"].as_str().unwrap()).await.unwrap().is_none(),
        "a refresh token is no bearer"
    );

    // Tokens and codes are stored only as digests.
    let plain = count(&env.store, &format!("SELECT COUNT(*) FROM tokens WHERE token_hash = '{access}'")).await;
    let plain_code = count(&env.store, &format!("SELECT COUNT(*) FROM auth_codes WHERE code_hash = '{code}'")).await;
    assert_eq!((plain, plain_code), (0, 0));

    // Granted less: no refresh token without offline_access, no id_token without openid.
    let (code, verifier) = env.code(&grant, PUBLIC, "launch/patient patient/Observation.rs", None).await;
    let r = env.exchange(PUBLIC, &code, &verifier).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "launch/patient patient/Observation.rs");
    assert!(r.body.get("refresh_token").is_none() && r.body.get("id_token").is_none(), "{}", r.body);

    // A proxy: fhirUser names the proxy's RelatedPerson, or nothing when it is not known.
    for (related, expected) in
        [(Some("ehr/rp-10002"), Some(format!("{}/RelatedPerson/ehr.rp-10002", env.gw.fhir))), (None, None)]
    {
        let proxy = env.grant(PUBLIC, "MTH", related).await;
        let (code, verifier) = env.code(&proxy, PUBLIC, "openid fhirUser launch/patient", None).await;
        let r = env.exchange(PUBLIC, &code, &verifier).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let claims = jsonwebtoken::decode::<Value>(
            r.body["id_token"].as_str().unwrap(),
            &DecodingKey::from_jwk(key).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["fhirUser"].as_str().map(str::to_string), expected);
        assert!(claims.get("nonce").is_none());
    }
    env.gw.stop().await;
}

#[tokio::test]
async fn code_refusals_change_nothing() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let grant = env.grant(PUBLIC, "SELF", None).await;
    let (code, verifier) = env.code(&grant, PUBLIC, SCOPES, None).await;
    let tokens_before = count(&env.store, "SELECT COUNT(*) FROM tokens").await;
    let wrong_verifier = format!("{}x", &verifier[..verifier.len() - 1]);
    let (code_s, verifier_s) = (code.as_str(), verifier.as_str());
    let wrong_verifier = wrong_verifier.as_str();
    let cases: Vec<Case> = vec![
        (
            "wrong verifier",
            vec![("code", code_s), ("redirect_uri", REDIRECT), ("code_verifier", wrong_verifier)],
            "invalid_grant",
        ),
        (
            "short verifier",
            vec![("code", code_s), ("redirect_uri", REDIRECT), ("code_verifier", &verifier_s[..42])],
            "invalid_grant",
        ),
        ("no verifier", vec![("code", code_s), ("redirect_uri", REDIRECT)], "invalid_request"),
        (
            "other redirect",
            vec![("code", code_s), ("redirect_uri", "http://127.0.0.1:9999/cb"), ("code_verifier", verifier_s)],
            "invalid_grant",
        ),
        (
            "redirect prefix",
            vec![("code", code_s), ("redirect_uri", "https://app.example/callback/x"), ("code_verifier", verifier_s)],
            "invalid_grant",
        ),
        ("no redirect", vec![("code", code_s), ("code_verifier", verifier_s)], "invalid_request"),
        (
            "unknown code",
            vec![("code", "bm90LWEtY29kZQ"), ("redirect_uri", REDIRECT), ("code_verifier", verifier_s)],
            "invalid_grant",
        ),
    ];
    for (what, mut form, error) in cases {
        form.push(("grant_type", "authorization_code"));
        form.push(("client_id", PUBLIC));
        let r = env.post("/token", &form, None).await;
        assert_eq!((r.status, r.error()), (400, error), "{what}: {}", r.body);
    }
    // The code was issued to the public app: another (authenticated) client cannot use it.
    let r = env.exchange(SYMMETRIC, &code, &verifier).await;
    assert_oauth_error(&r, 400, "invalid_grant");
    assert_eq!(count(&env.store, "SELECT COUNT(*) FROM tokens").await, tokens_before, "no tokens written");
    let used = count(&env.store, "SELECT COUNT(*) FROM auth_codes WHERE used_at IS NOT NULL").await;
    assert_eq!(used, 0, "failed attempts do not consume the code");
    // … so the rightful exchange still works, once.
    assert_eq!(env.exchange(PUBLIC, &code, &verifier).await.status, 200);

    // A code for a grant that was revoked before the exchange is refused.
    let (code, verifier) = env.code(&grant, PUBLIC, SCOPES, None).await;
    env.tokens.revoke_grant(&grant.id).await.unwrap();
    assert_oauth_error(&env.exchange(PUBLIC, &code, &verifier).await, 400, "invalid_grant");
    env.gw.stop().await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let env = Env::start(Duration::from_secs(1), None).await;
    let grant = env.grant(PUBLIC, "SELF", None).await;
    let (code, verifier) = env.code(&grant, PUBLIC, SCOPES, None).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_oauth_error(&env.exchange(PUBLIC, &code, &verifier).await, 400, "invalid_grant");
    env.gw.stop().await;
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let grant = env.grant(SYMMETRIC, "SELF", None).await;
    let (code, verifier) = env.code(&grant, SYMMETRIC, SCOPES, None).await;
    let first = env.exchange(SYMMETRIC, &code, &verifier).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap();
    let refresh = first.body["refresh_token"].as_str().unwrap();
    let r = env.introspect(SYMMETRIC, access).await;
    assert_eq!(r.body["active"], true, "{}", r.body);

    let replay = env.exchange(SYMMETRIC, &code, &verifier).await;
    assert_oauth_error(&replay, 400, "invalid_grant");
    env.assert_inactive(SYMMETRIC, access).await;
    env.assert_inactive(SYMMETRIC, refresh).await;
    assert!(env.tokens.bearer(access).await.unwrap().is_none());
    assert_oauth_error(&env.refresh(SYMMETRIC, refresh, None).await, 400, "invalid_grant");
    env.gw.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let (_, first) = env.tokens_for(PUBLIC, SCOPES).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();

    let second = env.refresh(PUBLIC, &r1, None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.header("cache-control"), Some("no-store"));
    let r2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    assert_eq!(second.body["scope"], SCOPES);
    assert_eq!(second.body["patient"], env.gw.patient_id("ehr", "pt-10001").as_str());
    assert!(second.body["id_token"].is_string(), "openid still granted: a fresh id_token");
    let a2 = second.body["access_token"].as_str().unwrap().to_string();

    // Escalation is refused and changes nothing: r2 still works afterwards.
    let r = env.refresh(PUBLIC, &r2, Some("openid offline_access patient/*.rs user/*.rs")).await;
    assert_oauth_error(&r, 400, "invalid_scope");
    // Narrowing is accepted (and without offline_access no new refresh token is given).
    let third = env.refresh(PUBLIC, &r2, Some("launch/patient offline_access patient/*.rs")).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(third.body["scope"], "launch/patient offline_access patient/*.rs");
    assert!(third.body.get("id_token").is_none());
    let r3 = third.body["refresh_token"].as_str().unwrap().to_string();
    let a3 = third.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(env.tokens.bearer(&a3).await.unwrap().unwrap().scopes, "launch/patient offline_access patient/*.rs");
    let fourth = env.refresh(PUBLIC, &r3, Some("patient/*.rs")).await;
    assert_eq!(fourth.status, 200, "{}", fourth.body);
    assert!(fourth.body.get("refresh_token").is_none(), "{}", fourth.body);
    let a4 = fourth.body["access_token"].as_str().unwrap().to_string();

    // Reusing r1 (rotated away) revokes the whole family: every access token from this code.
    assert!(env.tokens.bearer(&a2).await.unwrap().is_some());
    assert_oauth_error(&env.refresh(PUBLIC, &r1, None).await, 400, "invalid_grant");
    for a in [first["access_token"].as_str().unwrap(), &a2, &a3, &a4] {
        assert!(env.tokens.bearer(a).await.unwrap().is_none());
    }
    assert_oauth_error(&env.refresh(PUBLIC, &r3, None).await, 400, "invalid_grant");

    // A refresh token is bound to its client.
    let (_, other) = env.tokens_for(PUBLIC, SCOPES).await;
    let r = env.refresh(SYMMETRIC, other["refresh_token"].as_str().unwrap(), None).await;
    assert_oauth_error(&r, 400, "invalid_grant");
    assert_eq!(env.refresh(PUBLIC, other["refresh_token"].as_str().unwrap(), None).await.status, 200);
    env.gw.stop().await;
}

#[tokio::test]
async fn revoked_grants_and_terminated_access_stop_tokens_at_once() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let (grant, t) = env.tokens_for(SYMMETRIC, SCOPES).await;
    let access = t["access_token"].as_str().unwrap();
    assert!(env.tokens.bearer(access).await.unwrap().is_some());
    env.tokens.revoke_grant(&grant.id).await.unwrap();
    assert!(env.tokens.bearer(access).await.unwrap().is_none());
    env.assert_inactive(SYMMETRIC, access).await;
    assert_oauth_error(&env.refresh(SYMMETRIC, t["refresh_token"].as_str().unwrap(), None).await, 400, "invalid_grant");

    // Staff ending the account's access to the record: the live token stops working too.
    let (grant, t) = env.tokens_for(SYMMETRIC, SCOPES).await;
    let access = t["access_token"].as_str().unwrap();
    sqlx::query(
        "UPDATE account_patients SET terminated_at = $1, termination_reason = 'left the practice' WHERE id = $2",
    )
    .bind(chrono::Utc::now().to_rfc3339())
    .bind(&grant.link)
    .execute(&env.store.pool)
    .await
    .unwrap();
    assert!(env.tokens.bearer(access).await.unwrap().is_none());
    env.assert_inactive(SYMMETRIC, access).await;
    let r = env.refresh(SYMMETRIC, t["refresh_token"].as_str().unwrap(), None).await;
    assert_oauth_error(&r, 400, "invalid_grant");
    env.gw.stop().await;
}

#[tokio::test]
async fn symmetric_clients_authenticate_with_their_secret_only() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let grant = env.grant(SYMMETRIC, "SELF", None).await;
    let exchange_form = |code: &str, verifier: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_verifier".into(), verifier.into()),
        ]
    };
    let post = |form: Vec<(String, String)>,
                extra: Vec<(&'static str, &'static str)>,
                basic: Option<(&'static str, &'static str)>| {
        let env = &env;
        async move {
            let mut all: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            all.extend(extra);
            env.post("/token", &all, basic).await
        }
    };
    // HTTP Basic.
    let (code, verifier) = env.code(&grant, SYMMETRIC, SCOPES, None).await;
    let r = post(exchange_form(&code, &verifier), vec![], Some((SYMMETRIC, SECRET))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // client_secret_post.
    let (code, verifier) = env.code(&grant, SYMMETRIC, SCOPES, None).await;
    let r =
        post(exchange_form(&code, &verifier), vec![("client_id", SYMMETRIC), ("client_secret", SECRET)], None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (code, verifier) = env.code(&grant, SYMMETRIC, SCOPES, None).await;
    let form = exchange_form(&code, &verifier);
    // Wrong secret with Basic: 401 and a Basic challenge.
    let r = post(form.clone(), vec![], Some((SYMMETRIC, "wrong-secret-0123456789"))).await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // Unknown client with Basic: the same answer.
    let r2 = post(form.clone(), vec![], Some(("no-such-client", SECRET))).await;
    assert_oauth_error(&r2, 401, "invalid_client");
    assert_eq!(r.body, r2.body, "unknown and known clients fail alike");
    // Wrong secret in the body: 400.
    let r =
        post(form.clone(), vec![("client_id", SYMMETRIC), ("client_secret", "wrong-secret-0123456789")], None).await;
    assert_oauth_error(&r, 400, "invalid_client");
    assert!(r.header("www-authenticate").is_none());
    // No secret at all: a confidential client may not act as a public one.
    let r = post(form.clone(), vec![("client_id", SYMMETRIC)], None).await;
    assert_oauth_error(&r, 400, "invalid_client");
    // Two methods at once.
    let r = post(form.clone(), vec![("client_secret", SECRET)], Some((SYMMETRIC, SECRET))).await;
    assert_oauth_error(&r, 400, "invalid_request");
    // A Basic id differing from the body's client_id.
    let r = post(form.clone(), vec![("client_id", PUBLIC)], Some((SYMMETRIC, SECRET))).await;
    assert_oauth_error(&r, 400, "invalid_request");
    // A public client never sends a secret.
    let r = post(form.clone(), vec![("client_id", PUBLIC), ("client_secret", SECRET)], None).await;
    assert_oauth_error(&r, 400, "invalid_client");
    // An asymmetric client may not use a secret either.
    let r = post(form.clone(), vec![], Some((ASYMMETRIC, SECRET))).await;
    assert_oauth_error(&r, 401, "invalid_client");
    // After all that, the code is still good.
    let r = post(form, vec![], Some((SYMMETRIC, SECRET))).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Secrets are stored as argon2id hashes only.
    let hash: String = sqlx::query("SELECT secret_hash FROM oauth_clients WHERE client_id = $1")
        .bind(SYMMETRIC)
        .fetch_one(&env.store.pool)
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$argon2id$") && !hash.contains(SECRET));
    env.gw.stop().await;
}

#[tokio::test]
async fn asymmetric_clients_authenticate_with_signed_assertions() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let grant = env.grant(ASYMMETRIC, "SELF", None).await;
    let jwt_bearer = portico::auth::oauth::JWT_BEARER;
    let try_with = |assertion: String| {
        let env = &env;
        let grant = &grant;
        async move {
            let (code, verifier) = env.code(grant, ASYMMETRIC, SCOPES, None).await;
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
                ("client_assertion_type", jwt_bearer),
                ("client_assertion", assertion.as_str()),
            ];
            env.post("/token", &form, None).await
        }
    };
    // RS384 and ES384 keys of the inline JWKS.
    for kid in ["rs-1", "es-1"] {
        let r = try_with(env.assertion(ASYMMETRIC, kid, Assertion::default())).await;
        assert_eq!(r.status, 200, "{kid}: {}", r.body);
    }
    // The same jti twice: the second is refused.
    let jti = uuid::Uuid::new_v4().to_string();
    let r =
        try_with(env.assertion(ASYMMETRIC, "es-1", Assertion { jti: Some(jti.clone()), ..Default::default() })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = try_with(env.assertion(ASYMMETRIC, "rs-1", Assertion { jti: Some(jti), ..Default::default() })).await;
    assert_oauth_error(&r, 400, "invalid_client");
    // Expired, wrong audience, too far ahead, no jti, unknown kid, wrong client's key.
    let origin = env.gw.origin.clone();
    for (what, assertion) in [
        ("expired", env.assertion(ASYMMETRIC, "rs-1", Assertion { exp_in: Some(-120), ..Default::default() })),
        (
            "aud",
            env.assertion(ASYMMETRIC, "rs-1", Assertion { aud: Some(format!("{origin}/fhir")), ..Default::default() }),
        ),
        ("exp too far", env.assertion(ASYMMETRIC, "es-1", Assertion { exp_in: Some(3600), ..Default::default() })),
        ("no jti", env.assertion(ASYMMETRIC, "es-1", Assertion { no_jti: true, ..Default::default() })),
        ("unknown kid", env.assertion(ASYMMETRIC, "es-2", Assertion::default())),
        ("not a JWT", "a.b.c".to_string()),
    ] {
        let r = try_with(assertion).await;
        assert_oauth_error(&r, 400, "invalid_client");
        assert!(!r.body.to_string().contains("eyJ"), "{what}: the answer never echoes the assertion");
    }
    // A key published for RS384 cannot sign HS256 with its public half (alg confusion).
    let hs = jsonwebtoken::encode(
        &Header { kid: Some("rs-1".into()), ..Header::new(Algorithm::HS256) },
        &json!({"iss": ASYMMETRIC, "sub": ASYMMETRIC, "aud": format!("{origin}/token"), "exp": chrono::Utc::now().timestamp() + 60, "jti": "x"}),
        &EncodingKey::from_secret(b"anything"),
    )
    .unwrap();
    assert_oauth_error(&try_with(hs).await, 400, "invalid_client");
    // A wrong assertion type.
    let (code, verifier) = env.code(&grant, ASYMMETRIC, SCOPES, None).await;
    let a = env.assertion(ASYMMETRIC, "es-1", Assertion::default());
    let r = env
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
                ("client_assertion", &a),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_client");
    // The asymmetric client cannot pass as public.
    let r = env
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", ASYMMETRIC),
            ],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_client");

    // Keys from a jwks_uri: fetched once and cached; an unknown kid fetches again once.
    let grant = env.grant(BY_URI, "SELF", None).await;
    let by_uri = |kid: &'static str| {
        let env = &env;
        let grant = &grant;
        async move {
            let (code, verifier) = env.code(grant, BY_URI, SCOPES, None).await;
            let a = env.assertion(BY_URI, kid, Assertion::default());
            env.post(
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                    ("client_assertion_type", jwt_bearer),
                    ("client_assertion", &a),
                ],
                None,
            )
            .await
        }
    };
    let fetches = || env.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst);
    let r = by_uri("es-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = by_uri("es-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fetches(), 1, "cached");
    env.served_jwks.lock().unwrap()["keys"].as_array_mut().unwrap().push(jwk("es384-rotated"));
    let r = by_uri("es-2").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fetches(), 2, "an unknown kid fetched the keys again");
    let r = by_uri("rs-1").await;
    assert_oauth_error(&r, 400, "invalid_client");
    assert_eq!(fetches(), 2, "but not again right away");
    env.gw.stop().await;
}

#[tokio::test]
async fn introspection_and_revocation() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let (grant, t) = env.tokens_for(SYMMETRIC, SCOPES).await;
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();

    let r = env.introspect(SYMMETRIC, access).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = &r.body;
    assert_eq!(b["active"], true);
    assert_eq!(b["scope"], SCOPES);
    assert_eq!(b["client_id"], SYMMETRIC);
    assert_eq!(b["sub"], grant.account.as_str());
    assert_eq!(b["patient"], env.gw.patient_id("ehr", "pt-10001").as_str());
    assert_eq!(b["token_type"], "Bearer");
    let (exp, iat) = (b["exp"].as_i64().unwrap(), b["iat"].as_i64().unwrap());
    assert!((3590..=3610).contains(&(exp - iat)), "{b}");
    // Asymmetric clients introspect too; a token of another client is not theirs to see.
    assert_eq!(env.introspect(ASYMMETRIC, access).await.body, json!({ "active": false }));
    assert_eq!(env.introspect(OTHER_SYMMETRIC, access).await.body, json!({ "active": false }));
    env.assert_inactive(SYMMETRIC, "no-such-token").await;
    // Public clients cannot introspect.
    assert_oauth_error(&env.introspect(PUBLIC, access).await, 400, "unauthorized_client");
    // Unauthenticated introspection is refused.
    let r = env.post("/introspect", &[("token", access)], None).await;
    assert_oauth_error(&r, 400, "invalid_client");
    let r = env.post("/introspect", &[("token", access)], Some((SYMMETRIC, "wrong-secret-0123456789"))).await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = env.call("/introspect", SYMMETRIC, &[]).await;
    assert_oauth_error(&r, 400, "invalid_request");

    // Revocation: unknown tokens and other clients' tokens answer 200 and change nothing.
    let r = env.call("/revoke", SYMMETRIC, &[("token", "no-such-token")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = env.call("/revoke", OTHER_SYMMETRIC, &[("token", access)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(env.introspect(SYMMETRIC, access).await.body["active"], true);
    let r = env.call("/revoke", PUBLIC, &[("token", access)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(env.introspect(SYMMETRIC, access).await.body["active"], true);
    // The owner revokes its access token: only that token goes.
    let r = env.call("/revoke", SYMMETRIC, &[("token", access), ("token_type_hint", "access_token")]).await;
    assert_eq!(r.status, 200);
    env.assert_inactive(SYMMETRIC, access).await;
    assert_eq!(env.introspect(SYMMETRIC, refresh).await.body["active"], true);
    // Revoking the refresh token takes its family with it.
    let second = env.refresh(SYMMETRIC, refresh, None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let (a2, r2) = (second.body["access_token"].as_str().unwrap(), second.body["refresh_token"].as_str().unwrap());
    let r = env.call("/revoke", SYMMETRIC, &[("token", r2)]).await;
    assert_eq!(r.status, 200);
    env.assert_inactive(SYMMETRIC, a2).await;
    env.assert_inactive(SYMMETRIC, r2).await;
    assert!(env.tokens.bearer(a2).await.unwrap().is_none());
    // A public app revokes its own token with its client_id.
    let (_, t) = env.tokens_for(PUBLIC, SCOPES).await;
    let a = t["access_token"].as_str().unwrap();
    assert!(env.tokens.bearer(a).await.unwrap().is_some());
    assert_eq!(env.call("/revoke", PUBLIC, &[("token", a)]).await.status, 200);
    assert!(env.tokens.bearer(a).await.unwrap().is_none());
    // Revocation needs client authentication.
    assert_oauth_error(&env.post("/revoke", &[("token", a)], None).await, 400, "invalid_client");
    env.gw.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_oauth_errors() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let url = format!("{}/token", env.gw.origin);
    // JSON instead of a form.
    let r = into_resp(
        env.gw
            .http
            .post(&url)
            .json(&json!({"grant_type": "authorization_code", "client_id": PUBLIC}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // No content type.
    let r = into_resp(env.gw.http.post(&url).body("grant_type=refresh_token").send().await.unwrap()).await;
    assert_oauth_error(&r, 400, "invalid_request");
    // A repeated parameter.
    let r = env
        .post(
            "/token",
            &[("grant_type", "refresh_token"), ("grant_type", "refresh_token"), ("client_id", PUBLIC)],
            None,
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // No grant type; an unknown one; one this server does not offer.
    assert_oauth_error(&env.post("/token", &[("client_id", PUBLIC)], None).await, 400, "invalid_request");
    for gt in ["password", "urn:ietf:params:oauth:grant-type:device_code"] {
        let r = env.post("/token", &[("grant_type", gt), ("client_id", PUBLIC)], None).await;
        assert_oauth_error(&r, 400, "unsupported_grant_type");
    }
    // client_credentials is offered, but only to backend clients (backend_services.rs).
    let r = env.post("/token", &[("grant_type", "client_credentials"), ("client_id", PUBLIC)], None).await;
    assert_oauth_error(&r, 400, "unauthorized_client");
    // Missing refresh_token.
    assert_oauth_error(
        &env.post("/token", &[("grant_type", "refresh_token"), ("client_id", PUBLIC)], None).await,
        400,
        "invalid_request",
    );
    // Unknown client.
    let r = env
        .post("/token", &[("grant_type", "refresh_token"), ("client_id", "nobody"), ("refresh_token", "x")], None)
        .await;
    assert_oauth_error(&r, 400, "invalid_client");
    // A body over the limit.
    let big = format!("grant_type=refresh_token&client_id={PUBLIC}&refresh_token={}", "a".repeat(200_000));
    let r = into_resp(
        env.gw
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.status == 400 || r.status == 413, "{} {}", r.status, r.body);
    // Not UTF-8; a malformed Authorization header; another auth scheme.
    let r = into_resp(
        env.gw
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a', b'=', 0xff])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = into_resp(
        env.gw
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", "Basic !!!")
            .body("grant_type=refresh_token&refresh_token=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = into_resp(
        env.gw
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .bearer_auth("whatever")
            .body("grant_type=refresh_token&refresh_token=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // GET is not a token request.
    let r = into_resp(env.gw.http.get(&url).send().await.unwrap()).await;
    assert_eq!(r.status, 405);
    env.gw.stop().await;
}

#[tokio::test]
async fn staff_register_list_and_disable_clients() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let admin = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let env = &env;
        let url = format!("{}{path}", env.gw.origin);
        let token = token.map(str::to_string);
        async move {
            let mut req = env.gw.http.request(method, url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            into_resp(req.send().await.unwrap()).await
        }
    };
    // Staff only.
    assert_eq!(admin(reqwest::Method::GET, "/admin/clients", None, None).await.status, 401);
    let listed = admin(reqwest::Method::GET, "/admin/clients", Some(TOKEN), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ids: Vec<&str> =
        listed.body["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    for c in [PUBLIC, SYMMETRIC, ASYMMETRIC, BY_URI] {
        assert!(ids.contains(&c), "{ids:?}");
    }
    assert!(!listed.body.to_string().contains("argon2") && !listed.body.to_string().contains(SECRET));

    // Register a confidential-symmetric app: the secret is shown once and works.
    let r = admin(
        reqwest::Method::POST,
        "/admin/clients",
        Some(TOKEN),
        Some(json!({"name": "Registered app", "kind": "confidential-symmetric", "redirect_uris": [REDIRECT], "allowed_scopes": SCOPES})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["client_id"].as_str().unwrap().to_string();
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    let client = env.tokens_client(&id).await.expect("registered");
    assert!(client.accepts_redirect(REDIRECT) && !client.accepts_redirect("https://app.example/"));
    let grant = env.grant(&id, "SELF", None).await;
    let (code, verifier) = env.code(&grant, &id, SCOPES, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    let t = env.post("/token", &form, Some((&id, &secret))).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let access = t.body["access_token"].as_str().unwrap();

    // Invalid registrations say what is wrong and store nothing.
    let before = count(&env.store, "SELECT COUNT(*) FROM oauth_clients").await;
    for (body, needle) in [
        (
            json!({"name": "x", "kind": "public", "redirect_uris": ["http://app.example/cb"], "allowed_scopes": "openid"}),
            "https",
        ),
        (
            json!({"name": "x", "kind": "public", "redirect_uris": ["https://app.example/cb#frag"], "allowed_scopes": "openid"}),
            "fragment",
        ),
        (json!({"name": "x", "kind": "public", "redirect_uris": [], "allowed_scopes": "openid"}), "redirect"),
        (
            json!({"name": "x", "kind": "confidential-asymmetric", "redirect_uris": [REDIRECT], "allowed_scopes": "openid"}),
            "jwks",
        ),
        (json!({"name": "x", "kind": "secret", "redirect_uris": [REDIRECT], "allowed_scopes": "openid"}), "kind"),
        (
            json!({"name": "x", "kind": "confidential-asymmetric", "redirect_uris": [REDIRECT], "allowed_scopes": "openid", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "private",
        ),
    ] {
        let r = admin(reqwest::Method::POST, "/admin/clients", Some(TOKEN), Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.to_string().contains(needle), "{body}: {}", r.body);
    }
    assert_eq!(count(&env.store, "SELECT COUNT(*) FROM oauth_clients").await, before);
    // An asymmetric app with an inline JWKS; a public one.
    let r = admin(
        reqwest::Method::POST,
        "/admin/clients",
        Some(TOKEN),
        Some(json!({"name": "Keys app", "kind": "confidential-asymmetric", "redirect_uris": [REDIRECT], "allowed_scopes": SCOPES, "jwks": {"keys": [jwk("es384")]}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("client_secret").is_none());
    let r = admin(
        reqwest::Method::POST,
        "/admin/clients",
        Some(TOKEN),
        Some(json!({"name": "Public app", "kind": "public", "redirect_uris": ["http://localhost:3000/cb"], "allowed_scopes": SCOPES})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Disabling stops the app's tokens and its authentication at once.
    let r = admin(reqwest::Method::POST, &format!("/admin/clients/{id}/disable"), Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(env.tokens.bearer(access).await.unwrap().is_none());
    assert!(env.tokens_client(&id).await.is_none());
    let (code, verifier) = env.code(&grant, &id, SCOPES, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    assert_oauth_error(&env.post("/token", &form, Some((&id, &secret))).await, 401, "invalid_client");
    let r = admin(reqwest::Method::POST, "/admin/clients/nobody/disable", Some(TOKEN), None).await;
    assert_eq!(r.status, 404);
    let listed = admin(reqwest::Method::GET, "/admin/clients", Some(TOKEN), None).await;
    let entry =
        listed.body["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == id.as_str()).unwrap().clone();
    assert!(entry["disabled_at"].is_string(), "{entry}");
    env.gw.stop().await;
}

impl Env {
    async fn tokens_client(&self, id: &str) -> Option<portico::auth::oauth::Client> {
        Clients::new(self.store.clone()).client(id).await.unwrap()
    }
}

#[tokio::test]
async fn config_clients_are_validated_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display()), 1).await.unwrap();
    let clients = Clients::new(store.clone());
    let base = |extra: &str| {
        format!(
            "[[sources]]\nname = \"ehr\"\nkind = \"files\"\npath = \"../fixtures/ehr\"\n[[auth.clients]]\nclient_id = \"a\"\nname = \"A\"\nallowed_scopes = \"openid\"\n{extra}"
        )
    };
    for (extra, message) in [
        ("kind = \"public\"\nredirect_uris = [\"http://app.example/cb\"]", "auth.clients[0].redirect_uris[0]"),
        ("kind = \"confidential-symmetric\"\nredirect_uris = [\"https://app.example/cb\"]", "auth.clients[0].secret"),
        (
            "kind = \"confidential-symmetric\"\nredirect_uris = [\"https://app.example/cb\"]\nsecret = { env = \"PORTICO_TEST_NO_SUCH_VARIABLE\" }",
            "PORTICO_TEST_NO_SUCH_VARIABLE",
        ),
        ("kind = \"confidential-asymmetric\"\nredirect_uris = [\"https://app.example/cb\"]", "jwks"),
        ("kind = \"confidential-asymmetric\"\njwks_file = \"/no/such/jwks.json\"", "auth.clients[0].jwks_file"),
        ("kind = \"partner\"\nredirect_uris = [\"https://app.example/cb\"]", "auth.clients[0].kind"),
    ] {
        let config = portico::config::Config::from_toml(&base(extra), "t.toml", &root().join("config"), &[]).unwrap();
        let err = clients.sync_config(&config.auth.clients, &config.base_dir).await.unwrap_err().to_string();
        assert!(err.contains(message), "{extra}: {err}");
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM oauth_clients").await, 0, "nothing half-loaded");
}

#[tokio::test]
async fn the_token_flow_runs_on_postgres() {
    if !require("postgres") {
        return;
    }
    const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(SERVER)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {SERVER}: {e}. scripts/test starts it."));
    let schema = format!("portico_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    let url = format!("{SERVER}?options=-c%20search_path%3D{schema}");
    let outcome = std::panic::AssertUnwindSafe(async {
        let env = Env::start(Duration::from_secs(60), Some(&url)).await;
        // Code exchange with an assertion, replay protection, rotation, reuse, introspection.
        let (grant, t) = env.tokens_for(ASYMMETRIC, SCOPES).await;
        assert_eq!(t["patient"], env.gw.patient_id("ehr", "pt-10001").as_str());
        assert!(t["id_token"].is_string());
        let access = t["access_token"].as_str().unwrap();
        assert_eq!(env.tokens.bearer(access).await.unwrap().unwrap().grant.grant_id, grant.id);
        let jti = uuid::Uuid::new_v4().to_string();
        for expected in [200, 400] {
            let a = env.assertion(ASYMMETRIC, "es-1", Assertion { jti: Some(jti.clone()), ..Default::default() });
            let r = env
                .post(
                    "/introspect",
                    &[
                        ("token", access),
                        ("client_assertion_type", portico::auth::oauth::JWT_BEARER),
                        ("client_assertion", &a),
                    ],
                    None,
                )
                .await;
            assert_eq!(r.status, expected, "{}", r.body);
        }
        let r1 = t["refresh_token"].as_str().unwrap();
        let second = env.refresh(ASYMMETRIC, r1, Some("launch/patient offline_access")).await;
        assert_eq!(second.status, 200, "{}", second.body);
        assert_oauth_error(&env.refresh(ASYMMETRIC, r1, None).await, 400, "invalid_grant");
        assert!(env.tokens.bearer(second.body["access_token"].as_str().unwrap()).await.unwrap().is_none());
        // A replayed code revokes its tokens here too.
        let (code, verifier) = env.code(&grant, ASYMMETRIC, SCOPES, None).await;
        let first = env.exchange(ASYMMETRIC, &code, &verifier).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_oauth_error(&env.exchange(ASYMMETRIC, &code, &verifier).await, 400, "invalid_grant");
        assert!(env.tokens.bearer(first.body["access_token"].as_str().unwrap()).await.unwrap().is_none());
        // A second "replica" on the same database publishes the same signing key.
        let again = Tokens::new(
            env.store.clone(),
            Clients::new(env.store.clone()),
            env.gw.index.clone(),
            env.tokens.settings().clone(),
            test_kek(),
        )
        .await
        .unwrap();
        assert_eq!(again.jwks().await.unwrap(), env.tokens.jwks().await.unwrap());
        env.store.pool.close().await;
        env.gw.stop().await;
    })
    .catch_unwind()
    .await;
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&pool).await;
    pool.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.unwrap();
}

#[tokio::test]
async fn config_clients_follow_the_file_and_staff_decisions_stick() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display()), 1).await.unwrap();
    let clients = Clients::new(store.clone());
    let config = |ids: &[&str]| {
        let mut text = "[[sources]]\nname = \"ehr\"\nkind = \"files\"\npath = \"../fixtures/ehr\"\n".to_string();
        for id in ids {
            text.push_str(&format!(
                "[[auth.clients]]\nclient_id = \"{id}\"\nname = \"{id}\"\nkind = \"public\"\nredirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"openid\"\n"
            ));
        }
        portico::config::Config::from_toml(&text, "t.toml", &root().join("config"), &[]).unwrap()
    };
    let sync = |ids: &'static [&'static str]| {
        let (clients, c) = (clients.clone(), config(ids));
        async move { clients.sync_config(&c.auth.clients, &c.base_dir).await.unwrap() }
    };
    let enabled = |id: &'static str| {
        let clients = clients.clone();
        async move { clients.client(id).await.unwrap().is_some() }
    };
    sync(&["a", "b", "c"]).await;
    let (registered, _) = clients
        .register("By staff", portico::auth::oauth::ClientKind::Public, &[REDIRECT.to_string()], "openid", None)
        .await
        .unwrap();
    clients.disable("c").await.unwrap();
    // b leaves the file: disabled. Staff-registered clients are not the file's business.
    sync(&["a", "c"]).await;
    assert!(enabled("a").await && !enabled("b").await && !enabled("c").await);
    assert!(clients.client(&registered).await.unwrap().is_some());
    // Back in the file: b is enabled again; c, disabled by staff, stays disabled.
    sync(&["a", "b", "c"]).await;
    assert!(enabled("a").await && enabled("b").await && !enabled("c").await);
    let list = clients.list().await.unwrap();
    let c = list.iter().find(|s| s.client.client_id == "c").unwrap();
    assert_eq!((c.disabled_by.as_deref(), c.from_config), (Some("staff"), true));
    let text = portico::auth::oauth::cli::render_list(&list);
    assert!(text.contains("disabled") && text.contains("By staff"), "{text}");
    assert!(matches!(clients.disable("nobody").await, Err(portico::auth::oauth::ClientError::Unknown(_))));
}

/// Issue 12 part 7: OIDC Discovery lists RS256 (which every relying party must support) and
/// an id_token is RS256, verifiable with the key the discovered JWKS publishes under its kid.
#[tokio::test]
async fn an_rs256_id_token_verifies_against_the_jwks_discovery_names() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let (status, discovery) =
        env.gw.get_with(&format!("{}/.well-known/openid-configuration", env.gw.origin), None, &[]).await;
    assert_eq!(status, 200);
    let algs = discovery["id_token_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("RS256")), "{discovery}");
    let (_, body) = env.tokens_for(PUBLIC, SCOPES).await;
    let id_token = body["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let (status, jwks) = env.gw.get_with(discovery["jwks_uri"].as_str().unwrap(), None, &[]).await;
    assert_eq!(status, 200);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let key = set.find(header.kid.as_deref().unwrap()).expect("the id_token's kid is published");
    assert_eq!(key.common.key_algorithm, Some(jsonwebtoken::jwk::KeyAlgorithm::RS256));
    assert!(!jwks.to_string().contains("\"d\"") && !jwks.to_string().contains("\"p\""), "public halves only: {jwks}");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[PUBLIC]);
    validation.set_issuer(&[env.gw.origin.as_str()]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(key).unwrap(), &validation).unwrap().claims;
    assert_eq!(claims["aud"], PUBLIC);
    // A second gateway start on the same store signs with the same key (no new key per start).
    let (_, again) = env.tokens_for(PUBLIC, SCOPES).await;
    let kid_again = jsonwebtoken::decode_header(again["id_token"].as_str().unwrap()).unwrap().kid;
    assert_eq!(kid_again, header.kid);
}

/// Issue 12 part 7: a public client may refresh without `client_id` (RFC 6749 §6; npm
/// `fhirclient` does so by default) — the refresh token names the client; a confidential
/// client still must authenticate, and its refused attempt spends nothing.
#[tokio::test]
async fn a_public_client_refreshes_without_client_id_and_a_confidential_one_must_authenticate() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let (grant, first) = env.tokens_for(PUBLIC, SCOPES).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    fn bare(token: &str) -> Vec<(&str, &str)> {
        vec![("grant_type", "refresh_token"), ("refresh_token", token)]
    }
    let r = env.post("/token", &bare(refresh), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap();
    let bearer = env.tokens.bearer(access).await.unwrap().expect("the new access token is live");
    assert_eq!((bearer.client_id.as_str(), bearer.grant.grant_id.as_str()), (PUBLIC, grant.id.as_str()));
    assert!(r.body["refresh_token"].as_str().is_some_and(|t| t != refresh), "rotated");
    // Rotation still holds: the spent refresh token is refused (and its family revoked).
    assert_oauth_error(&env.post("/token", &bare(refresh), None).await, 400, "invalid_grant");
    assert!(env.tokens.bearer(access).await.unwrap().is_none(), "reuse revoked the family");
    // An unknown refresh token names no client.
    assert_oauth_error(&env.post("/token", &bare("not-a-refresh-token"), None).await, 400, "invalid_grant");
    // An access token is no refresh token.
    let (_, other) = env.tokens_for(PUBLIC, SCOPES).await;
    let other_access = other["access_token"].as_str().unwrap();
    assert_oauth_error(&env.post("/token", &bare(other_access), None).await, 400, "invalid_grant");

    // A confidential client without its secret: invalid_client, and nothing is spent.
    let (_, confidential) = env.tokens_for(SYMMETRIC, SCOPES).await;
    let conf_refresh = confidential["refresh_token"].as_str().unwrap();
    let r = env.post("/token", &bare(conf_refresh), None).await;
    assert_oauth_error(&r, 400, "invalid_client");
    let r = env.post("/token", &[bare(conf_refresh), vec![("client_id", SYMMETRIC)]].concat(), None).await;
    assert_oauth_error(&r, 400, "invalid_client");
    let r = env.post("/token", &bare(conf_refresh), Some((SYMMETRIC, "a-wrong-secret"))).await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = env.refresh(SYMMETRIC, conf_refresh, None).await;
    assert_eq!(r.status, 200, "the refused attempts spent nothing: {}", r.body);
}

/// Issue 12 part 7: CORS for browser apps on the FHIR API, the token endpoint, SMART and
/// OpenID discovery and the JWKS — for the origins of registered (enabled) clients' redirect
/// URIs only, never with credentials; preflights are answered. Other routes stay closed.
#[tokio::test]
async fn browser_apps_of_registered_origins_get_cors_and_others_do_not() {
    let env = Env::start(Duration::from_secs(60), None).await;
    let app = "https://app.example"; // REDIRECT's origin
    let http = &env.gw.http;
    let preflight = |path: &str, method: &str, origin: &str| {
        http.request(reqwest::Method::OPTIONS, format!("{}{path}", env.gw.origin))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "authorization, content-type")
            .send()
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers().get(name).map(|v| v.to_str().unwrap().to_ascii_lowercase()).unwrap_or_default()
    };
    let open = [
        ("/fhir/Patient", "GET"),
        ("/fhir/metadata", "GET"),
        ("/fhir/$export", "GET"),
        ("/token", "POST"),
        ("/.well-known/smart-configuration", "GET"),
        ("/fhir/.well-known/smart-configuration", "GET"),
        ("/.well-known/openid-configuration", "GET"),
        ("/jwks", "GET"),
        ("/.well-known/jwks.json", "GET"),
    ];
    for (path, method) in open {
        for origin in [app, "http://127.0.0.1:9999"] {
            let r = preflight(path, method, origin).await.unwrap();
            assert!(r.status().is_success(), "{path} from {origin}: {}", r.status());
            assert_eq!(header(&r, "access-control-allow-origin"), origin, "{path}");
            assert!(header(&r, "access-control-allow-methods").contains(&method.to_ascii_lowercase()), "{path}");
            assert!(header(&r, "access-control-allow-headers").contains("authorization"), "{path}");
            assert_eq!(header(&r, "access-control-allow-credentials"), "", "never credentials: {path}");
        }
        for origin in ["https://evil.example", "https://app.example:8443", "http://app.example"] {
            let r = preflight(path, method, origin).await.unwrap();
            assert_eq!(header(&r, "access-control-allow-origin"), "", "{path} from {origin}");
        }
    }
    // Pages, sign-in, the authorization endpoint and admin are not opened to other origins.
    for (path, method) in
        [("/login", "POST"), ("/authorize", "GET"), ("/admin/clients", "POST"), ("/introspect", "POST")]
    {
        let r = preflight(path, method, app).await.unwrap();
        assert_eq!(header(&r, "access-control-allow-origin"), "", "{path}");
    }
    // Actual requests carry the header too, errors included (the app must read a 401).
    let r = http.get(format!("{}/fhir/Patient", env.gw.origin)).header("Origin", app).send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "access-control-allow-origin")), (401, app.to_string()));
    let r = http.get(format!("{}/fhir/metadata", env.gw.origin)).header("Origin", app).send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "access-control-allow-origin")), (200, app.to_string()));
    assert!(header(&r, "vary").contains("origin"), "caches keep answers per origin");
    let r = http
        .get(format!("{}/fhir/metadata", env.gw.origin))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "access-control-allow-origin")), (200, String::new()));

    // A client registered now is served at once; disabled, it is not.
    let new_origin = "https://new-app.example.net";
    let r = http
        .post(format!("{}/admin/clients", env.gw.origin))
        .bearer_auth(TOKEN)
        .json(&json!({
            "name": "A new browser app", "kind": "public",
            "redirect_uris": [format!("{new_origin}/callback")], "allowed_scopes": "launch/patient patient/*.rs"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client_id = r.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_string();
    let r = preflight("/fhir/Patient", "GET", new_origin).await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), new_origin);
    let r = http
        .post(format!("{}/admin/clients/{client_id}/disable", env.gw.origin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = preflight("/fhir/Patient", "GET", new_origin).await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), "", "a disabled client's origin is closed");
}
