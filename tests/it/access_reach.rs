//! Termination and scopes reach everything (issue 12 part 4), over real HTTP: Bulk export
//! jobs and prepared downloads belong to the grant or account link that started them —
//! revoking the app or terminating the link cancels them and their status and files are
//! then not found, as for a job that never existed; an export file going out is in the
//! access log first; and a type an app may only read by id (`.r`) is not listed by
//! `$everything` or an export. The account is made through the pages (register, enroll)
//! and the app's token through `/authorize` and `/token`, as a person and an app would.
//! With TEST_ON_POSTGRES=1 every gateway here runs on PostgreSQL.

use crate::bulk::client::{self, ASYNC, FHIR_JSON};
use crate::common::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub(crate) const CLIENT: &str = "chart-app";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub(crate) const ALLOWED: &str = "launch/patient openid fhirUser offline_access patient/*.rs patient/*.read \
                       patient/Patient.rs patient/Observation.rs patient/Condition.r";

/// A gateway on `dir` (exports in `dir/exports`), with the app registered; downloads of the
/// record pages are always prepared as jobs.
async fn gateway() -> Gateway {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let body = format!(
        "[auth]\n[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"Chart\"\nkind = \"public\"\n\
         redirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"{ALLOWED}\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\ndownload_job_threshold = 0\n{}",
        dir.path().join("exports").display().to_string(),
        fixture_file_sources()
    );
    Gateway::start_in(dir, &body, None).await
}

fn exports_dir(gw: &Gateway) -> std::path::PathBuf {
    gw.dir.path().join("exports")
}

/// True once job `j`'s folder is gone. The job's row goes at once; a worker that was writing
/// a unit of it at that moment removes what it wrote when it notices (at its next step), so
/// this waits up to ten seconds.
async fn files_removed(gw: &Gateway, j: &str) -> bool {
    let folder = exports_dir(gw).join(j);
    for _ in 0..100 {
        if !folder.exists() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    !folder.exists()
}

/// Bob Martinez's birth date as the index holds it (fixture dates move with today).
fn bob_birth_date() -> String {
    shifted("1967-06-18")
}

/// Enrolls the signed-in browser into Bob's record (ehr/pt-10001) through the page.
async fn enroll_bob(b: &Browser) {
    let (token, _) = b.form_page("/enroll").await;
    let birth = bob_birth_date();
    let (status, html, _) = b
        .post("/enroll", &[("csrf", &token), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "martinez")])
        .await;
    assert_eq!(status, 303, "{html}");
}

/// An app token for the browser's account through `/authorize` (picking its first record)
/// and `/token`.
pub(crate) async fn token_for(gw: &Gateway, b: &Browser, scope: &str) -> Value {
    let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
        + &URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-1")
        .append_pair("aud", &gw.fhir)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let (status, _, location) = b.get(&format!("{}/authorize?{}", gw.origin, q.finish())).await;
    assert_eq!((status, location.as_deref()), (303, Some("/authorize/pick")));
    let (token, html) = b.form_page("/authorize/pick").await;
    let link = value_of(&html, "link_id").remove(0);
    let (status, _, _) = b.post("/authorize/pick", &[("csrf", &token), ("link_id", &link)]).await;
    assert_eq!(status, 303);
    let (token, html) = b.form_page("/authorize/consent").await;
    let scopes = value_of(&html, "scope");
    let mut form: Vec<(&str, &str)> = vec![("csrf", &token), ("decision", "allow")];
    form.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    let (status, _, location) = b.post("/authorize/consent", &form).await;
    assert_eq!(status, 303);
    let callback = location.unwrap();
    let code = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let r = gw
        .http
        .post(format!("{}/token", gw.origin))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], scope, "every scope asked was granted");
    t
}

fn access_token(t: &Value) -> String {
    t["access_token"].as_str().unwrap().to_string()
}

/// Kicks off `Patient/$export` with `token`; the status URL.
async fn kick_off(gw: &Gateway, token: &str) -> String {
    let (status, location, body) = client::kick_off(gw, "Patient/$export", token, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202, "{body}");
    location.unwrap()
}

async fn status_of(gw: &Gateway, url: &str, token: &str) -> u16 {
    gw.http.get(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

async fn store(gw: &Gateway) -> portico::store::Store {
    portico::store::Store::open(&gw.database_url, 2).await.unwrap()
}

async fn job_rows(gw: &Gateway, job: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&store(gw).await.pool)
        .await
        .unwrap()
}

/// The account's live links (the pages' record links).
async fn links_of(gw: &Gateway, username: &str) -> Vec<String> {
    let store = store(gw).await;
    let accounts =
        portico::auth::accounts::Accounts::new(store.clone(), gw.index.clone(), Default::default(), test_kek());
    let account: String = sqlx::query_scalar("SELECT id FROM accounts WHERE username = $1")
        .bind(username)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    accounts.links(&account).await.unwrap().into_iter().map(|l| l.id).collect()
}

/// `(action, outcome, patient)` of the access log's entries for `what`.
async fn log_entries(gw: &Gateway, what: &str) -> Vec<(String, String, Option<String>)> {
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT action, outcome, patient_id FROM audit_events WHERE what = $1 ORDER BY seq")
            .bind(what)
            .fetch_all(&store(gw).await.pool)
            .await
            .unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_app_cancels_its_exports_and_their_files_are_logged_then_gone() {
    let gw = gateway().await;
    let b = register(&gw, "Bob Martinez", "bob-revoke@example.org").await;
    enroll_bob(&b).await;
    let scope = "launch/patient patient/*.rs";
    let first = access_token(&token_for(&gw, &b, scope).await);
    let status_url = kick_off(&gw, &first).await;
    let job = status_url.rsplit('/').next().unwrap().to_string();
    let (manifest, _) = client::wait(&gw, &status_url, &first).await;
    let url = manifest["output"][0]["url"].as_str().unwrap().to_string();
    let what = url.strip_prefix(&gw.origin).unwrap().to_string();

    // A file going out is in the access log first: `download`, for the record in it.
    assert!(log_entries(&gw, &what).await.is_empty());
    let lines = client::download(&gw, &url, &first).await;
    assert!(!lines.is_empty());
    let bob = gw.patient_id("ehr", "pt-10001");
    assert_eq!(log_entries(&gw, &what).await, vec![("download".into(), "success".into(), Some(bob.clone()))]);

    // …and when the log cannot be written, the file does not go out.
    let s = store(&gw).await;
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_gone").execute(&s.pool).await.unwrap();
    let resp = gw.http.get(&url).bearer_auth(&first).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert!(!resp.text().await.unwrap().contains(&lines[0]["id"].as_str().unwrap().to_string()));
    sqlx::query("ALTER TABLE audit_events_gone RENAME TO audit_events").execute(&s.pool).await.unwrap();

    // A second export, then the patient revokes the app on the account page.
    let second_url = kick_off(&gw, &first).await;
    let second = second_url.rsplit('/').next().unwrap().to_string();
    let (token, html) = b.form_page("/account").await;
    let grant = value_of(&html, "grant_id").remove(0);
    let (status, html, _) = b.post("/account/apps/revoke", &[("csrf", &token), ("grant_id", &grant)]).await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(status_of(&gw, &status_url, &first).await, 401, "the revoked token stops");

    // The jobs went with the grant, finished or not: no row, no folder.
    for j in [&job, &second] {
        assert_eq!(job_rows(&gw, j).await, 0, "job {j} is cancelled");
        assert!(files_removed(&gw, j).await, "job {j}'s files are removed");
    }
    // The same app allowed again (a new grant) finds them exactly as a job that never was.
    let again = access_token(&token_for(&gw, &b, scope).await);
    let never = status_url.replace(&job, "0123456789abcdef0123456789abcdef");
    let never_file = url.replace(&job, "0123456789abcdef0123456789abcdef");
    for (old, made_up) in [(&status_url, &never), (&second_url, &never), (&url, &never_file)] {
        let (s1, b1) = gw.get_with(old, Some(&again), &[]).await;
        let (s2, b2) = gw.get_with(made_up, Some(&again), &[]).await;
        assert_eq!(s1, 404, "{old}: {b1}");
        assert_eq!((s1, b1), (s2, b2), "{old}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_the_link_cancels_the_jobs_of_its_apps_and_its_downloads() {
    let gw = gateway().await;
    let username = "bob-terminate@example.org";
    let b = register(&gw, "Bob Martinez", username).await;
    enroll_bob(&b).await;
    let link = links_of(&gw, username).await.remove(0);
    let scope = "launch/patient patient/*.rs";
    let app = access_token(&token_for(&gw, &b, scope).await);
    let finished_url = kick_off(&gw, &app).await;
    let finished = finished_url.rsplit('/').next().unwrap().to_string();
    client::wait(&gw, &finished_url, &app).await;
    let running_url = kick_off(&gw, &app).await;
    let running = running_url.rsplit('/').next().unwrap().to_string();
    // The account's own download of the record, prepared as a job.
    let (token, _) = b.form_page(&format!("/records/{link}")).await;
    let (status, html, location) =
        b.post(&format!("/records/{link}/downloads"), &[("csrf", &token), ("format", "zip")]).await;
    assert_eq!(status, 303, "{html}");
    let download_url = location.unwrap();
    let download = download_url.rsplit('/').next().unwrap().to_string();
    assert_eq!(job_rows(&gw, &download).await, 1);

    let r = gw
        .http
        .post(format!("{}/admin/access/terminate", gw.origin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"link_id": link, "reason": "left the practice", "by": "HIM desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&gw, &finished_url, &app).await, 401, "the app's token stops");
    for j in [&finished, &running, &download] {
        assert_eq!(job_rows(&gw, j).await, 0, "job {j} is cancelled");
        assert!(files_removed(&gw, j).await, "job {j}'s files are removed");
    }
    let (status, _, _) = b.get(&download_url).await;
    assert_eq!(status, 404, "the download is gone from the pages");

    // Connected again (a new link) with the app allowed again: the old jobs are not found.
    enroll_bob(&b).await;
    let again = access_token(&token_for(&gw, &b, scope).await);
    for url in [&finished_url, &running_url] {
        assert_eq!(status_of(&gw, url, &again).await, 404, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_granted_read_only_is_readable_by_id_but_not_listed() {
    let gw = gateway().await;
    let b = register(&gw, "Bob Martinez", "bob-scopes@example.org").await;
    enroll_bob(&b).await;
    let bob = gw.patient_id("ehr", "pt-10001");
    // A Condition of Bob's the app may see, found with a token that may search everything.
    let all = access_token(&token_for(&gw, &b, "launch/patient patient/*.rs").await);
    let (status, conditions) = gw.get_with(&format!("Condition?patient={bob}"), Some(&all), &[]).await;
    assert_eq!(status, 200, "{conditions}");
    let condition = conditions["entry"][0]["resource"]["id"].as_str().expect("Bob has a Condition").to_string();

    let t = token_for(&gw, &b, "launch/patient patient/Patient.rs patient/Observation.rs patient/Condition.r").await;
    let token = access_token(&t);
    // Read by id works, search does not.
    let (status, read) = gw.get_with(&format!("Condition/{condition}"), Some(&token), &[]).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(gw.get_with(&format!("Condition?patient={bob}"), Some(&token), &[]).await.0, 403);

    // $everything lists what may be searched and leaves the read-only type out.
    let (everything, _) = gw.all_pages_with(&format!("Patient/{bob}/$everything"), &token).await;
    let types: std::collections::BTreeSet<String> =
        everything.iter().map(|r| r["resourceType"].as_str().unwrap().to_string()).collect();
    assert!(types.contains("Observation") && types.contains("Patient"), "{types:?}");
    assert!(!types.contains("Condition"), "a .r type is not listed: {types:?}");
    let (status, body) = gw.get_with(&format!("Patient/{bob}/$everything?_type=Condition"), Some(&token), &[]).await;
    assert_eq!(status, 403, "{body}");

    // An export neither: asking for the type is refused, and it is not in the output.
    let (status, _, body) = client::kick_off(&gw, "Patient/$export?_type=Condition", &token, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 403, "{body}");
    let done = client::export(&gw, "Patient/$export", &token).await;
    assert!(done.resources.iter().any(|r| r["resourceType"] == "Observation"));
    assert!(!done.resources.iter().any(|r| r["resourceType"] == "Condition"), "{}", done.manifest);

    // A token that may search nothing (read-only scopes only) may not list the record at all.
    let read_only = access_token(&token_for(&gw, &b, "launch/patient patient/Condition.r").await);
    assert_eq!(gw.get_with(&format!("Patient/{bob}/$everything"), Some(&read_only), &[]).await.0, 403);
    assert_eq!(client::kick_off(&gw, "Patient/$export", &read_only, &[ASYNC, FHIR_JSON]).await.0, 403);
    assert_eq!(gw.get_with(&format!("Condition/{condition}"), Some(&read_only), &[]).await.0, 200);
}
