//! Enrollment that can't be guessed (issue 12 part 1), over HTTP: the attack the review
//! tried (throwaway accounts guessing one patient's details until one gets in) is stopped by
//! a throttle per target record; one-time activation codes from HIM enroll once and expire;
//! a record that already has an owner is never linked again automatically — the attempt is
//! refused like a mismatch, goes on the HIM review list and into that patient's access log.

use crate::common::*;

/// Bob Martinez's medical record number in the fixtures.
const MRN: &str = "HG100142";

/// A low per-record limit so the attack is short; a high per-account lockout so the
/// record's throttle, not the account's, is what stops it.
fn body() -> String {
    format!(
        "[auth]\nlockout_attempts = 50\nenroll_record_attempts = 4\nenroll_global_attempts = 100\nenroll_throttle_window = \"1h\"\n{}",
        fixture_file_sources()
    )
}

/// Bob's birth date as the index holds it (fixture dates move with today).
fn bob_birth_date() -> String {
    let d = chrono::NaiveDate::parse_from_str("1967-06-18", "%Y-%m-%d").unwrap() + chrono::Duration::days(shift_days());
    d.format("%Y-%m-%d").to_string()
}

/// Bob's EHR record, `source/id`.
fn bob_record(gw: &Gateway) -> String {
    let found = gw.records_with_identifier(MRN);
    let (source, id, _) = found.first().expect("the MRN names a record");
    format!("{source}/{id}")
}

async fn by_demographics(b: &Browser, mrn: &str, birth: &str, family: &str) -> (u16, String) {
    let (token, _) = b.form_page("/enroll").await;
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", birth), ("family", family)]).await;
    (status, html)
}

async fn by_code(b: &Browser, code: &str, birth: &str) -> (u16, String) {
    let (token, _) = b.form_page("/enroll").await;
    let (status, html, _) = b.post("/enroll", &[("csrf", &token), ("code", code), ("birth_date", birth)]).await;
    (status, html)
}

/// Staff issue a code through the admin API.
async fn issue(gw: &Gateway, patient: &str, valid_days: Option<u32>) -> String {
    let mut req = serde_json::json!({"patient": patient});
    if let Some(d) = valid_days {
        req["valid_days"] = d.into();
    }
    let r = gw
        .http
        .post(format!("{}/admin/activation-codes", gw.origin))
        .bearer_auth(TOKEN)
        .json(&req)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["code"].as_str().unwrap().to_string()
}

fn alert(html: &str) -> String {
    html[html.find("role=\"alert\">").expect("an error message")..].split('<').next().unwrap().to_string()
}

async fn connected(b: &Browser) -> bool {
    let (_, html, _) = b.get("/account").await;
    !html.contains("not connected to a record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_from_many_accounts_throttle_the_record_so_the_right_details_are_refused_too() {
    let gw = Gateway::start(&body()).await;
    let birth = bob_birth_date();
    // Throwaway accounts, one wrong birth date or name each against Bob's MRN: every
    // account stays far below its own lockout.
    let mut wrong = Vec::new();
    for (i, (dob, family)) in
        [("1999-01-01", "Martinez"), ("1967-01-01", "Martinez"), (birth.as_str(), "Smith"), ("1970-02-02", "Martin")]
            .into_iter()
            .enumerate()
    {
        let b = register(&gw, "Mallory", &format!("mallory{i}@example.org")).await;
        let (status, html) = by_demographics(&b, MRN, dob, family).await;
        assert_eq!(status, 400, "{html}");
        wrong.push(alert(&html));
    }
    // Another account with the right details: the record is throttled, whatever account.
    let b = register(&gw, "Mallory", "mallory-right@example.org").await;
    let (status, html) = by_demographics(&b, MRN, &birth, "Martinez").await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(alert(&html), wrong[0], "refused like any wrong guess");
    assert!(!connected(&b).await);
    // The real Bob is not locked out for good: his activation code still works.
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    let code = issue(&gw, &bob_record(&gw), None).await;
    assert_eq!(by_code(&bob, &code, &birth).await.0, 303);
    assert!(connected(&bob).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_code_enrolls_once_and_a_second_use_fails() {
    let gw = Gateway::start(&body()).await;
    let birth = bob_birth_date();
    let code = issue(&gw, &bob_record(&gw), Some(7)).await;
    assert_eq!(code.len(), 11, "two groups of five: {code}");
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    // A wrong birth date with the right code is refused and the code is not spent.
    let (status, _) = by_code(&bob, &code, "1999-01-01").await;
    assert_eq!(status, 400);
    // Typed in lower case without the dash, it still works.
    let typed = code.replace('-', "").to_lowercase();
    let (status, html) = by_code(&bob, &typed, &birth).await;
    assert_eq!(status, 303, "{html}");
    assert!(connected(&bob).await);
    let other = register(&gw, "Eve", "eve@example.org").await;
    let (status, html) = by_code(&other, &code, &birth).await;
    assert_eq!(status, 400, "{html}");
    assert!(!connected(&other).await);
    // Two uses at once of a fresh code for a record with no owner yet (Maya's): one links.
    let maya_record = {
        let found = gw.index.records_with_identifier("HG100733", soon()).await.unwrap();
        let (s, id, _) = found.first().unwrap();
        format!("{s}/{id}")
    };
    let maya_birth = {
        let d =
            chrono::NaiveDate::parse_from_str("2009-08-14", "%Y-%m-%d").unwrap() + chrono::Duration::days(shift_days());
        d.format("%Y-%m-%d").to_string()
    };
    let code = issue(&gw, &maya_record, None).await;
    let (a, b) = (register(&gw, "A", "a@example.org").await, register(&gw, "B", "b@example.org").await);
    let ((sa, _), (sb, _)) = tokio::join!(by_code(&a, &code, &maya_birth), by_code(&b, &code, &maya_birth));
    let mut statuses = [sa, sb];
    statuses.sort();
    assert_eq!(statuses, [303, 400], "one use links, the other fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_unknown_code_fails() {
    let gw = Gateway::start(&body()).await;
    let birth = bob_birth_date();
    let code = issue(&gw, &bob_record(&gw), Some(1)).await;
    // Time passes: the code's expiry is moved to a minute ago.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    set_expiry(&gw, &past).await;
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    let (status, html) = by_code(&bob, &code, &birth).await;
    assert_eq!(status, 400, "{html}");
    let (status, _) = by_code(&bob, "ABCDE-FGHJK", &birth).await;
    assert_eq!(status, 400);
    assert!(!connected(&bob).await);
    // Staff can't issue a code for a record that doesn't exist, and only staff can issue.
    let r = gw
        .http
        .post(format!("{}/admin/activation-codes", gw.origin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"patient": "ehr/no-such-patient"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = gw
        .http
        .post(format!("{}/admin/activation-codes", gw.origin))
        .json(&serde_json::json!({"patient": bob_record(&gw)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// Moves every activation code's expiry to `at` (the test's stand-in for time passing).
async fn set_expiry(gw: &Gateway, at: &str) {
    let store = portico::store::Store::open(&gw.database_url, 1).await.unwrap();
    sqlx::query("UPDATE activation_codes SET expires_at = $1").bind(at).execute(&store.pool).await.unwrap();
    store.pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_an_owner_is_not_linked_again_and_the_attempt_goes_to_review() {
    let gw = Gateway::start(&body()).await;
    let birth = bob_birth_date();
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    assert_eq!(by_demographics(&bob, MRN, &birth, "Martinez").await.0, 303);
    // Someone else with the right details, by demographics and by a code.
    let eve = register(&gw, "Eve", "eve@example.org").await;
    let (status, html) = by_demographics(&eve, MRN, &birth, "Martinez").await;
    assert_eq!(status, 400, "{html}");
    let (_, mismatch) = by_demographics(&eve, "HG999999", &birth, "Martinez").await;
    assert_eq!(alert(&html), alert(&mismatch), "said like a mismatch");
    let code = issue(&gw, &bob_record(&gw), None).await;
    let (status, _) = by_code(&eve, &code, &birth).await;
    assert_eq!(status, 400);
    assert!(!connected(&eve).await);
    // Both attempts are on the HIM review list …
    let reviews = reviews(&gw);
    let lines: Vec<&str> = reviews.lines().collect();
    assert_eq!(lines.len(), 2, "{reviews}");
    assert!(lines.iter().any(|l| l.ends_with("by demographics")), "{reviews}");
    assert!(lines.iter().any(|l| l.ends_with("by activation-code")), "{reviews}");
    assert!(lines.iter().all(|l| l.contains(&bob_record(&gw)) && !l.contains("Martinez")), "{reviews}");
    // … and in Bob's access log.
    let (source, id) = bob_record(&gw).split_once('/').map(|(s, i)| (s.to_string(), i.to_string())).unwrap();
    let patient = gw.index.gateway_id_of(&source, &id).await.unwrap().unwrap();
    let (status, log) = gw.get(&format!("AuditEvent?patient={patient}")).await;
    assert_eq!(status, 200);
    let entries: Vec<&serde_json::Value> =
        log["entry"].as_array().unwrap().iter().filter(|e| e.to_string().contains("/enroll")).collect();
    assert_eq!(entries.len(), 2, "{log}");
}

/// `portico account enrollment-reviews` against the gateway's database.
fn reviews(gw: &Gateway) -> String {
    let config = gw.dir.path().join("cli.toml");
    std::fs::write(&config, format!("[database]\nurl = \"{}\"\n{}", gw.database_url, fixture_file_sources())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["account", "enrollment-reviews", "--config", &config.display().to_string()])
        .current_dir(root())
        .env(KEK_ENV, TEST_KEK)
        .env_remove("PORTICO_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_whose_address_is_not_confirmed_cannot_enroll_and_nothing_is_linked() {
    let gw = Gateway::start(&body()).await;
    let birth = bob_birth_date();
    let code = issue(&gw, &bob_record(&gw), None).await;
    let bob = register_unverified(&gw, "Bob Martinez", "bob@example.org").await;
    let (status, html) = by_demographics(&bob, MRN, &birth, "Martinez").await;
    assert_eq!(status, 403, "{html}");
    assert!(alert(&html).contains("Confirm your e-mail address first"), "{html}");
    let (status, html) = by_code(&bob, &code, &birth).await;
    assert_eq!(status, 403, "{html}");
    assert!(!connected(&bob).await);
    assert!(reviews(&gw).is_empty(), "nothing queued either");
    // The page says what to do instead of offering the forms.
    let (_, page, _) = bob.get("/enroll").await;
    assert!(page.contains("First, confirm your e-mail address") && !page.contains("name=\"mrn\""), "{page}");
    // A new mail on request, a few an hour (registration sent the first of 3), then 429.
    for _ in 0..2 {
        let (token, _) = bob.form_page("/enroll").await;
        assert_eq!(bob.post("/verify-email/resend", &[("csrf", &token)]).await.0, 200);
    }
    let (token, _) = bob.form_page("/enroll").await;
    let r = bob.http.post(format!("{}/verify-email/resend", gw.origin)).form(&[("csrf", &token)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    // Confirmed, the same code (not spent by the refused attempt) connects the record.
    verify_email(&gw, &bob, "bob@example.org").await;
    assert_eq!(by_code(&bob, &code, &birth).await.0, 303);
    assert!(connected(&bob).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_enrollments_into_one_record_at_once_make_one_owner_and_one_review() {
    let gw = Gateway::start(&body()).await;
    let maya_birth = shifted("2009-08-14");
    for round in 0..3 {
        let record = ["HG100733", "HG100142", "HG100734"][round];
        let Some((source, id, details)) =
            gw.index.records_with_identifier(record, soon()).await.unwrap().into_iter().next()
        else {
            continue;
        };
        let family = details.families.first().cloned().unwrap_or_default();
        let birth = details.birth_date.clone().unwrap_or_else(|| maya_birth.clone());
        let a = register(&gw, "A", &format!("a{round}@example.org")).await;
        let b = register(&gw, "B", &format!("b{round}@example.org")).await;
        let ((sa, ha), (sb, hb)) =
            tokio::join!(by_demographics(&a, record, &birth, &family), by_demographics(&b, record, &birth, &family));
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(statuses, [303, 400], "one owner: {ha}\n{hb}");
        assert_eq!(live_owners(&gw, &source, &id).await, 1);
    }
    let lines = reviews(&gw).lines().count();
    assert!(lines >= 1, "each loser is on the review list");
}

/// Live SELF links to one record, read from the database.
async fn live_owners(gw: &Gateway, source: &str, id: &str) -> i64 {
    let store = portico::store::Store::open(&gw.database_url, 1).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM account_patients WHERE source = $1 AND source_patient_id = $2 AND relationship = 'SELF' AND terminated_at IS NULL",
    )
    .bind(source)
    .bind(id)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    store.pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_itself_refuses_a_second_owner_of_a_record() {
    let gw = Gateway::start(&body()).await;
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    assert_eq!(by_demographics(&bob, MRN, &bob_birth_date(), "Martinez").await.0, 303);
    let (source, id) = bob_record(&gw).split_once('/').map(|(s, i)| (s.to_string(), i.to_string())).unwrap();
    let store = portico::store::Store::open(&gw.database_url, 1).await.unwrap();
    let insert = |link: &'static str, relationship: &'static str, terminated: Option<&'static str>| {
        sqlx::query(
            "INSERT INTO account_patients (id, account_id, source, source_patient_id, relationship, created_by, created_at, terminated_at)
             VALUES ($1, 'another-account', $2, $3, $4, 'test', '2026-01-01T00:00:00+00:00', $5)",
        )
        .bind(link)
        .bind(source.clone())
        .bind(id.clone())
        .bind(relationship)
        .bind(terminated)
        .execute(&store.pool)
    };
    // Past whatever the code checks, a second live SELF link is refused by the index …
    let err = insert("second-owner", "SELF", None).await.unwrap_err();
    assert!(err.as_database_error().is_some_and(sqlx::error::DatabaseError::is_unique_violation), "{err}");
    // … while a terminated owner and a proxy are not owners.
    insert("old-owner", "SELF", Some("2026-01-02T00:00:00+00:00")).await.unwrap();
    insert("a-proxy", "MTH", None).await.unwrap();
    store.pool.close().await;
    assert_eq!(live_owners(&gw, &source, &id).await, 1);
}
