//! Bulk Data `$export` over HTTP: system, Group and Patient level give exactly what
//! `$everything` gives the same viewer (nothing twice, nothing missing), `_type`, `_since`,
//! `_typeFilter` and POSTed `patient` narrow it, bad kick-offs are refused and leave no job,
//! each partner purpose sees what the policy releases (Part 2 with and without consent),
//! and a job belongs to the client that started it.

use crate::bulk::client::*;
use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const NORTH: &str = "bulk-hie-north-treat-token";
const SOUTH: &str = "bulk-hie-south-treat-token";
const EMERGENCY: &str = "bulk-hie-north-emergency-tok";
const RESEARCH: &str = "bulk-hie-north-research-tok";
const MAYA: &str = "bulk-maya-rodriguez-self-tok";
const MOTHER: &str = "bulk-maya-mother-proxy-token";

fn body(dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[[server.dev_tokens]]\ntoken = \"{NORTH}\"\nviewer = \"partner:hie-north:TREAT\"\ngroups = [\"north-roster\"]\n\
         [[server.dev_tokens]]\ntoken = \"{SOUTH}\"\nviewer = \"partner:hie-south:TREAT\"\n\
         [[server.dev_tokens]]\ntoken = \"{EMERGENCY}\"\nviewer = \"partner:hie-north:ETREAT\"\n\
         [[server.dev_tokens]]\ntoken = \"{RESEARCH}\"\nviewer = \"partner:hie-north:HRESCH\"\n\
         [[server.dev_tokens]]\ntoken = \"{MAYA}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n\
         [export]\ndirectory = {:?}\npoll_interval = \"100ms\"\npatients_per_unit = 4\n{extra}\n\
         [[export.groups]]\nid = \"north-roster\"\nname = \"HIE North shared patients\"\n\
         members = [\"ehr/pt-10001\", \"ehr/pt-10004\", \"ehr/pt-10005\"]\n\
         [[export.groups]]\nid = \"south-roster\"\nname = \"HIE South shared patients\"\nmembers = [\"ehr/pt-10002\"]\n{}",
        dir.join("exports").display().to_string(),
        fixture_file_sources()
    )
}

async fn start(extra: &str) -> Gateway {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let text = body(dir.path(), extra);
    Gateway::start_in(dir, &text, None).await
}

fn from_source(r: &Value, source: &str) -> bool {
    source_tags(r).iter().any(|s| s == source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_group_and_patient_exports_equal_everything_for_the_same_viewer() {
    let gw = start("").await;
    let all = all_patients(&gw);

    // System level, a partner allowed any Group: every patient's released record.
    let system = export(&gw, "$export", SOUTH).await;
    assert!(system.manifest["request"].as_str().unwrap().ends_with("/$export"));
    assert!(system.expires.is_some(), "Expires on the manifest");
    assert_same(&system.resources, &everything(&gw, &all, SOUTH).await);
    let patients: Vec<&Value> = system.resources.iter().filter(|r| r["resourceType"] == "Patient").collect();
    assert_eq!(patients.len(), all.len());
    let practitioners = system.resources.iter().filter(|r| r["resourceType"] == "Practitioner").count();
    assert!(practitioners > 0, "supporting resources are exported (once each)");

    // Group level: the roster's members only, audited once each.
    let roster: Vec<String> = ["pt-10001", "pt-10004", "pt-10005"].iter().map(|p| gw.patient_id("ehr", p)).collect();
    let group = export(&gw, "Group/north-roster/$export", NORTH).await;
    assert_same(&group.resources, &everything(&gw, &roster, NORTH).await);
    let exported: Vec<String> = group
        .resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = roster.clone();
    sorted.sort();
    let mut exported_sorted = exported.clone();
    exported_sorted.sort();
    assert_eq!(exported_sorted, sorted);
    let audits = export_audits(&gw.database_url, &group.job).await;
    assert_eq!(audits, roster.iter().map(|p| (p.clone(), 1)).collect::<BTreeMap<_, _>>(), "one entry per patient");
    // Each file that went out is logged for every patient of the units that wrote it (the
    // entries queued together), each once: the Patient file holds the whole roster.
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    for output in group.manifest["output"].as_array().unwrap() {
        let url = output["url"].as_str().unwrap();
        let what = &url[url.find("/fhir/$export-file/").expect("a file URL")..];
        let mut logged: Vec<String> = sqlx::query_scalar(
            "SELECT patient_id FROM audit_events WHERE action = 'download' AND what = $1 AND outcome = 'success'",
        )
        .bind(what)
        .fetch_all(&store.pool)
        .await
        .unwrap();
        logged.sort();
        let before = logged.len();
        logged.dedup();
        assert_eq!(logged.len(), before, "{what}: a patient logged twice for one download");
        assert!(logged.iter().all(|p| roster.contains(p)), "{what}: {logged:?}");
        if output["type"] == "Patient" {
            assert_eq!(logged, sorted_roster(&roster), "{what}");
        }
    }

    // The access log shows the export to the patient's record (ids only).
    let (_, log) = gw.get(&format!("AuditEvent?patient={}", roster[1])).await;
    let entry = log["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|e| e["entity"][0]["what"]["display"].as_str().unwrap().contains(&group.job))
        .expect("the export is in the patient's access log");
    assert_eq!(entry["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");

    // Patient level with a patient's own token: her record only, with the withheld-notice.
    let maya = gw.patient_id("ehr", "pt-10007");
    let own = export(&gw, "Patient/$export", MAYA).await;
    assert_same(&own.resources, &everything(&gw, std::slice::from_ref(&maya), MAYA).await);
    assert!(own.resources.iter().filter(|r| r["resourceType"] == "Patient").all(|r| r["id"] == maya.as_str()));
    assert!(own.resources.iter().any(|r| r["id"] == "ehr.obs-10045"), "her pregnancy test is hers to see");
    assert!(own.errors.iter().any(|o| o["issue"][0]["diagnostics"].as_str().unwrap().contains("complete record")));

    // Her mother's proxy token: what a parent of a 16-year-old may see, and no more.
    let mother = export(&gw, "Patient/$export", MOTHER).await;
    assert_same(&mother.resources, &everything(&gw, std::slice::from_ref(&maya), MOTHER).await);
    assert!(mother.resources.iter().any(|r| r["resourceType"] == "Immunization"), "the limited record is there");
    for withheld in ["ehr.obs-10045", "ehr.cond-10013", "ehr.mrx-10007", "ehr.doc-10009"] {
        assert!(!mother.resources.iter().any(|r| r["id"] == withheld), "{withheld} leaked to the mother");
    }
    let text = serde_json::to_string(&mother.resources).unwrap();
    assert!(!text.contains("2106-3") && !text.contains("Z32.01"), "no trace of the pregnancy");

    let (_, metrics) = gw.get_with(&format!("{}/metrics", gw.origin), None, &[]).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains("portico_export_jobs{event=\"completed\"} 4"), "{metrics}");
    assert!(metrics.contains("portico_export_resources_written"), "{metrics}");
}

fn sorted_roster(roster: &[String]) -> Vec<String> {
    let mut sorted = roster.to_vec();
    sorted.sort();
    sorted
}

fn lab_category(r: &Value) -> bool {
    r["category"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .any(|c| c["code"] == "laboratory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_since_type_filter_and_patient_narrow_the_export() {
    let gw = start("").await;
    let all = all_patients(&gw);
    let union = everything(&gw, &all, SOUTH).await;
    let only = |f: &dyn Fn(&Value) -> bool| -> BTreeMap<String, Vec<Value>> {
        union.iter().filter(|(_, r)| f(&r[0])).map(|(k, v)| (k.clone(), v.clone())).collect()
    };

    let typed = export(&gw, "$export?_type=Observation,Condition&_outputFormat=application/fhir%2Bndjson", SOUTH).await;
    assert_same(&typed.resources, &only(&|r| r["resourceType"] == "Observation" || r["resourceType"] == "Condition"));

    let filtered =
        export(&gw, "$export?_type=Observation,Condition&_typeFilter=Observation%3Fcategory%3Dlaboratory", SOUTH).await;
    let expected =
        only(&|r| r["resourceType"] == "Condition" || (r["resourceType"] == "Observation" && lab_category(r)));
    assert!(expected.values().any(|r| r[0]["resourceType"] == "Observation"));
    assert_same(&filtered.resources, &expected);

    // _since: the middle of the lastUpdated values; older ones go, undated ones stay.
    let mut stamps: Vec<chrono::DateTime<chrono::FixedOffset>> = union
        .values()
        .map(|v| &v[0])
        .filter_map(|r| r["meta"]["lastUpdated"].as_str())
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap())
        .collect();
    stamps.sort();
    assert!(stamps.len() > 4, "fixtures carry lastUpdated");
    let since = stamps[stamps.len() / 2];
    let since_text = since.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let recent = export(&gw, &format!("$export?_since={}", since_text.replace('+', "%2B")), SOUTH).await;
    let expected = only(&|r| match r["meta"]["lastUpdated"].as_str() {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s).unwrap() >= since,
        None => true,
    });
    assert!(expected.len() < union.len());
    assert_same(&recent.resources, &expected);

    // POSTed patients at Patient level: just those records.
    let two = vec![gw.patient_id("ehr", "pt-10001"), gw.patient_id("ehr", "pt-10007")];
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": format!("Patient/{}", two[0])}},
        {"name": "patient", "valueReference": {"reference": format!("Patient/{}", two[1])}},
        {"name": "_outputFormat", "valueString": "ndjson"}
    ]});
    let (status, location, outcome) = kick_off_post(&gw, "Patient/$export", SOUTH, &params).await;
    assert_eq!(status, 202, "{outcome}");
    let posted = collect(&gw, &location.unwrap(), SOUTH).await;
    assert_same(&posted.resources, &everything(&gw, &two, SOUTH).await);
}

async fn jobs_in_store(gw: &Gateway) -> i64 {
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs").fetch_one(&store.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_kick_offs_are_refused_clearly_and_create_no_job() {
    let gw = start("").await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let refused: Vec<(&str, &str, Vec<(&str, &str)>, u16, &str)> = vec![
        ("$export", SOUTH, vec![FHIR_JSON], 400, "respond-async"),
        ("$export", SOUTH, vec![ASYNC, ("Accept", "text/csv")], 400, "Accept"),
        ("$export?_outputFormat=text/csv", SOUTH, vec![ASYNC, FHIR_JSON], 400, "_outputFormat"),
        ("$export?_type=Spaceship", SOUTH, vec![ASYNC, FHIR_JSON], 400, "Spaceship"),
        ("$export?_since=2025-01-01", SOUTH, vec![ASYNC, FHIR_JSON], 400, "_since"),
        ("$export?_typeFilter=Observation%3Fcolour%3Dblue", SOUTH, vec![ASYNC, FHIR_JSON], 400, "colour"),
        ("$export?_typeFilter=Observation", SOUTH, vec![ASYNC, FHIR_JSON], 400, "_typeFilter"),
        ("$export?_elements=id", SOUTH, vec![ASYNC, FHIR_JSON], 400, "_elements"),
        ("Patient/$export?patient=x", SOUTH, vec![ASYNC, FHIR_JSON], 400, "POST"),
        ("$export", MAYA, vec![ASYNC, FHIR_JSON], 403, "own record"),
        ("Group/north-roster/$export", MAYA, vec![ASYNC, FHIR_JSON], 403, "own record"),
        ("$export", RESEARCH, vec![ASYNC, FHIR_JSON], 403, "HRESCH"),
        ("Group/south-roster/$export", NORTH, vec![ASYNC, FHIR_JSON], 404, "no such Group"),
        ("Group/nobody/$export", NORTH, vec![ASYNC, FHIR_JSON], 404, "no such Group"),
        ("Group/nobody/$export", SOUTH, vec![ASYNC, FHIR_JSON], 404, "no such Group"),
    ];
    for (path, token, headers, want, needle) in refused {
        let (status, location, outcome) = kick_off(&gw, path, token, &headers).await;
        assert_eq!(status, want, "{path}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
        assert!(outcome.to_string().contains(needle), "{path}: {outcome}");
        assert!(location.is_none());
    }
    // Group refusals look alike whether the Group exists or not.
    let (_, _, other) = kick_off(&gw, "Group/south-roster/$export", NORTH, &[ASYNC, FHIR_JSON]).await;
    let (_, _, unknown) = kick_off(&gw, "Group/nobody/$export", NORTH, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(other, unknown);
    let not_hers = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": format!("Patient/{bob}")}}]});
    assert_eq!(kick_off_post(&gw, "Patient/$export", MAYA, &not_hers).await.0, 400);
    let not_member = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": format!("Patient/{}", gw.patient_id("ehr", "pt-10007"))}}]});
    assert_eq!(kick_off_post(&gw, "Group/north-roster/$export", NORTH, &not_member).await.0, 400);
    assert_eq!(kick_off_post(&gw, "$export", SOUTH, &json!({"resourceType": "Patient"})).await.0, 400);
    let resp = gw.http.get(format!("{}/$export", gw.fhir)).header(ASYNC.0, ASYNC.1).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(jobs_in_store(&gw).await, 0, "no refused kick-off left a job");
    assert!(
        !gw.dir.path().join("exports").exists()
            || std::fs::read_dir(gw.dir.path().join("exports")).unwrap().count() == 0
    );

    // Under lenient handling an unknown parameter is ignored, with a warning.
    let (status, location, outcome) =
        kick_off(&gw, "$export?_elements=id&_type=Patient", SOUTH, &[ASYNC, FHIR_JSON, ("Prefer", "handling=lenient")])
            .await;
    assert_eq!(status, 202, "{outcome}");
    assert!(outcome.to_string().contains("_elements"), "{outcome}");
    let done = collect(&gw, &location.unwrap(), SOUTH).await;
    assert!(done.resources.iter().all(|r| r["resourceType"] == "Patient"));
    assert_eq!(jobs_in_store(&gw).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partner_purpose_gets_what_the_policy_releases() {
    let gw = start("").await;
    let roster: Vec<String> = ["pt-10001", "pt-10004", "pt-10005"].iter().map(|p| gw.patient_id("ehr", p)).collect();
    let (danny, thomas) = (roster[1].clone(), roster[2].clone());
    // Part 2 records about a patient: from the behavioral program, pointing at them.
    let part2_of = |f: &Finished, patient: &str| -> usize {
        let reference = format!("Patient/{patient}\"");
        f.resources
            .iter()
            .filter(|r| r["resourceType"] != "Patient" && from_source(r, "behavioral"))
            .filter(|r| r.to_string().contains(&reference))
            .count()
    };

    // Treatment without consent: no Part 2 record leaves, and the export equals $everything.
    let treat = export(&gw, "Group/north-roster/$export", NORTH).await;
    assert_same(&treat.resources, &everything(&gw, &roster, NORTH).await);
    assert_eq!(part2_of(&treat, &danny), 0, "Danny's Part 2 records without consent");
    assert_eq!(part2_of(&treat, &thomas), 0);
    assert!(treat.resources.iter().any(|r| r["id"] == "ehr.imm-10004"), "Danny's EHR record is there");
    assert!(!treat.resources.iter().any(|r| r["id"] == "behavioral.7300012"), "F11.20 withheld");

    // Danny consents to HIE North for treatment, Part 2 included: his records, not Thomas's.
    let store = portico::store::Store::open(&gw.database_url, 2).await.unwrap();
    portico::policy::holds::PolicyLedger::new(store)
        .add_consent(&danny, "hie-north", &["TREAT".to_string()], true, "HIM desk")
        .await
        .unwrap();
    let consented = export(&gw, "Group/north-roster/$export", NORTH).await;
    assert_same(&consented.resources, &everything(&gw, &roster, NORTH).await);
    assert!(consented.resources.iter().any(|r| r["id"] == "behavioral.7300012"), "F11.20 with consent");
    assert!(part2_of(&consented, &danny) > 3);
    assert_eq!(part2_of(&consented, &thomas), 0, "Thomas has not consented");
    let notices: Vec<String> =
        consented.errors.iter().map(|o| o["issue"][0]["diagnostics"].as_str().unwrap().to_string()).collect();
    assert!(
        notices.iter().any(|n| n.contains("42 CFR part 2")),
        "the redisclosure notice travels with it: {notices:?}"
    );

    // Emergency treatment: Part 2 released for both, without consent.
    let emergency = export(&gw, "Group/north-roster/$export", EMERGENCY).await;
    assert_same(&emergency.resources, &everything(&gw, &roster, EMERGENCY).await);
    assert!(part2_of(&emergency, &danny) > 3 && part2_of(&emergency, &thomas) > 0);
    assert!(emergency.resources.iter().any(|r| r["id"] == "behavioral.7300030"), "Thomas's F10.20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_job_is_answered_like_no_job_at_all() {
    let gw = start("").await;
    let mine = export(&gw, "$export?_type=Patient", SOUTH).await;
    let status_url = format!("{}/$export-status/{}", gw.fhir, mine.job);
    let unknown_url = format!("{}/$export-status/{}", gw.fhir, "0".repeat(32));
    let file_url = mine.manifest["output"][0]["url"].as_str().unwrap().to_string();
    for token in [NORTH, MAYA] {
        let (s1, b1) = gw.get_with(&status_url, Some(token), &[]).await;
        let (s2, b2) = gw.get_with(&unknown_url, Some(token), &[]).await;
        assert_eq!((s1, &b1), (s2, &b2), "another client's job looks like no job");
        assert_eq!(s1, 404);
        assert_eq!(gw.get_with(&file_url, Some(token), &[]).await.0, 404);
        let del = gw.http.delete(&status_url).bearer_auth(token).send().await.unwrap();
        assert_eq!(del.status(), 404);
    }
    assert_eq!(gw.get_with(&file_url, None, &[]).await.0, 401, "files need the bearer token");
    assert_eq!(gw.get_with(&status_url, None, &[]).await.0, 401);
    // Still there for its owner, untouched.
    let mut patients = 0;
    for o in mine.manifest["output"].as_array().unwrap() {
        patients += download(&gw, o["url"].as_str().unwrap(), SOUTH).await.len();
    }
    assert_eq!(patients, all_patients(&gw).len());
    let traversal = format!("{}/$export-file/{}/..%2F..%2Fportico.db", gw.fhir, mine.job);
    assert_eq!(gw.get_with(&traversal, Some(SOUTH), &[]).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_running_jobs_answer_429() {
    // No workers here: jobs stay queued.
    let gw = start("workers = 0\nmax_jobs_per_client = 2").await;
    for _ in 0..2 {
        assert_eq!(kick_off(&gw, "$export", SOUTH, &[ASYNC, FHIR_JSON]).await.0, 202);
    }
    let resp =
        gw.http.get(format!("{}/$export", gw.fhir)).bearer_auth(SOUTH).header(ASYNC.0, ASYNC.1).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let outcome: Value = resp.json().await.unwrap();
    assert_eq!(outcome["issue"][0]["code"], "throttled");
    assert_eq!(jobs_in_store(&gw).await, 2);
    // Another client is not held back by them.
    let (status, location, _) = kick_off(&gw, "Group/north-roster/$export", NORTH, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202);
    // A queued job reports its progress.
    let resp = gw.http.get(location.unwrap()).bearer_auth(NORTH).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let progress = resp.headers()["x-progress"].to_str().unwrap().to_string();
    assert_eq!(progress, "0% (0/3 patients)", "the roster's three members");
}

/// The policy decisions kept for reuse and the resources they hold, and the records the
/// record cache holds, as `/metrics` shows them.
async fn kept_decisions(gw: &Gateway) -> (u64, u64, u64) {
    let [decisions, resources, records] = gw
        .metric_values([
            "portico_kept_decisions{measure=\"decisions\"}",
            "portico_kept_decisions{measure=\"resources\"}",
            "portico_cached_records",
        ])
        .await;
    (decisions, resources, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_keeps_no_decisions_so_its_memory_does_not_follow_the_population() {
    let gw = start("").await;
    let all = all_patients(&gw);
    let system = export(&gw, "$export", SOUTH).await;
    assert!(system.resources.iter().filter(|r| r["resourceType"] == "Patient").count() == all.len());
    // Each record was read once for the export: neither it nor its decision is held afterwards.
    assert_eq!(kept_decisions(&gw).await, (0, 0, 0), "an export keeps nothing");
    // An app's read is kept for the requests that follow it.
    let (status, _) = gw.get_with(&format!("Patient/{}/$everything", all[0]), Some(SOUTH), &[]).await;
    assert_eq!(status, 200);
    let (decisions, resources, records) = kept_decisions(&gw).await;
    assert_eq!((decisions, records), (1, 1));
    assert!(resources > 1, "{resources}");
    // A record already cached is used by the next export, and stays; the export's others do not.
    // (the cached record's resources are copied into its release, the others' moved: the
    // files are the same either way)
    let again = export(&gw, "$export", SOUTH).await;
    // A clinician or clinic many records share is written once per job, from whichever record
    // claims it first, so its provenance tags may name the systems of either: its id is compared.
    let shared = portico::fhir::SUPPORTING_TYPES;
    let line = |r: &Value| match r["resourceType"].as_str() {
        Some(t) if shared.contains(&t) => format!("{t}/{}", r["id"]),
        _ => r.to_string(),
    };
    let lines = |rs: &[Value]| rs.iter().map(line).collect::<std::collections::BTreeSet<_>>();
    let (first, second) = (lines(&system.resources), lines(&again.resources));
    let only_first: Vec<_> = first.difference(&second).collect();
    let only_second: Vec<_> = second.difference(&first).collect();
    assert!(only_first.is_empty() && only_second.is_empty(), "{only_first:#?}\n{only_second:#?}");
    assert_eq!(again.resources.len(), system.resources.len());
    assert_eq!(kept_decisions(&gw).await.2, 1, "the export cached none of the records it read");
}
