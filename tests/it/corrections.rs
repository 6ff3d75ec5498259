//! The right to amend (issue 16 part 2) over real HTTP: a patient asks for a correction of
//! an item on a record page or in free text, HIM see it in their queue (admin API and CLI)
//! with its 60-day deadline, extend it once, accept or deny it with a reason; the patient
//! sees the answer, the accepted correction beside its item (until the item changes), and
//! files a statement of disagreement after a denial. Bad input — a made-up item, an item
//! the viewer cannot see, an oversize text, a missing CSRF token — is refused and changes
//! nothing. A proxy asks only about what she sees and sees only her own requests.
//! With TEST_ON_POSTGRES=1 every gateway here runs on PostgreSQL.

use crate::common::*;
use serde_json::Value;

/// Enrolls the signed-in browser into a record through the page.
pub(crate) async fn enroll(b: &Browser, mrn: &str, birth: &str, family: &str) {
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted(birth);
    let (status, html, _) =
        b.post("/enroll", &[("csrf", &token), ("mrn", mrn), ("birth_date", &birth), ("family", family)]).await;
    assert_eq!(status, 303, "{html}");
}

/// The link id `/records` sends a one-record account to.
pub(crate) async fn only_record(b: &Browser) -> String {
    let (status, _, location) = b.get("/records").await;
    assert_eq!(status, 303);
    location.unwrap().strip_prefix("/records/").expect("straight to the one record").to_string()
}

/// Bob Martinez (ehr/pt-10001), registered and enrolled through the pages; his record link.
pub(crate) async fn bob(gw: &Gateway) -> (Browser, String) {
    let b = register(gw, "Bob Martinez", "bob@example.org").await;
    enroll(&b, "HG100142", "1967-06-18", "martinez").await;
    let link = only_record(&b).await;
    (b, link)
}

async fn store(gw: &Gateway) -> portico::store::Store {
    portico::store::Store::open(&gw.database_url, 2).await.unwrap()
}

async fn count(gw: &Gateway, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&store(gw).await.pool).await.unwrap()
}

/// `(action, role, outcome)` of the access log's entries whose action starts `correction`.
async fn correction_log(gw: &Gateway) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT action, role, outcome FROM audit_events WHERE action LIKE 'correction%' ORDER BY seq")
        .fetch_all(&store(gw).await.pool)
        .await
        .unwrap()
}

/// The `Type/id` of every "Ask for a correction" link on a page.
fn correctable_items(html: &str) -> Vec<String> {
    html.match_indices("/corrections?item=")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// Posts a correction request about `item` from the record page's form.
async fn ask(b: &Browser, link: &str, csrf: &str, item: &str, text: &str) -> (u16, String, Option<String>) {
    b.post(&format!("/records/{link}/corrections"), &[("csrf", csrf), ("item", item), ("text", text)]).await
}

/// The ids of the requests in the HIM queue.
async fn queue_ids(gw: &Gateway, query: &str) -> Vec<String> {
    let (status, q) = admin_get(gw, &format!("/admin/corrections{query}")).await;
    assert_eq!(status, 200, "{q}");
    q["requests"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_a_record_page_is_accepted_by_him_and_shown_beside_its_item() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (b, link) = bob(&gw).await;
    let problems = b.view(&format!("/records/{link}/problems")).await;
    let item = correctable_items(&problems).into_iter().next().expect("each problem offers a correction");
    assert!(item.starts_with("Condition/"), "{item}");
    let results = correctable_items(&b.view(&format!("/records/{link}/results")).await);
    assert!(results.iter().any(|k| k.starts_with("Observation/")), "each result too: {results:?}");
    assert!(results.iter().any(|k| k.starts_with("DiagnosticReport/")), "and each report: {results:?}");
    let (csrf, form) = b.form_page(&format!("/records/{link}/corrections?item={item}")).await;
    assert!(form.contains("data-testid=\"correction-item\""), "the form names the item");

    // Refused, and nothing stored: no CSRF token, a made-up item, someone else's item, too long.
    let text = "The onset year is wrong: it started in 2019, not 2021.";
    let (status, _, _) = b.post(&format!("/records/{link}/corrections"), &[("item", &item), ("text", text)]).await;
    assert_eq!(status, 403);
    let (made_up, made_up_html, _) = ask(&b, &link, &csrf, "Condition/ehr.no-such-item", text).await;
    let maya_item = "Condition/ehr.cond-10013";
    assert_eq!(gw.get(maya_item).await.0, 200, "the other record's item exists");
    let (other, other_html, _) = ask(&b, &link, &csrf, maya_item, text).await;
    assert_eq!((made_up, other), (404, 404));
    assert_eq!(made_up_html, other_html, "an item the viewer cannot see answers like a made-up one");
    let (long, long_html, _) = ask(&b, &link, &csrf, &item, &"x".repeat(4001)).await;
    assert_eq!(long, 400);
    assert!(long_html.contains("at most 4000"), "{long_html}");
    let (empty, _, _) = ask(&b, &link, &csrf, &item, "   ").await;
    assert_eq!(empty, 400);
    assert_eq!(count(&gw, "SELECT COUNT(*) FROM correction_requests").await, 0, "nothing was stored");
    assert!(correction_log(&gw).await.is_empty());

    let (status, _, location) = ask(&b, &link, &csrf, &item, text).await;
    assert_eq!((status, location.as_deref()), (303, Some(format!("/records/{link}/corrections").as_str())));
    let page = b.view(&format!("/records/{link}/corrections")).await;
    assert!(page.contains(text) && page.contains("Waiting for an answer, due by"), "{page}");

    // HIM's queue: the request, due in 60 days, overdue only after that.
    let (status, q) = admin_get(&gw, "/admin/corrections").await;
    assert_eq!(status, 200, "{q}");
    let r = &q["requests"][0];
    assert_eq!(
        (r["item"].as_str(), r["status"].as_str(), r["overdue"].as_bool()),
        (Some(item.as_str()), Some("requested"), Some(false))
    );
    let received = chrono::DateTime::parse_from_rfc3339(r["received_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(r["due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due - received, chrono::Duration::days(60));
    let id = r["id"].as_str().unwrap().to_string();
    let later = (due + chrono::Duration::seconds(1)).to_rfc3339().replace('+', "%2B");
    let (_, late) = admin_get(&gw, &format!("/admin/corrections?as_of={later}")).await;
    assert_eq!((late["overdue"].as_u64(), late["requests"][0]["overdue"].as_bool()), (Some(1), Some(true)));

    // As FHIR: a Task after the Patient Corrections IG, and the request as a Communication.
    let (status, bundle) = admin_get(&gw, &format!("/admin/corrections/{id}")).await;
    assert_eq!(status, 200, "{bundle}");
    let task = &bundle["entry"][0]["resource"];
    assert_eq!(task["resourceType"], "Task");
    assert_eq!(task["code"]["coding"][0]["code"], "medRecCxReq");
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "queued");
    assert_eq!(task["focus"]["reference"], item.as_str());
    assert_eq!(bundle["entry"][1]["resource"]["payload"][0]["contentString"], text);

    // Bad decisions are refused and change nothing.
    for (body, want) in [
        (serde_json::json!({"decision": "maybe", "reason": "r", "by": "HIM"}), 400),
        (serde_json::json!({"decision": "accept", "reason": " ", "by": "HIM"}), 400),
        (serde_json::json!({"decision": "accept", "by": "HIM"}), 400),
    ] {
        assert_eq!(admin_post(&gw, &format!("/admin/corrections/{id}/decision"), body).await.0, want);
    }
    let ok = serde_json::json!({"decision": "accept", "reason": "Confirmed with the clinic.", "by": "HIM desk"});
    assert_eq!(admin_post(&gw, "/admin/corrections/no-such/decision", ok.clone()).await.0, 404);
    let anonymous =
        gw.http.post(format!("{}/admin/corrections/{id}/decision", gw.origin)).json(&ok).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(queue_ids(&gw, "").await, [id.as_str()], "still waiting");

    let (status, decided) = admin_post(&gw, &format!("/admin/corrections/{id}/decision"), ok.clone()).await;
    assert_eq!((status, decided["status"].as_str()), (200, Some("accepted")), "{decided}");
    assert_eq!(admin_post(&gw, &format!("/admin/corrections/{id}/decision"), ok).await.0, 409, "decided once");
    assert!(queue_ids(&gw, "").await.is_empty(), "the waiting queue is empty");
    assert_eq!(queue_ids(&gw, "?show=all").await, [id.as_str()]);

    // The patient sees the answer, and the correction beside the item.
    let page = b.view(&format!("/records/{link}/corrections")).await;
    assert!(page.contains("Accepted") && page.contains("Confirmed with the clinic."), "{page}");
    let problems = b.view(&format!("/records/{link}/problems")).await;
    assert_eq!(problems.matches("data-testid=\"accepted-correction\"").count(), 1);
    assert!(problems.contains(text));
    // The source changes the item: the correction is no longer shown beside it.
    sqlx::query("UPDATE correction_requests SET item_fingerprint = 'an earlier version'")
        .execute(&store(&gw).await.pool)
        .await
        .unwrap();
    let problems = b.view(&format!("/records/{link}/problems")).await;
    assert!(!problems.contains("accepted-correction") && !problems.contains(text));

    let log = correction_log(&gw).await;
    let done: Vec<(&str, &str)> =
        log.iter().filter(|e| e.2 == "success").map(|e| (e.0.as_str(), e.1.as_str())).collect();
    assert!(
        done.contains(&("correction-request", "patient")) && done.contains(&("correction-accept", "staff")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|e| e.0 == "correction-accept" && e.2 == "not-found"),
        "a refused decision is logged: {log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_takes_a_statement_of_disagreement_and_the_deadline_is_kept() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let (b, link) = bob(&gw).await;
    let (csrf, _) = b.form_page(&format!("/records/{link}/corrections")).await;
    for text in ["My address changed last spring.", "I never had the flu shot listed in 2020."] {
        let (status, html, _) =
            b.post(&format!("/records/{link}/corrections"), &[("csrf", &csrf), ("text", text)]).await;
        assert_eq!(status, 303, "{html}");
    }
    let ids = queue_ids(&gw, "").await;
    let (first, second) = (ids[0].clone(), ids[1].clone());

    // One extension, with a reason, while not yet due.
    let why = serde_json::json!({"reason": "The 2020 records are archived off site."});
    let (status, extended) = admin_post(&gw, &format!("/admin/corrections/{first}/extension"), why.clone()).await;
    assert_eq!(status, 200, "{extended}");
    let due = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["due_at"].as_str().unwrap()).unwrap();
    let received = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["received_at"].as_str().unwrap()).unwrap();
    assert_eq!(due(&extended) - received(&extended), chrono::Duration::days(90));
    assert_eq!(admin_post(&gw, &format!("/admin/corrections/{first}/extension"), why.clone()).await.0, 409);
    assert_eq!(
        admin_post(&gw, &format!("/admin/corrections/{first}/extension"), serde_json::json!({"reason": ""})).await.0,
        400
    );
    let page = b.view(&format!("/records/{link}/corrections")).await;
    assert!(page.contains("The 2020 records are archived off site."), "the patient is told why");

    // The other request was received 61 days ago: overdue now, and too late to extend.
    let past = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    sqlx::query("UPDATE correction_requests SET received_at = $1, due_at = $2 WHERE id = $3")
        .bind(past(61))
        .bind(past(1))
        .bind(&second)
        .execute(&store(&gw).await.pool)
        .await
        .unwrap();
    let (_, q) = admin_get(&gw, "/admin/corrections").await;
    assert_eq!(q["requests"][0]["id"], second.as_str(), "soonest due first");
    assert_eq!(
        (q["overdue"].as_u64(), q["requests"][0]["overdue"].as_bool(), q["requests"][1]["overdue"].as_bool()),
        (Some(1), Some(true), Some(false))
    );
    assert_eq!(admin_post(&gw, &format!("/admin/corrections/{second}/extension"), why).await.0, 409);
    let page = b.view(&format!("/records/{link}/corrections")).await;
    assert_eq!(page.matches(">overdue<").count(), 1, "the patient sees it is overdue");

    // HIM's CLI shows the overdue one and decides it.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico.toml");
    std::fs::write(&config, format!("[database]\nurl = {:?}\n{}", gw.database_url, fixture_file_sources())).unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(args)
            .args(["--config", config.to_str().unwrap()])
            .env_remove("PORTICO_CONFIG")
            .env(KEK_ENV, TEST_KEK)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, listed, err) = cli(&["corrections", "queue"]);
    assert!(ok, "{err}");
    let overdue: Vec<&str> = listed.lines().filter(|l| l.contains("OVERDUE")).collect();
    assert!(overdue.len() == 1 && overdue[0].starts_with(&second), "{listed}");
    let (ok, _, err) = cli(&["corrections", "decide", &second, "--decision", "later", "--reason", "r", "--by", "HIM"]);
    assert!(!ok && err.contains("accept or deny"), "{err}");
    let (ok, said, err) =
        cli(&["corrections", "decide", &second, "--decision", "accept", "--reason", "Updated.", "--by", "HIM"]);
    assert!(ok && said.contains("accepted"), "{said}{err}");

    // A denial, then the patient's statement of disagreement (once).
    let deny =
        serde_json::json!({"decision": "deny", "reason": "Our immunization record is accurate.", "by": "HIM desk"});
    assert_eq!(admin_post(&gw, &format!("/admin/corrections/{first}/decision"), deny).await.0, 200);
    let page = b.view(&format!("/records/{link}/corrections")).await;
    assert!(page.contains("Denied") && page.contains("Our immunization record is accurate."), "{page}");
    assert_eq!(page.matches(&format!("/corrections/{first}/disagreement")).count(), 1, "the statement form");
    assert_eq!(page.matches("/disagreement\"").count(), 1, "only after a denial");
    let statement = "I did not receive that vaccine; I was abroad that year.";
    let path = format!("/records/{link}/corrections/{first}/disagreement");
    let (status, _, _) = b.post(&path, &[("csrf", &csrf), ("text", &"y".repeat(4001))]).await;
    assert_eq!(status, 400);
    let (status, _, _) = b
        .post(&format!("/records/{link}/corrections/{second}/disagreement"), &[("csrf", &csrf), ("text", statement)])
        .await;
    assert_eq!(status, 400, "an accepted request takes no statement");
    let (status, html, _) = b.post(&path, &[("csrf", &csrf), ("text", statement)]).await;
    assert_eq!(status, 303, "{html}");
    let (status, _, _) = b.post(&path, &[("csrf", &csrf), ("text", "again")]).await;
    assert_eq!(status, 400, "once");
    let (status, _, _) =
        b.post(&format!("/records/{link}/corrections/no-such/disagreement"), &[("csrf", &csrf), ("text", "x")]).await;
    assert_eq!(status, 404);
    let page = b.view(&format!("/records/{link}/corrections")).await;
    assert!(page.contains(statement) && !page.contains("again"));

    // The patient's FHIR copy: the Task, the request, the answer and the statement.
    let (status, body, _) = b.get(&format!("/records/{link}/corrections/{first}/fhir")).await;
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_str(&body).unwrap();
    let resources: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
    assert_eq!(resources.len(), 4);
    assert_eq!(resources[0]["businessStatus"]["coding"][0]["code"], "denied");
    assert_eq!(resources[3]["category"][0]["coding"][0]["code"], "medRecCxDenialDisagree");
    assert_eq!(resources[3]["payload"][0]["contentString"], statement);
    // A flood of requests: twenty may wait at once, the next is refused (429) and not stored.
    for n in 0..20 {
        let (status, _, _) = b
            .post(&format!("/records/{link}/corrections"), &[("csrf", &csrf), ("text", &format!("Request {n}"))])
            .await;
        assert_eq!(status, 303, "{n}");
    }
    let (status, html, _) =
        b.post(&format!("/records/{link}/corrections"), &[("csrf", &csrf), ("text", "one more")]).await;
    assert_eq!(status, 429);
    assert!(html.contains("20 requests are already waiting"), "{html}");
    assert_eq!(count(&gw, "SELECT COUNT(*) FROM correction_requests WHERE status = 'requested'").await, 20);

    let log = correction_log(&gw).await;
    for action in
        ["correction-request", "correction-extend", "correction-deny", "correction-accept", "correction-disagreement"]
    {
        assert!(log.iter().any(|e| e.0 == action && e.2 == "success"), "{action}: {log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_asks_only_about_what_she_sees_and_sees_only_her_own_requests() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let maya = register(&gw, "Maya Rodriguez", "maya@example.org").await;
    enroll(&maya, "HG100733", "2009-08-14", "rodriguez").await;
    let maya_link = only_record(&maya).await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let ana_link = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;

    // Maya's confidential problem is on her page, not on her mother's; the mother cannot name it.
    let confidential = "Condition/ehr.cond-10013";
    let own = maya.view(&format!("/records/{maya_link}/problems")).await;
    assert!(correctable_items(&own).contains(&confidential.to_string()), "Maya can ask about it");
    let mothers = ana.every_page(&ana_link).await;
    let visible = correctable_items(&mothers);
    assert!(!mothers.contains("cond-10013"), "the confidential problem is not on her pages");
    assert!(!visible.is_empty() && !visible.contains(&confidential.to_string()));
    let (csrf, _) = ana.form_page(&format!("/records/{ana_link}/corrections")).await;
    let (status, _, _) = ana.get(&format!("/records/{ana_link}/corrections?item={confidential}")).await;
    assert_eq!(status, 404);
    let (status, _, _) = ana
        .post(
            &format!("/records/{ana_link}/corrections"),
            &[("csrf", &csrf), ("item", confidential), ("text", "wrong")],
        )
        .await;
    assert_eq!(status, 404, "a proxy never references an item she cannot see");
    assert_eq!(count(&gw, "SELECT COUNT(*) FROM correction_requests").await, 0);

    // The mother asks about an item she sees; Maya asks about her confidential one.
    let mothers_text = "Her allergy to penicillin is missing.";
    let (status, _, _) = ana
        .post(
            &format!("/records/{ana_link}/corrections"),
            &[("csrf", &csrf), ("item", &visible[0]), ("text", mothers_text)],
        )
        .await;
    assert_eq!(status, 303);
    let (maya_csrf, _) = maya.form_page(&format!("/records/{maya_link}/corrections")).await;
    let mayas_text = "This diagnosis was ruled out at the follow-up.";
    let (status, _, _) = maya
        .post(
            &format!("/records/{maya_link}/corrections"),
            &[("csrf", &maya_csrf), ("item", confidential), ("text", mayas_text)],
        )
        .await;
    assert_eq!(status, 303);

    // Maya sees both; her mother only her own, and nothing of Maya's on any page.
    let own = maya.view(&format!("/records/{maya_link}/corrections")).await;
    assert!(own.contains(mothers_text) && own.contains(mayas_text));
    let mothers = ana.every_page(&ana_link).await + &ana.view(&format!("/records/{ana_link}/corrections")).await;
    assert!(mothers.contains(mothers_text) && !mothers.contains(mayas_text) && !mothers.contains("ruled out"));
    let mayas_id: String =
        sqlx::query_scalar("SELECT id FROM correction_requests WHERE requester LIKE 'account:%' AND item = $1")
            .bind(confidential)
            .fetch_one(&store(&gw).await.pool)
            .await
            .unwrap();
    let (status, _, _) = ana.get(&format!("/records/{ana_link}/corrections/{mayas_id}/fhir")).await;
    assert_eq!(status, 404, "Maya's request answers like none");
    // Accepted, Maya's correction is shown beside her item, to her only.
    let accept = serde_json::json!({"decision": "accept", "reason": "Ruled out; noted.", "by": "HIM"});
    assert_eq!(admin_post(&gw, &format!("/admin/corrections/{mayas_id}/decision"), accept).await.0, 200);
    assert!(maya.view(&format!("/records/{maya_link}/problems")).await.contains(mayas_text));
    assert!(!ana.every_page(&ana_link).await.contains(mayas_text));
}
