//! A child's birthdays on their very days (issue 16 part 4, "turning-12 and turning-18
//! notices on the right days (clock injected)"): the gateway runs on a clock the test sets
//! ([`portico::Clock::set_at`], handed in through the library's app builder — a deployment
//! has no way to set it), the child's birth date is fixed, and staff run the lifecycle sweep
//! (`POST /admin/proxies/sweep`) on chosen days. Mails are read from a real SMTP server (PyPI
//! aiosmtpd); pages and the record download over real HTTP.
//!
//! Linnea, born 2014-06-15, has a depression diagnosis (labelled mental health, a service a
//! minor consents to alone from 12 under the shipped policy) and asthma; her mother Pat is
//! her proxy (granted by HIM). Nothing is told the day before the `proxies.notice_ahead`
//! window (30 days); on its first day each is told once, and a second sweep tells nothing;
//! the day before the twelfth birthday Pat sees the diagnosis, on the birthday it is gone
//! from everything Pat opens (and nothing says it exists) while Linnea still sees it; the day
//! before the eighteenth Pat's access works, on it the sweep ends it and both are told. No
//! mail holds a name, a birth date or a birthday. A 29 February child's eighteenth birthday
//! falls on 1 March.

use crate::access_reach::{token_for, CLIENT, REDIRECT};
use crate::common::*;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

/// Noon UTC on `day` (`YYYY-MM-DD`; the gateway's zone is UTC).
fn noon(day: &str) -> DateTime<Utc> {
    format!("{day}T12:00:00Z").parse().unwrap()
}

fn date(day: &str) -> NaiveDate {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap()
}

/// A child's record at a clinic, with a mental health diagnosis and asthma.
fn child(id: &str, given: &str, birth: &str) -> Vec<Value> {
    let condition = |cid: &str, code: &str, display: &str| {
        json!({"resourceType": "Condition", "id": cid, "subject": {"reference": format!("Patient/{id}")},
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                              "code": "active"}]},
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                         "code": "problem-list-item"}]}],
               "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code, "display": display}],
                        "text": display},
               "recordedDate": "2024-03-02"})
    };
    vec![
        json!({"resourceType": "Patient", "id": id, "birthDate": birth,
               "name": [{"family": "Lindqvist", "given": [given]}],
               "identifier": [{"system": "https://clinic.example/mrn", "value": format!("CL-{id}")}]}),
        condition(&format!("{id}-mood"), "F32.9", "Major depressive disorder, single episode"),
        condition(&format!("{id}-asthma"), "J45.909", "Unspecified asthma, uncomplicated"),
    ]
}

/// What the parent's app asks for.
const SCOPE: &str = "launch/patient patient/*.rs";

/// A gateway on `clock` over a clinic holding `records`, mailing through `sink`, with an app.
async fn gateway(sink: &SmtpSink, records: Vec<Value>, clock: portico::Clock) -> (Gateway, impl Sized) {
    let store = portico::sources::files::ResourceStore::from_resources(records);
    let sim = simulate_store(store, portico::simulator::SimulatorOptions::default()).await;
    let body = format!(
        "[auth]\n[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"Chart\"\nkind = \"public\"\n\
         redirect_uris = [\"{REDIRECT}\"]\nallowed_scopes = \"{SCOPE}\"\n{}{}",
        sink.config(),
        rest_source("clinic", "Fjord Clinic", sim.base_url(), "")
    );
    (Gateway::start_with_clock(&body, clock).await, sim)
}

/// Runs the lifecycle sweep: (told ahead, ended at majority).
async fn sweep(gw: &Gateway) -> (i64, i64) {
    let s = staff_post(gw, "/admin/proxies/sweep").await;
    (s["told_ahead"].as_i64().unwrap(), s["ended_at_majority"].as_i64().unwrap())
}

/// Every mail sent so far has arrived: a registration mail queued after them is in.
async fn mail_settled(gw: &Gateway, sink: &SmtpSink, n: usize) {
    let who = format!("settle{n}@example.org");
    register_unverified(gw, "Settle", &who).await;
    sink.wait(&who, "Confirm").await;
}

/// Everything a signed-in person sees of a record: every page and the download.
async fn everything(b: &Browser, link: &str) -> String {
    let mut all = b.every_page(link).await;
    let r = b.http.get(b.url(&format!("/records/{link}/download.json"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    all.push_str(&r.text().await.unwrap());
    all
}

/// What a mail must not hold: names, record numbers, the diagnosis, the birth date and
/// the birthdays (as dates and in words, as mails write days).
fn assert_no_phi(sink: &SmtpSink, phi: &[String]) {
    let mails: Vec<Mail> = sink.mails().into_iter().filter(|m| !m.subject().contains("Confirm")).collect();
    assert!(!mails.is_empty());
    for m in &mails {
        let text = m.words().to_lowercase();
        for p in phi {
            assert!(!text.contains(&p.to_lowercase()), "a mail holds {p:?}:\n{}", m.text());
        }
    }
}

/// The ways a day may be written: `2026-06-15`, `June 15`, `15 June`, `15 de junio`.
fn day_forms(day: &str) -> Vec<String> {
    let d = date(day);
    let months = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    let spanish = months[usize::try_from(chrono::Datelike::month0(&d)).unwrap()];
    vec![
        day.to_string(),
        d.format("%B %-d").to_string(),
        d.format("%-d %B").to_string(),
        format!("{} de {spanish}", d.format("%-d")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twelfth_and_eighteenth_birthdays_change_a_parents_access_on_their_very_days() {
    if !require("python") {
        return;
    }
    let clock = portico::Clock::set_at(noon("2026-05-15"));
    let sink = SmtpSink::start();
    let (gw, _sim) = gateway(&sink, child("k-linnea", "Linnea", "2014-06-15"), clock.clone()).await;
    let pat = sink.register(&gw, "Pat Lindqvist", "pat@example.org").await;
    let link = grant_proxy(&gw, "pat@example.org", "clinic/k-linnea", "MTH", "").await;
    let linnea = sink.register(&gw, "Linnea Lindqvist", "linnea@example.org").await;
    enroll_with_code(&gw, &linnea, "clinic/k-linnea", date("2014-06-15")).await;
    let (_, _, own) = linnea.get("/records").await;
    let own_link = own.unwrap().strip_prefix("/records/").expect("Linnea's one record").to_string();
    let changes = "changes soon";
    let patient = gw.patient_id("clinic", "k-linnea");
    let app = token_for(&gw, &pat, SCOPE).await["access_token"].as_str().unwrap().to_string();

    // 2026-05-15, the day before the window (the twelfth birthday is 31 days off): nothing.
    assert_eq!(sweep(&gw).await, (0, 0));
    let page = pat.view("/account/proxies").await;
    assert!(page.contains("on Jun 15, 2026 they turn 12"), "the account page says what and when: {page}");

    // 2026-05-16, the window's first day: each is told once, and again nothing.
    clock.set(noon("2026-05-16"));
    assert_eq!(sweep(&gw).await, (1, 0));
    sink.wait("pat@example.org", changes).await;
    sink.wait("linnea@example.org", changes).await;
    assert_eq!(sweep(&gw).await, (0, 0), "told once");
    mail_settled(&gw, &sink, 1).await;
    assert_eq!((sink.count("pat@example.org", changes), sink.count("linnea@example.org", changes)), (1, 1));
    let page = linnea.view("/account/proxies").await;
    assert!(page.contains("On Jun 15, 2026 you turn 12"), "{page}");

    // 2026-06-14, the day before: Pat still sees the diagnosis.
    clock.set(noon("2026-06-14"));
    assert_eq!(sweep(&gw).await, (0, 0));
    let before = everything(&pat, &link).await;
    assert!(before.contains("Major depressive disorder") && before.contains("Unspecified asthma"), "{before}");
    let (status, body) = gw.get_with("Condition/clinic.k-linnea-mood", Some(&app), &[]).await;
    assert_eq!(status, 200, "Pat's app reads it too: {body}");

    // 2026-06-15, the twelfth birthday (from its first minute): gone from all Pat opens, and
    // nothing tells it was there; the asthma stays; Linnea sees both.
    clock.set("2026-06-15T00:00:01Z".parse().unwrap());
    assert_eq!(sweep(&gw).await, (0, 0), "nothing to tell on the day itself");
    let after = everything(&pat, &link).await;
    assert!(after.contains("Unspecified asthma"), "a limited record, not none: {after}");
    for hidden in ["Major depressive", "F32", "k-linnea-mood", "mental", "confidential"] {
        assert!(!holds_word(&after, hidden), "Pat's pages hold {hidden:?}: {after}");
    }
    // Pat's app: the diagnosis is answered like one that never existed, and not listed.
    let (status, body) = gw.get_with("Condition/clinic.k-linnea-mood", Some(&app), &[]).await;
    let (missing, nothing) = gw.get_with("Condition/clinic.k-linnea-none", Some(&app), &[]).await;
    assert_eq!((status, missing), (404, 404), "{body}");
    assert_eq!(body.to_string().replace("mood", "none"), nothing.to_string());
    let (listed, _) = gw.all_pages_with(&format!("Condition?patient={patient}"), &app).await;
    assert_eq!(keys(&listed), ["Condition/clinic.k-linnea-asthma"]);
    let mine = everything(&linnea, &own_link).await;
    assert!(mine.contains("Major depressive disorder") && mine.contains("Unspecified asthma"));

    // The eighteenth birthday is 2032-06-15: told on 2032-05-16, once each.
    clock.set(noon("2032-05-15"));
    assert_eq!(sweep(&gw).await, (0, 0));
    clock.set(noon("2032-05-16"));
    assert_eq!(sweep(&gw).await, (1, 0));
    mail_settled(&gw, &sink, 2).await;
    assert_eq!((sink.count("pat@example.org", changes), sink.count("linnea@example.org", changes)), (2, 2));
    let page = pat.view("/account/proxies").await;
    assert!(page.contains("on Jun 15, 2032 they turn 18"), "{page}");

    // The day before, Pat's access works; on the day it ends, and both are told.
    clock.set(noon("2032-06-14"));
    assert_eq!(sweep(&gw).await, (0, 0));
    pat.view(&format!("/records/{link}")).await;
    clock.set("2032-06-15T00:00:01Z".parse().unwrap());
    assert_eq!(sweep(&gw).await, (0, 1));
    sink.wait("pat@example.org", "has ended").await;
    sink.wait("linnea@example.org", "Access to your health record has changed").await;
    // What an ended proxy gets: the record is not there, on every page and the download.
    for p in
        RECORD_PAGES.iter().map(|p| format!("/records/{link}{p}")).chain([format!("/records/{link}/download.json")])
    {
        let (status, _, _) = pat.get(&p).await;
        assert_eq!(status, 404, "{p}");
    }
    let (_, _, records) = pat.get("/records").await;
    assert_eq!(records.as_deref(), Some("/enroll"), "Pat has no record to open any more");
    let (status, body) = gw.get_with("Condition/clinic.k-linnea-asthma", Some(&app), &[]).await;
    assert_eq!(status, 401, "the app's grant ended with the link: {body}");
    linnea.view(&format!("/records/{own_link}")).await;
    assert_eq!(sweep(&gw).await, (0, 0), "ended once");
    mail_settled(&gw, &sink, 3).await;
    assert_eq!(sink.count("pat@example.org", "has ended"), 1);
    assert_eq!(sink.count("linnea@example.org", "has changed"), 1);

    let mut phi: Vec<String> =
        ["Lindqvist", "Linnea", "CL-k-", "depress", "F32", "asthma"].iter().map(ToString::to_string).collect();
    for day in ["2014-06-15", "2026-06-15", "2032-06-15"] {
        phi.extend(day_forms(day));
    }
    assert_no_phi(&sink, &phi);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leap_day_child_comes_of_age_on_the_first_of_march() {
    if !require("python") {
        return;
    }
    let clock = portico::Clock::set_at(noon("2030-01-29"));
    let sink = SmtpSink::start();
    let (gw, _sim) = gateway(&sink, child("k-axel", "Axel", "2012-02-29"), clock.clone()).await;
    let sam = sink.register(&gw, "Sam Lindqvist", "sam@example.org").await;
    let link = grant_proxy(&gw, "sam@example.org", "clinic/k-axel", "FTH", "").await;

    // 1 March 2030 less 30 days is 30 January.
    assert_eq!(sweep(&gw).await, (0, 0), "29 January: not yet");
    clock.set(noon("2030-01-30"));
    assert_eq!(sweep(&gw).await, (1, 0));
    sink.wait("sam@example.org", "changes soon").await;
    let page = sam.view("/account/proxies").await;
    assert!(page.contains("on Mar 1, 2030 they turn 18"), "{page}");
    // 28 February: still 17.
    clock.set(noon("2030-02-28"));
    assert_eq!(sweep(&gw).await, (0, 0));
    sam.view(&format!("/records/{link}")).await;
    clock.set(noon("2030-03-01"));
    assert_eq!(sweep(&gw).await, (0, 1));
    sink.wait("sam@example.org", "has ended").await;
    let (status, _, _) = sam.get(&format!("/records/{link}")).await;
    assert_eq!(status, 404);

    let mut phi: Vec<String> = ["Lindqvist", "Axel", "CL-k-"].iter().map(ToString::to_string).collect();
    for day in ["2012-02-29", "2030-03-01"] {
        phi.extend(day_forms(day));
    }
    assert_no_phi(&sink, &phi);
}
