//! Keys at rest (issue 12 part 9): the id_token signing keys are sealed by a key-encryption
//! key (KEK) that is never in the database, signing keys stored in clear by earlier versions
//! are sealed at the next start, a gateway given another KEK or none refuses to start, key
//! rotation publishes before it signs and keeps the old key while its tokens live, and
//! activation codes are stored as a keyed hash.

use crate::common::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portico::auth::keyring::KeyEncryptionKey;
use portico::auth::oauth::Signer;
use portico::store::Store;
use serde_json::{json, Value};
use sha2::Digest;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Another valid KEK (base64 of 32 bytes) that did not seal anything here.
const OTHER_KEK: &str = "b3RoZXIta2V5LWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU=";

async fn gateway(dir: Arc<tempfile::TempDir>) -> Gateway {
    Gateway::start_in(dir, &format!("[auth]\nkey_publish_delay = \"1h\"\n{}", fixture_file_sources()), None).await
}

/// `(kid, private_key)` of every stored signing key.
async fn stored_keys(store: &Store) -> Vec<(String, String)> {
    sqlx::query_as("SELECT kid, private_key FROM signing_keys ORDER BY created_at")
        .fetch_all(&store.pool)
        .await
        .unwrap()
}

async fn jwks_kids(gw: &Gateway) -> Vec<String> {
    let jwks: Value = gw.http.get(format!("{}/jwks", gw.origin)).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

async fn jwks(gw: &Gateway) -> Value {
    gw.http.get(format!("{}/.well-known/jwks.json", gw.origin)).send().await.unwrap().json().await.unwrap()
}

/// Builds the app on `database_url` with `vars` as its environment; the error's text.
async fn build_error(database_url: &str, vars: &[(&str, &str)]) -> String {
    let text = format!("[database]\nurl = \"{database_url}\"\n{}", fixture_file_sources());
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = portico::config::Config::from_toml(&text, "t.toml", &root().join("config"), &vars).unwrap();
    match portico::App::build(config).await {
        Ok(_) => panic!("the gateway started"),
        Err(e) => e.to_string(),
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Verifies `token` against the key of its kid in `jwks`; the claims.
fn verify(token: &str, jwks: &Value) -> Option<Value> {
    let kid = kid_of(token);
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str())?;
    let key: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["app"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(&key).unwrap(), &validation).ok().map(|d| d.claims)
}

fn claims(n: u32) -> Value {
    json!({ "iss": "test", "aud": "app", "sub": format!("s{n}"), "exp": chrono::Utc::now().timestamp() + 600 })
}

#[tokio::test]
async fn the_database_alone_holds_no_usable_private_key_and_another_kek_is_refused() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = gateway(dir.clone()).await;
    let kids = jwks_kids(&gw).await;
    assert_eq!(kids.len(), 1, "{kids:?}");
    let store = Store::open(&gw.database_url, 2).await.unwrap();
    let stored = stored_keys(&store).await;
    assert_eq!(stored.len(), 1);
    let (kid, sealed) = &stored[0];
    assert_eq!(kid, &kids[0]);
    assert!(sealed.starts_with("kek1:"), "{sealed}");
    assert!(!sealed.contains("PRIVATE KEY") && !sealed.contains("BEGIN"), "{sealed}");
    // What is in the column is no key.
    assert!(jsonwebtoken::EncodingKey::from_rsa_pem(sealed.as_bytes()).is_err());
    // The KEK opens it, to the key the JWKS publishes.
    let pem = test_kek().open(kid, sealed).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let url = gw.database_url.clone();
    gw.stop().await;

    let wrong = build_error(&url, &[(KEK_ENV, OTHER_KEK)]).await;
    assert!(wrong.contains(&format!("signing key {kid}")) && wrong.contains("does not open"), "{wrong}");
    assert!(wrong.contains(KEK_ENV), "names where the key came from: {wrong}");
    let missing = build_error(&url, &[]).await;
    assert!(missing.contains("no key-encryption key") && missing.contains(KEK_ENV), "{missing}");
    let malformed = build_error(&url, &[(KEK_ENV, "c2hvcnQ=")]).await;
    assert!(malformed.contains("exactly 32 bytes"), "{malformed}");
    // Nothing was changed by the refused starts: the right KEK still opens the same key.
    assert_eq!(stored_keys(&store).await, stored);
    let again = gateway(dir.clone()).await;
    assert_eq!(jwks_kids(&again).await, kids);
    store.pool.close().await;
}

#[tokio::test]
async fn a_signing_key_stored_in_clear_is_sealed_at_the_next_start() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = gateway(dir.clone()).await;
    let kids = jwks_kids(&gw).await;
    let store = Store::open(&gw.database_url, 2).await.unwrap();
    let (kid, sealed) = stored_keys(&store).await.remove(0);
    // As an earlier version stored it: the PEM in clear.
    let pem = test_kek().open(&kid, &sealed).unwrap();
    sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2")
        .bind(pem.as_str())
        .bind(&kid)
        .execute(&store.pool)
        .await
        .unwrap();
    gw.stop().await;

    let gw = gateway(dir.clone()).await;
    let (_, now_stored) = stored_keys(&store).await.remove(0);
    assert!(now_stored.starts_with("kek1:") && !now_stored.contains("PRIVATE KEY"), "{now_stored}");
    assert_ne!(now_stored, sealed, "sealed afresh (new nonce)");
    assert_eq!(test_kek().open(&kid, &now_stored).unwrap().as_str(), pem.as_str());
    assert_eq!(jwks_kids(&gw).await, kids, "the same key, still published");
    // And it still signs: a token verifies against the published key.
    let signer = Signer::new(store.clone(), test_kek(), Duration::from_secs(3600));
    let token = signer.sign(&claims(1)).await.unwrap();
    assert_eq!(kid_of(&token), kid);
    assert!(verify(&token, &jwks(&gw).await).is_some());
    store.pool.close().await;
}

#[tokio::test]
async fn rotation_publishes_the_next_key_before_signing_and_keeps_the_old_one_while_its_tokens_live() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = gateway(dir.clone()).await;
    let store = Store::open(&gw.database_url, 2).await.unwrap();
    let ttl = Duration::from_secs(3600);
    let signer = Signer::new(store.clone(), test_kek(), ttl);
    let before = signer.sign(&claims(1)).await.unwrap();
    let old = kid_of(&before);
    assert_eq!(jwks_kids(&gw).await, vec![old.clone()]);

    // Step one: published (by the running gateway, at once), not signing.
    let next = signer.rotate().await.unwrap();
    assert_eq!(next.state, "next");
    assert_eq!(jwks_kids(&gw).await, vec![old.clone(), next.kid.clone()]);
    assert_eq!(kid_of(&signer.sign(&claims(2)).await.unwrap()), old, "the next key does not sign yet");
    let twice = signer.rotate().await.unwrap_err().to_string();
    assert!(twice.contains("already published as the next key"), "{twice}");
    // Not before the publish delay.
    let early = signer.activate(Duration::from_secs(3600), chrono::Utc::now()).await.unwrap_err().to_string();
    assert!(early.contains("published only since") && early.contains("key_publish_delay"), "{early}");
    assert_eq!(kid_of(&signer.sign(&claims(3)).await.unwrap()), old);

    // Step two: the new key signs; the old one stays published; old tokens still verify.
    let active = signer.activate(Duration::ZERO, chrono::Utc::now()).await.unwrap();
    assert_eq!((active.kid.as_str(), active.state), (next.kid.as_str(), "signing"));
    let after = signer.sign(&claims(4)).await.unwrap();
    assert_eq!(kid_of(&after), next.kid);
    let published = jwks(&gw).await;
    assert_eq!(jwks_kids(&gw).await, vec![old.clone(), next.kid.clone()]);
    assert_eq!(verify(&before, &published).unwrap()["sub"], "s1");
    assert_eq!(verify(&after, &published).unwrap()["sub"], "s4");
    let listed = signer.list().await.unwrap();
    let retired = listed.iter().find(|k| k.kid == old).unwrap();
    assert_eq!(retired.state, "retired");
    assert!(retired.published_until.is_some());
    let none_next = signer.activate(Duration::ZERO, chrono::Utc::now()).await.unwrap_err().to_string();
    assert!(none_next.contains("no next key"), "{none_next}");

    // Once the id_token lifetime has passed since its retirement, the old key leaves the
    // JWKS (time passes by moving the retirement back), and the next rotation removes it.
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
        .bind(long_ago.to_rfc3339())
        .bind(&old)
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(jwks_kids(&gw).await, vec![next.kid.clone()]);
    assert!(verify(&before, &jwks(&gw).await).is_none(), "expired tokens' key is gone");
    signer.rotate().await.unwrap();
    signer.activate(Duration::ZERO, chrono::Utc::now()).await.unwrap();
    let left: Vec<String> = stored_keys(&store).await.into_iter().map(|(k, _)| k).collect();
    assert!(!left.contains(&old), "{left:?}");
    assert_eq!(left.len(), 2, "the key just retired stays: {left:?}");
    store.pool.close().await;
}

/// The binary with the test KEK (or `kek`), without the caller's `PORTICO_…` variables.
fn portico(args: &[&str], kek: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.args(args).current_dir(root()).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PORTICO_")) {
        cmd.env_remove(k);
    }
    if let Some(kek) = kek {
        cmd.env(KEK_ENV, kek);
    }
    cmd.output().expect("portico runs")
}

#[tokio::test]
async fn portico_keys_rotate_publishes_then_activates_through_the_binary() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let gw = gateway(dir.clone()).await;
    let old = jwks_kids(&gw).await.remove(0);
    let config = dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[auth]\nkey_publish_delay = \"0s\"\n{}",
            gw.database_url,
            fixture_file_sources()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let text = |o: &Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));

    // Without the KEK, or with another, nothing happens.
    let missing = portico(&["keys", "rotate", "--config", &config], None);
    assert!(!missing.status.success());
    assert!(text(&missing).contains("no key-encryption key"), "{}", text(&missing));
    let wrong = portico(&["keys", "rotate", "--config", &config], Some(OTHER_KEK));
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("does not open"), "{}", text(&wrong));
    assert_eq!(jwks_kids(&gw).await, vec![old.clone()]);

    let rotated = portico(&["keys", "rotate", "--config", &config], Some(TEST_KEK));
    assert!(rotated.status.success(), "{}", text(&rotated));
    let out = text(&rotated);
    assert!(out.contains("next") && out.contains("--activate"), "{out}");
    let kids = jwks_kids(&gw).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    let new = kids.iter().find(|k| **k != old).unwrap().clone();
    assert!(out.contains(&new), "{out}");
    let again = portico(&["keys", "rotate", "--config", &config], Some(TEST_KEK));
    assert!(!again.status.success() && text(&again).contains("already published"), "{}", text(&again));

    let activated = portico(&["keys", "rotate", "--activate", "--config", &config], Some(TEST_KEK));
    assert!(activated.status.success(), "{}", text(&activated));
    assert!(text(&activated).contains(&format!("{new}  RS256  signing")), "{}", text(&activated));
    let listed = portico(&["keys", "list", "--config", &config], Some(TEST_KEK));
    let list = text(&listed);
    assert!(list.contains(&format!("{old}  RS256  retired")) && list.contains("published until"), "{list}");
    assert!(!list.contains("PRIVATE") && !list.contains("kek1:"), "{list}");
    // The running gateway signs with the new key now.
    let store = Store::open(&gw.database_url, 2).await.unwrap();
    let signer = Signer::new(store.clone(), test_kek(), Duration::from_secs(3600));
    assert_eq!(kid_of(&signer.sign(&claims(1)).await.unwrap()), new);
    assert_eq!(jwks_kids(&gw).await, vec![old, new]);
    store.pool.close().await;
}

#[tokio::test]
async fn activation_codes_are_stored_as_a_hash_keyed_by_the_kek() {
    let gw = gateway(Arc::new(tempfile::tempdir().unwrap())).await;
    let store = Store::open(&gw.database_url, 2).await.unwrap();
    let accounts = |kek: Arc<KeyEncryptionKey>| {
        portico::auth::accounts::Accounts::new(store.clone(), gw.index.clone(), Default::default(), kek)
    };
    let (ours, theirs) =
        (accounts(test_kek()), accounts(Arc::new(KeyEncryptionKey::from_base64(OTHER_KEK, "x").unwrap())));
    let now = chrono::Utc::now();
    let code = ours.issue_activation_code("ehr/pt-10001", None, "test", now).await.unwrap();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM activation_codes").fetch_all(&store.pool).await.unwrap();
    assert_eq!(stored.len(), 1);
    // Not what an unkeyed hash of the code (the earlier scheme, or plain) would be.
    let normal: String = code.code.chars().filter(char::is_ascii_alphanumeric).collect();
    for unkeyed in [format!("portico-activation-code:{normal}"), normal.clone(), code.code.clone()] {
        assert_ne!(stored[0], hex::encode(sha2::Sha256::digest(unkeyed.as_bytes())));
    }
    let born = gw.index.demographics_of("ehr", "pt-10001").await.unwrap().unwrap().birth_date.unwrap();
    // With another KEK the code is unknown; with the gateway's it links.
    let other = theirs.create_local("keyed-hash-1@example.org", "a long enough passphrase 1", "One").await.unwrap();
    // Both accounts confirmed their address, so only the code decides.
    assert!(theirs.mark_email_verified("keyed-hash-1@example.org", now).await.unwrap());
    assert!(theirs.enroll_with_code(&other, &code.code, &born, now).await.is_err());
    let account = ours.create_local("keyed-hash-2@example.org", "a long enough passphrase 2", "Two").await.unwrap();
    assert!(ours.mark_email_verified("keyed-hash-2@example.org", now).await.unwrap());
    let link = ours.enroll_with_code(&account, &code.code.to_lowercase(), &born, now).await.unwrap();
    assert_eq!((link.source.as_str(), link.source_patient_id.as_str()), ("ehr", "pt-10001"));
    store.pool.close().await;
}

#[test]
fn the_demo_key_file_is_created_once_private_and_a_readable_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data/portico.key");
    let config = |create: bool| {
        let text = format!(
            "[auth]\nkey_file = {:?}\ncreate_key_file = {create}\n{}",
            file.display().to_string(),
            fixture_file_sources()
        );
        portico::config::Config::from_toml(&text, "t.toml", &root().join("config"), &[]).unwrap()
    };
    let missing = KeyEncryptionKey::load(&config(false)).unwrap_err().to_string();
    assert!(missing.contains("cannot read") && missing.contains("portico.key"), "{missing}");
    assert!(!file.exists(), "not created unless asked");
    KeyEncryptionKey::load(&config(true)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let first = std::fs::read_to_string(&file).unwrap();
    KeyEncryptionKey::load(&config(true)).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first, "made once, then kept");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = KeyEncryptionKey::load(&config(false)).unwrap_err().to_string();
    assert!(exposed.contains("chmod 600"), "{exposed}");
    // No key anywhere: refused, saying what to set.
    let bare =
        portico::config::Config::from_toml(&fixture_file_sources(), "t.toml", &root().join("config"), &[]).unwrap();
    let none = KeyEncryptionKey::load(&bare).unwrap_err().to_string();
    assert!(none.contains(KEK_ENV) && none.contains("key_file"), "{none}");
}
