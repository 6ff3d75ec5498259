//! Proxy invitations and the lifecycle of proxy access (issue 16 part 4), over real HTTP
//! and a real SMTP server (PyPI aiosmtpd): an adult patient invites someone by e-mail, the
//! invitee signs in with that address and confirms the patient's birth date (three tries,
//! then the invitation is dead and nothing is granted), the patient sees, ends and renews
//! the proxy (page and JSON API), an adult's proxy runs out and is announced before; a
//! child's twelfth birthday is announced to the parent and the child before the day, and
//! at eighteen the parent's access ends with notice. That gateway runs on a clock set to a
//! fixed day (`TODAY`), with birthdays fixed relative to it (`proxy_birthdays` walks one
//! child through its birthdays day by day).

use crate::common::*;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

const MRN: &str = "HG100142";

async fn gateway(sink: &SmtpSink, sources: &str) -> Gateway {
    Gateway::start(&format!("{}{sources}", sink.config())).await
}

/// Connects Bob Martinez's account to his record.
async fn enroll_bob(b: &Browser) {
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted("1967-06-18");
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", MRN), ("birth_date", &birth), ("family", "Martinez")]).await;
    assert_eq!(status, 303, "{html}");
}

/// The patient invites `email` from the proxies page.
async fn invite(b: &Browser, email: &str, relationship: &str) {
    let (token, _) = b.form_page("/account/proxies").await;
    let (status, html, location) =
        b.post("/account/proxies/invite", &[("csrf", &token), ("email", email), ("relationship", relationship)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account/proxies?done=invited")), "{html}");
}

/// The accept link's path in an invitation mail to `to` other than `seen` (earlier ones).
async fn invitation_path(sink: &SmtpSink, to: &str, seen: &[String]) -> String {
    let path_of = |m: &Mail| -> Option<String> {
        let body = m.body();
        let at = body.find("/proxy-invitations/accept?token=")?;
        Some(body[at..].chars().take_while(|c| !c.is_whitespace()).collect())
    };
    let mail = wait_for_mail(
        || sink.mails(),
        |m| m.to() == to && m.subject().contains("invited") && path_of(m).is_some_and(|p| !seen.contains(&p)),
    )
    .await;
    path_of(&mail).unwrap()
}

/// Posts a birth date on the accept page: (status, html, location).
async fn accept(b: &Browser, path: &str, birth: &str) -> (u16, String, Option<String>) {
    let (status, html, _) = b.get(path).await;
    assert!(status == 200 || status == 410, "{status} {html}");
    let token = path.split_once("token=").unwrap().1;
    b.post("/proxy-invitations/accept", &[("csrf", &csrf(&html)), ("token", token), ("birth_date", birth)]).await
}

/// The patient's proxies as the JSON API lists them.
async fn listed(b: &Browser) -> Value {
    let r = b.http.get(b.url("/api/account/proxies")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A JSON POST with the session's CSRF token.
async fn post_json(b: &Browser, path: &str, body: Value) -> (u16, Value) {
    let (token, _) = b.form_page("/account/proxies").await;
    let r = b.http.post(b.url(path)).header("x-csrf-token", token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn assert_no_phi(mails: &[Mail], phi: &[&str]) {
    assert!(!mails.is_empty());
    for m in mails {
        // The body and subject (the addresses hold the account holders' own names).
        let text = m.words().to_lowercase();
        for p in phi {
            assert!(!text.contains(&p.to_lowercase()), "a mail holds {p:?}:\n{}", m.raw);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_proxy_with_the_right_birth_date_sees_the_record_until_the_patient_ends_it() {
    if !require("python") {
        return;
    }
    let sink = SmtpSink::start();
    let gw = gateway(&sink, &fixture_file_sources()).await;
    let bob = sink.register(&gw, "Robert Martinez", "bob@example.org").await;
    enroll_bob(&bob).await;
    invite(&bob, "carol@example.org", "SPS").await;
    let path = invitation_path(&sink, "carol@example.org", &[]).await;

    // Not signed in: how to sign in first, and no form.
    let (status, html, _) = Browser::new(&gw).get(&path).await;
    assert_eq!(status, 200);
    assert!(html.contains("create an account") && !html.contains("name=\"birth_date\""), "{html}");
    // Signed in with another address: refused, and no try is taken.
    let dave = sink.register(&gw, "Dave Ng", "dave@example.org").await;
    let (status, html, _) = accept(&dave, &path, &shifted("1967-06-18")).await;
    assert_eq!(status, 403, "{html}");
    // The invitee, with the right birth date: straight to the record.
    let carol = sink.register(&gw, "Carol Diaz", "carol@example.org").await;
    let (status, html, location) = accept(&carol, &path, &shifted("1967-06-18")).await;
    assert_eq!(status, 303, "{html}");
    let link = location.unwrap().strip_prefix("/records/").unwrap().to_string();
    let results = carol.view(&format!("/records/{link}/results")).await;
    assert!(results.contains("Hemoglobin A1c"), "the adult's proxy sees the record");
    // The link works once.
    let (status, _, _) = accept(&carol, &path, &shifted("1967-06-18")).await;
    assert_eq!(status, 410);
    sink.wait("bob@example.org", "can now see your health record").await;

    // Bob sees Carol, until a year from today.
    let list = listed(&bob).await;
    let proxies = list["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 1, "{list}");
    assert_eq!((proxies[0]["name"].as_str(), proxies[0]["relationship"].as_str()), (Some("Carol Diaz"), Some("SPS")));
    let year = (Utc::now() + Duration::days(365)).format("%Y-%m-%d").to_string();
    assert!(proxies[0]["valid_until"].as_str().unwrap().starts_with(&year), "{list}");
    assert_eq!(list["invitations"][0]["state"], "accepted");
    let page = bob.view("/account/proxies").await;
    assert!(page.contains("Carol Diaz") && page.contains("End access for Carol Diaz"), "{page}");
    // Someone else cannot end it; a made-up link is not found; no token, no change.
    let (status, _) = post_json(&carol, &format!("/api/account/proxies/{link}/end"), json!({})).await;
    assert_eq!(status, 403, "Carol has no record of her own to manage");
    let (status, _) = post_json(&bob, "/api/account/proxies/no-such-link/end", json!({})).await;
    assert_eq!(status, 404);
    let r = bob.http.post(bob.url(&format!("/api/account/proxies/{link}/end"))).send().await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF header");
    carol.view(&format!("/records/{link}")).await;

    // Bob ends it: Carol's next request is refused, and she is told.
    let (status, body) = post_json(&bob, &format!("/api/account/proxies/{link}/end"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = carol.get(&format!("/records/{link}/results")).await;
    assert_eq!(status, 404);
    sink.wait("carol@example.org", "access to a health record has ended").await;
    assert_eq!(listed(&bob).await["proxies"].as_array().unwrap().len(), 0);

    // Invited again: her access runs out at its end (moved to yesterday here) and the
    // patient renews it.
    invite(&bob, "carol@example.org", "CAREGIVER").await;
    let path = invitation_path(&sink, "carol@example.org", &[path]).await;
    let (status, html, location) = accept(&carol, &path, &shifted("1967-06-18")).await;
    assert_eq!(status, 303, "{html}");
    let link = location.unwrap().strip_prefix("/records/").unwrap().to_string();
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let set_end = |t: chrono::DateTime<Utc>| {
        let pool = store.pool.clone();
        let link = link.clone();
        async move {
            sqlx::query("UPDATE account_patients SET valid_until = $1 WHERE id = $2")
                .bind(t.to_rfc3339())
                .bind(link)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Ten days before the end: the patient is told once (a second sweep sends nothing).
    set_end(Utc::now() + Duration::days(10)).await;
    let swept = staff_post(&gw, "/admin/proxies/sweep").await;
    assert_eq!(swept["expiry_warnings"], 1, "{swept}");
    sink.wait("bob@example.org", "ends soon").await;
    assert_eq!(staff_post(&gw, "/admin/proxies/sweep").await["expiry_warnings"], 0);
    carol.view(&format!("/records/{link}")).await;
    set_end(Utc::now() - Duration::hours(1)).await;
    let (status, _, _) = carol.get(&format!("/records/{link}")).await;
    assert_eq!(status, 404, "run out");
    let page = bob.view("/account/proxies").await;
    assert!(page.contains("ran out") && page.contains("Renew access for Carol Diaz"), "{page}");
    let (token, _) = bob.form_page("/account/proxies").await;
    let (status, _, location) = bob.post("/account/proxies/renew", &[("csrf", &token), ("link_id", &link)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account/proxies?done=renewed")));
    carol.view(&format!("/records/{link}/results")).await;
    assert_eq!(sink.count("bob@example.org", "ends soon"), 1);

    let phi = [MRN, "Martinez", "Robert", "1967", &shifted("1967-06-18"), "Hemoglobin", "4548-4", "A1c", "Carol Diaz"];
    assert_no_phi(&sink.mails(), &phi);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_birth_dates_kill_the_invitation_and_grant_nothing() {
    if !require("python") {
        return;
    }
    let sink = SmtpSink::start();
    let gw = gateway(&sink, &fixture_file_sources()).await;
    let bob = sink.register(&gw, "Robert Martinez", "bob@example.org").await;
    enroll_bob(&bob).await;
    // Bad input is refused and changes nothing.
    let (status, body) = post_json(&bob, "/api/account/proxies/invitations", json!({"email": "not an address"})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid")));
    let (status, _) = post_json(
        &bob,
        "/api/account/proxies/invitations",
        json!({"email": "erin@example.org", "relationship": "SELF"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(listed(&bob).await["invitations"].as_array().unwrap().len(), 0);
    let (status, body) =
        post_json(&bob, "/api/account/proxies/invitations", json!({"email": "Erin@Example.org"})).await;
    assert_eq!((status, body["state"].as_str()), (201, Some("open")), "{body}");
    let path = invitation_path(&sink, "erin@example.org", &[]).await;
    let erin = sink.register(&gw, "Erin Walsh", "erin@example.org").await;

    // A date that is not a date takes no try.
    let (status, html, _) = accept(&erin, &path, "June 18").await;
    assert_eq!(status, 400, "{html}");
    let (status, html, _) = accept(&erin, &path, &shifted("1967-06-19")).await;
    assert_eq!(status, 400);
    assert!(html.contains("try 2 more times"), "{html}");
    let (status, html, _) = accept(&erin, &path, &shifted("1966-06-18")).await;
    assert!(status == 400 && html.contains("try 1 more time."), "{html}");
    let (status, html, _) = accept(&erin, &path, "1967-18-06").await;
    assert_eq!(status, 400, "not a date: {html}");
    let (status, html, _) = accept(&erin, &path, &shifted("1968-06-18")).await;
    assert_eq!(status, 410, "the third wrong date: {html}");
    assert!(html.contains("can no longer be used"), "{html}");
    // Dead: even the right date gets nothing.
    let (status, _, _) = accept(&erin, &path, &shifted("1967-06-18")).await;
    assert_eq!(status, 410);
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    let links: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM account_patients p JOIN accounts a ON a.id = p.account_id WHERE a.username = 'erin@example.org'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(links, 0, "nothing granted");
    let list = listed(&bob).await;
    assert_eq!(list["proxies"].as_array().unwrap().len(), 0);
    assert_eq!(list["invitations"][0]["state"], "dead", "{list}");
    assert_eq!(sink.count("bob@example.org", "can now see"), 0);

    // A flood of tries is throttled, never a 500.
    let (_, html, _) = erin.get(&path).await;
    let token = path.split_once("token=").unwrap().1.to_string();
    let mut limited = false;
    for _ in 0..40 {
        let (status, _, _) = erin
            .post(
                "/proxy-invitations/accept",
                &[("csrf", &csrf(&html)), ("token", &token), ("birth_date", "2000-01-01")],
            )
            .await;
        assert!(status == 410 || status == 429, "{status}");
        limited |= status == 429;
    }
    assert!(limited, "too many tries are refused with 429");

    // Invitations: at most ten open at once, and a flood of them is refused with 429.
    for n in 0..10 {
        let (status, body) =
            post_json(&bob, "/api/account/proxies/invitations", json!({"email": format!("friend{n}@example.org")}))
                .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) =
        post_json(&bob, "/api/account/proxies/invitations", json!({"email": "friend10@example.org"})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid")), "{body}");
    let mut limited = false;
    for n in 0..15 {
        let open = listed(&bob).await["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["state"] == "open")
            .map(|i| i["id"].as_str().unwrap().to_string())
            .unwrap();
        let (token, _) = bob.form_page("/account/proxies").await;
        let (status, _, _) = bob.post("/account/proxies/cancel", &[("csrf", &token), ("invitation_id", &open)]).await;
        assert_eq!(status, 303);
        let (status, _) =
            post_json(&bob, "/api/account/proxies/invitations", json!({"email": format!("more{n}@example.org")})).await;
        assert!(status == 201 || status == 429, "{status}");
        if status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "a patient cannot mail invitations without end");
}

/// A child's record at a clinic: born `birth`, with a name to look for in mails.
fn child(id: &str, given: &str, birth: NaiveDate) -> Value {
    json!({"resourceType": "Patient", "id": id, "birthDate": birth.format("%Y-%m-%d").to_string(),
           "name": [{"family": "Lindqvist", "given": [given]}],
           "identifier": [{"system": "https://clinic.example/mrn", "value": format!("CL-{id}")}]})
}

/// The day the birthday test's gateway clock stands at (noon UTC; the gateway's zone is UTC).
const TODAY: &str = "2026-12-03";

fn today() -> NaiveDate {
    NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap()
}

/// The day someone who turns `age` in `days` days after [`TODAY`] was born.
fn born_for(age: i32, days: i64) -> NaiveDate {
    let day = today() + Duration::days(days);
    NaiveDate::from_ymd_opt(day.year() - age, day.month(), day.day()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twelfth_birthday_is_announced_before_the_day_and_the_eighteenth_ends_the_parents_access() {
    if !require("python") {
        return;
    }
    let soon = born_for(12, 20);
    let later = born_for(12, 60);
    let adult_today = born_for(18, 0);
    let almost_adult = born_for(18, 5);
    let store = portico::sources::files::ResourceStore::from_resources(vec![
        child("k-soon", "Linnea", soon),
        child("k-later", "Oskar", later),
        child("k-adult", "Greta", adult_today),
        child("k-almost", "Axel", almost_adult),
    ]);
    let sim = simulate_store(store, portico::simulator::SimulatorOptions::default()).await;
    let sink = SmtpSink::start();
    let clock = portico::Clock::set_at(today().and_hms_opt(12, 0, 0).unwrap().and_utc());
    let gw = Gateway::start_with_clock(
        &format!("{}{}", sink.config(), rest_source("clinic", "Fjord Clinic", sim.base_url(), "")),
        clock,
    )
    .await;
    let pat = sink.register(&gw, "Pat Lindqvist", "pat@example.org").await;
    let quinn = sink.register(&gw, "Quinn Lindqvist", "quinn@example.org").await;
    let sam = sink.register(&gw, "Sam Lindqvist", "sam@example.org").await;
    let pat_soon = grant_proxy(&gw, "pat@example.org", "clinic/k-soon", "MTH", "").await;
    grant_proxy(&gw, "quinn@example.org", "clinic/k-later", "FTH", "").await;
    let sam_adult = grant_proxy(&gw, "sam@example.org", "clinic/k-adult", "FTH", "").await;
    grant_proxy(&gw, "sam@example.org", "clinic/k-almost", "FTH", "").await;
    // Linnea and Greta have their own accounts (activation codes from the HIM desk).
    let linnea = sink.register(&gw, "Linnea Lindqvist", "linnea@example.org").await;
    enroll_with_code(&gw, &linnea, "clinic/k-soon", soon).await;
    let greta = sink.register(&gw, "Greta Lindqvist", "greta@example.org").await;
    enroll_with_code(&gw, &greta, "clinic/k-adult", adult_today).await;

    let swept = staff_post(&gw, "/admin/proxies/sweep").await;
    assert_eq!(
        (swept["told_ahead"].as_i64(), swept["ended_at_majority"].as_i64()),
        (Some(2), Some(1)),
        "Linnea (12 in 20 days) and Axel (18 in 5) ahead; Greta (18 today) ended: {swept}"
    );
    sink.wait("pat@example.org", "changes soon").await;
    sink.wait("linnea@example.org", "changes soon").await;
    sink.wait("sam@example.org", "has ended").await;
    sink.wait("greta@example.org", "Access to your health record has changed").await;
    // Before the day nothing has changed for Pat; the account page says what and when.
    pat.view(&format!("/records/{pat_soon}")).await;
    let page = pat.view("/account/proxies").await;
    let day = (today() + Duration::days(20)).format("%b %-d, %Y").to_string();
    assert!(page.contains(&format!("on {day} they turn 12")) && page.contains("see less of their record"), "{page}");
    let page = linnea.view("/account/proxies").await;
    assert!(page.contains(&format!("On {day} you turn 12")), "{page}");
    // At eighteen the parent's access ended.
    let (status, _, _) = sam.get(&format!("/records/{sam_adult}")).await;
    assert_eq!(status, 404);
    // Each once; Oskar's birthday is too far off to announce.
    let again = staff_post(&gw, "/admin/proxies/sweep").await;
    assert_eq!(again, json!({"told_ahead": 0, "ended_at_majority": 0, "expiry_warnings": 0}));
    register_unverified(&gw, "Last", "last@example.org").await;
    sink.wait("last@example.org", "Confirm").await;
    assert_eq!(sink.count("pat@example.org", "changes soon"), 1);
    assert_eq!(sink.count("linnea@example.org", "changes soon"), 1);
    assert_eq!(sink.count("sam@example.org", "changes soon"), 1, "Axel's eighteenth, ahead");
    assert_eq!(sink.count("quinn@example.org", "changes soon"), 0);
    let _ = quinn;
    // No names, no birth dates, not even the birthday's day.
    let mut phi: Vec<String> =
        ["Lindqvist", "Linnea", "Greta", "Axel", "Oskar", "CL-k-"].iter().map(ToString::to_string).collect();
    for d in [soon, later, adult_today, almost_adult] {
        phi.push(d.format("%Y-%m-%d").to_string());
    }
    phi.push(day);
    let phi: Vec<&str> = phi.iter().map(String::as_str).collect();
    assert_no_phi(&sink.mails().into_iter().filter(|m| !m.subject().contains("Confirm")).collect::<Vec<_>>(), &phi);
}
