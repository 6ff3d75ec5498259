//! The `portico` binary as an operator runs it: `check-config` on good and broken files,
//! `simulate` as a stand-alone hospital system, `serve` until SIGTERM, and `patients`.
//! Every child process is killed when its test ends, pass or fail.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[test]
fn check_config_accepts_the_demo_config() {
    let out = run(&["check-config", "config/portico.toml"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("config/portico.toml: ok (4 sources)"), "{}", text(&out.stdout));
    // Without FILE it checks the one shared --config, given before or after the subcommand,
    // or from PORTICO_CONFIG.
    for (args, env) in [
        (&["check-config", "--config", "config/portico.toml"][..], &[][..]),
        (&["--config", "config/portico.toml", "check-config"][..], &[][..]),
        (&["check-config"][..], &[("PORTICO_CONFIG", "config/portico.toml")][..]),
    ] {
        let out = run(args, env);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("config/portico.toml: ok (4 sources)"), "{args:?}: {}", text(&out.stdout));
    }
}

#[test]
fn check_config_names_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let source = "[[sources]]\nname = \"ehr\"\nkind = \"fhir\"\nurl = \"http://127.0.0.1:9/fhir\"\n";
    let good = dir.path().join("good.toml");
    std::fs::write(&good, format!("[server]\nlisten = \"127.0.0.1:8080\"\n{source}")).unwrap();
    let out = run(&["check-config", good.to_str().unwrap()], &[]);
    assert!(out.status.success(), "the base of every broken case is valid: {}", text(&out.stderr));

    // (case, file text, environment, key, what the message must say)
    let cases: &[Case] = &[
        (
            "unknown-key",
            format!("[server]\nlisen = \"127.0.0.1:8080\"\n{source}"),
            &[],
            "server.lisen",
            &["unknown field `lisen`"],
        ),
        ("no-url", "[[sources]]\nname = \"ehr\"\nkind = \"fhir\"\n".into(), &[], "sources[0].url", &["is required"]),
        (
            "duration",
            format!("{source}request_timeout = \"5 parsecs\"\n"),
            &[],
            "sources[0].request_timeout",
            &["`5 parsecs` is not a duration"],
        ),
        ("syntax", format!("[server\nlisten = 1\n{source}"), &[], "(syntax)", &["line 1"]),
        (
            "dev-token",
            format!("[server]\nlisten = \"0.0.0.0:8080\"\ndev_token = \"{TOKEN}\"\n{source}"),
            &[],
            "server.dev_token",
            &["loopback", "0.0.0.0:8080"],
        ),
        (
            "no-folder",
            "[[sources]]\nname = \"lab\"\nkind = \"files\"\npath = \"no-such-folder\"\n".into(),
            &[],
            "sources[0].path",
            &["no-such-folder is not a folder"],
        ),
        (
            "client",
            format!("{source}[[auth.clients]]\nclient_id = \"a\"\nname = \"A\"\nkind = \"partner\"\nallowed_scopes = \"openid\"\n"),
            &[],
            "auth.clients[0].kind",
            &["`partner` is not a client kind"],
        ),
        (
            "oidc",
            format!("{source}[auth.oidc]\nissuer = \"https://id.example.org\"\nclient_id = \"portico\"\nclient_secret = {{ env = \"PORTICO_TEST_UNSET_OIDC_SECRET\" }}\n"),
            &[],
            "auth.oidc.client_secret",
            &["PORTICO_TEST_UNSET_OIDC_SECRET is not set"],
        ),
        (
            "env",
            format!("[server]\nlisten = \"127.0.0.1:8080\"\n{source}"),
            &[("PORTICO_SERVER__LISTEN", "nonsense")],
            "server.listen",
            &["`nonsense` is not an address"],
        ),
    ];
    for (name, body, env, key, wanted) in cases {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = run(&["check-config", file.to_str().unwrap()], env);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted a broken config");
        assert!(!text(&out.stdout).contains("ok"), "{name}: {}", text(&out.stdout));
        assert!(err.contains(&format!("{}: {key}: ", file.display())), "{name}: file and key `{key}` not named: {err}");
        for w in *wanted {
            assert!(err.contains(w), "{name}: `{w}` missing from: {err}");
        }
    }
    let missing = dir.path().join("absent.toml");
    let out = run(&["check-config", missing.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("absent.toml: cannot read"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn simulate_serves_a_fixture_folder_behind_client_credentials() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let anchor = fixture_anchor();
    let args = [
        "simulate",
        "--source",
        "fixtures/lab",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--shift-dates-from",
        &anchor,
        "--require-client-credentials",
        "app:s3cret",
        "--page-size",
        "5",
    ];
    let mut child = spawn(&args, dir.path());
    let http = reqwest::Client::new();
    let metadata = wait_ok(&mut child, &format!("{base}/fhir/metadata")).await;
    assert_eq!(metadata["resourceType"], "CapabilityStatement");

    let r = http.get(format!("{base}/fhir/Patient")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token, no data");
    let r = http.get(format!("{base}/fhir/Patient")).bearer_auth("made-up").send().await.unwrap();
    assert_eq!(r.status(), 401, "a token it did not issue");
    let token = |secret: &str| {
        http.post(format!("{base}/token"))
            .basic_auth("app", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let refused = token("wrong").await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_client");
    let granted: Value = token("s3cret").await.unwrap().json().await.unwrap();
    let access = granted["access_token"].as_str().expect("an access token").to_string();

    let store = fixture_store("lab");
    let all: BTreeSet<String> =
        store.of_type("Patient").iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert!(all.len() > 5, "the lab fixture holds more than one page of patients");
    let mut next = Some(format!("{base}/fhir/Patient?_count=5"));
    let (mut seen, mut pages) = (BTreeSet::new(), 0);
    while let Some(url) = next.take() {
        let r = http.get(&url).bearer_auth(&access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let bundle: Value = r.json().await.unwrap();
        pages += 1;
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"].as_u64(), Some(all.len() as u64));
        let entries = bundle["entry"].as_array().unwrap();
        assert!(entries.len() <= 5, "page size 5 is the maximum");
        for e in entries {
            let p = &e["resource"];
            // Served as loaded with dates shifted from the anchor (lastUpdated, birthDate …).
            assert_eq!(Some(p), store.get("Patient", p["id"].as_str().unwrap()), "{p}");
            assert!(seen.insert(p["id"].as_str().unwrap().to_string()), "served twice: {p}");
        }
        if pages == 1 {
            assert_eq!(entries.len(), 5);
            assert!(link(&bundle, "next").is_some(), "more patients than fit a page: a next link");
        }
        next = link(&bundle, "next");
    }
    assert_eq!(seen, all);
    let r = http.get(format!("{base}/fhir/Patient?_count=50")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["entry"].as_array().unwrap().len(),
        5,
        "_count is capped at --page-size"
    );
    drop(child);

    for (flag, value, message) in [
        ("--fail-rate", "2", "--fail-rate 2 must be between 0 and 1"),
        ("--require-client-credentials", "nocolon", "ID:SECRET"),
    ] {
        let out = run(
            &["simulate", "--source", "fixtures/lab", "--listen", &format!("127.0.0.1:{}", free_port()), flag, value],
            &[],
        );
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    }
}

#[tokio::test]
async fn serve_answers_then_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_files_config(dir.path());
    let listed = patients_json(&config);
    let busiest =
        listed["links"].as_array().unwrap().iter().max_by_key(|l| l["members"].as_array().unwrap().len()).unwrap();
    let gid = busiest["gateway_id"].as_str().unwrap().to_string();

    let port = free_port();
    let mut child = spawn(&["serve", "--config", &config, "--listen", &format!("127.0.0.1:{port}")], dir.path());
    let ready = wait_ok(&mut child, &format!("http://127.0.0.1:{port}/health/ready")).await;
    assert_eq!(ready["sources"].as_array().unwrap().len(), 4, "{ready}");

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/fhir/Patient/{gid}/$everything");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let r = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bundle: Value = r.json().await.unwrap();
    let patient = bundle["entry"].as_array().unwrap().iter().find(|e| e["resource"]["resourceType"] == "Patient");
    assert_eq!(
        patient.map(|e| &e["resource"]["id"]),
        Some(&Value::from(gid.clone())),
        "ids from `patients` hold in `serve`"
    );
    let tags: BTreeSet<String> =
        bundle["entry"].as_array().unwrap().iter().flat_map(|e| source_tags(&e["resource"])).collect();
    let members: BTreeSet<String> =
        busiest["members"].as_array().unwrap().iter().map(|m| m["source"].as_str().unwrap().to_string()).collect();
    assert_eq!(tags, members, "every linked system contributes to the record");

    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "exit after SIGTERM: {status}; log:\n{}", child.log());
    assert!(child.log().contains("shutting down"), "{}", child.log());
}

/// SIGTERM while a request is being answered: the answer is finished and complete, then
/// the process exits cleanly.
#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_files_config(dir.path());
    // The EHR answers slowly, so the request is still in flight when the signal comes.
    let slow = std::fs::read_to_string(&config).unwrap().replacen(
        "kind = \"files\"",
        "kind = \"simulated\"\nlatency = \"1500ms\"",
        1,
    );
    std::fs::write(&config, slow.replace("[database]", "[aggregate]\ndeadline = \"20s\"\n[database]")).unwrap();
    let gid = patients_json(&config)["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["members"].as_array().unwrap().iter().any(|m| m["source"] == "ehr"))
        .unwrap()["gateway_id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    let mut child = spawn(&["serve", "--config", &config, "--listen", &format!("127.0.0.1:{port}")], dir.path());
    wait_ok(&mut child, &format!("http://127.0.0.1:{port}/health/ready")).await;

    let url = format!("http://127.0.0.1:{port}/fhir/Patient/{gid}/$everything?_count=500");
    let request = tokio::spawn(async move { reqwest::Client::new().get(&url).bearer_auth(TOKEN).send().await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let response = request.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    let bundle: Value = response.json().await.unwrap();
    let from_ehr = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| source_tags(&e["resource"]).contains(&"ehr".to_string()))
        .count();
    assert!(from_ehr > 1, "the slow system's part is there: {bundle}");
    assert!(
        !bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["search"]["mode"] == "outcome" && e["resource"].to_string().contains("may be missing")),
        "complete, not cut short"
    );
    let status = child.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "exit after SIGTERM: {status}; log:\n{}", child.log());
}

#[test]
fn serve_refuses_a_dev_token_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_files_config(dir.path());
    let out = run(&["serve", "--config", &config, "--listen", "0.0.0.0:0"], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("server.dev_token") && err.contains("loopback"), "{err}");
}

#[test]
fn patients_lists_links_with_reasons_and_possible_matches() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_files_config(dir.path());
    let listed = patients_json(&config);
    let links = listed["links"].as_array().expect("links");
    let mut members = BTreeSet::new();
    let mut link_of = std::collections::BTreeMap::new();
    for l in links {
        let gid = l["gateway_id"].as_str().expect("gateway_id");
        assert!(gid.starts_with("pt-"), "{l}");
        let ms = l["members"].as_array().unwrap();
        assert!(!ms.is_empty(), "{l}");
        for m in ms {
            assert!(!m["reason"].as_str().expect("reason").is_empty(), "{m}");
            let key = (m["source"].as_str().unwrap().to_string(), m["source_patient_id"].as_str().unwrap().to_string());
            assert!(members.insert(key.clone()), "{key:?} is in two links");
            link_of.insert(key, gid.to_string());
        }
    }
    let expected: BTreeSet<(String, String)> = ["ehr", "lab", "imaging", "behavioral"]
        .iter()
        .flat_map(|s| {
            let store = portico::sources::files::ResourceStore::load(&fixtures(s), 0).unwrap();
            store
                .of_type("Patient")
                .iter()
                .map(|p| (s.to_string(), p["id"].as_str().unwrap().to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(members, expected, "every fixture patient record is in exactly one link");
    assert!(links.len() < members.len(), "some records are linked together");

    let possible = listed["possible_matches"].as_array().expect("possible_matches");
    assert!(!possible.is_empty(), "the fixtures hold at least one possible match");
    for p in possible {
        let side = |k: &str| (p[k][0].as_str().unwrap().to_string(), p[k][1].as_str().unwrap().to_string());
        assert!(!p["reason"].as_str().unwrap().is_empty());
        assert_ne!(link_of[&side("a")], link_of[&side("b")], "a possible match is never linked: {p}");
    }

    let out = run(&["patients", "--config", &config], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("Possible matches"), "{printed}");
    assert!(printed.contains(&format!("{} people from {} source records", links.len(), members.len())), "{printed}");
    for l in links {
        assert!(printed.contains(l["gateway_id"].as_str().unwrap()), "gateway ids are stable between runs: {printed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_report_counts_each_category_lists_gaps_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_files_config(dir.path());
    let links = patients_json(&config)["links"].as_array().unwrap().clone();
    let out = run(&["labels", "report", "--config", &config, "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"].as_u64().unwrap() as usize, links.len(), "every person in the index");
    // The fixtures hold each kind of sensitive care; every category is counted by type.
    for category in ["HIV", "ETH", "MH", "PREGNANT", "SEX", "STD", "GDIS", "SDV"] {
        let c = &report["categories"][category];
        let n = c["resources"].as_u64().unwrap_or(0);
        assert!(n > 0, "{category} is counted: {report}");
        let by_type: u64 = c["by_type"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(by_type, n, "{category}: the per-type counts add up");
    }
    // Gaps: unlabelled items whose words ask for a look — the Part 2 clinic's counseling
    // visits carry only 42CFRPart2, no sensitivity code.
    let gaps = report["gaps"].as_array().unwrap();
    assert!(gaps.iter().any(|g| g["text"] == "Group counseling"), "{gaps:?}");
    for g in gaps {
        let (t, m) = (g["text"].as_str().unwrap().to_lowercase(), g["matched"].as_str().unwrap().to_lowercase());
        assert!(t.contains(&m), "{g}");
    }
    // The text form says the same.
    let out = run(&["labels", "report", "--config", &config], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains(&format!("{} records", links.len())) && printed.contains("to review:"), "{printed}");
    // Each record read is in the access log as a staff action.
    let store = portico::store::Store::open(&format!("sqlite://{}/portico.db", dir.path().display()), 1).await.unwrap();
    let audit = portico::audit::AuditLog::new(store);
    for l in &links {
        let id = l["gateway_id"].as_str().unwrap();
        assert!(audit.has_entry(id, "labels-report", "portico labels report").await.unwrap(), "{id} is audited");
    }
    // Bad input: a config that does not load reports what is wrong and writes nothing.
    let out = run(&["labels", "report", "--config", "/nonexistent/portico.toml"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/portico.toml"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn terminology_import_expands_rules_that_policy_check_then_loads() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("tests/data/terminology");
    std::fs::copy(root().join("config/policy.toml"), dir.path().join("policy.toml")).unwrap();
    std::fs::copy(data.join("labels.toml"), dir.path().join("labels.toml")).unwrap();
    let policy = dir.path().join("policy.toml");
    let labels = dir.path().join("labels.toml");
    let out_file = dir.path().join("terminology/expansions.toml");
    let (policy, labels, out_file) = (policy.to_str().unwrap(), labels.to_str().unwrap(), out_file.to_str().unwrap());

    // labels.toml imports a file not written yet: policy check names it.
    let out = run(&["policy", "check", policy], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&format!("{labels}: imports[0]: cannot read")), "{}", text(&out.stderr));

    let import = |rrf: &str| {
        run(
            &[
                "terminology",
                "import",
                "--labels",
                labels,
                "--snomed-rf2",
                "tests/data/terminology/snomed",
                "--rxnorm-rrf",
                rrf,
                "--out",
                out_file,
            ],
            &[],
        )
    };
    let out = import("tests/data/terminology/rxnorm/rrf");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("{out_file}: 3 rules expanded, 6 SNOMED CT and 15 RxNorm codes"),
        "hiv: 5 SNOMED CT descendants, 10 RxNorm products; mh: 1; sud: otherol and its 4"
    );
    let warnings: Vec<String> =
        text(&out.stderr).lines().filter(|l| l.starts_with("warning: ")).map(String::from).collect();
    assert_eq!(warnings.len(), 3, "165816005 absent, 990007005 retired, nosuchdrug unknown: {warnings:?}");
    let written = std::fs::read_to_string(out_file).unwrap();
    assert!(written.contains("[[label_expansions]]\nrule = \"hiv\"\nsnomed = [\n  \"990001006\", #"), "{written}");

    let out = run(&["policy", "check", policy], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (3 label rules"), "{}", text(&out.stdout));

    // The policy as the gateway loads it labels a descendant concept and a branded product.
    let loaded = portico::policy::PolicyConfig::load(Path::new(policy)).unwrap();
    let labeler = portico::label::Labeler::new(&loaded.label_rules).unwrap();
    let mut record = vec![
        serde_json::json!({"resourceType": "Condition", "id": "c1",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "990005002"}]}}),
        serde_json::json!({"resourceType": "MedicationRequest", "id": "m1",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "900055"}]}}),
    ];
    let why = labeler.label_record(&mut record, &Default::default());
    assert_eq!(why["Condition/c1"], ["hiv"]);
    assert_eq!(why["MedicationRequest/m1"], ["hiv"], "a branded pack of the ingredient");
    for r in &record {
        assert!(portico::label::labels_of(r).contains("HIV"), "{r}");
    }

    // A malformed row: the error names the file and the line, and the file stays as it was.
    let bad = dir.path().join("rrf");
    std::fs::create_dir(&bad).unwrap();
    std::fs::copy(data.join("rxnorm/rrf/RXNREL.RRF"), bad.join("RXNREL.RRF")).unwrap();
    let conso = std::fs::read_to_string(data.join("rxnorm/rrf/RXNCONSO.RRF")).unwrap();
    let mut lines: Vec<&str> = conso.lines().collect();
    lines[4] = "900020|ENG|SCD|examplavir 50 MG Oral Tablet|";
    std::fs::write(bad.join("RXNCONSO.RRF"), lines.join("\n")).unwrap();
    let out = import(bad.to_str().unwrap());
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:5: 5 |-separated fields, expected 18", bad.join("RXNCONSO.RRF").display())),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(out_file).unwrap(), written, "nothing written");
}

// ---- helpers ----

type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], &'a str, &'a [&'a str]);

/// The binary, run from the repository root, without the caller's `PORTICO_…` variables.
fn portico(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.args(args).current_dir(root()).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PORTICO_")) {
        cmd.env_remove(k);
    }
    cmd.env(KEK_ENV, TEST_KEK);
    cmd.envs(env.iter().copied());
    cmd
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    portico(args, env).output().expect("portico runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `portico` process, killed when dropped. Its stderr goes to a log file.
struct Child(std::process::Child, std::path::PathBuf);

impl Child {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
    async fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "still running after {limit:?}; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], dir: &Path) -> Child {
    let log = dir.join(format!("portico-{}.log", args[0]));
    let file = std::fs::File::create(&log).unwrap();
    let child = portico(args, &[]).stdout(Stdio::null()).stderr(file).spawn().expect("portico starts");
    Child(child, log)
}

/// Polls `url` until it answers 200 (the process is starting), failing if the process dies.
async fn wait_ok(child: &mut Child, url: &str) -> Value {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status() == 200 {
                return r.json().await.expect("JSON");
            }
        }
        assert!(child.0.try_wait().unwrap().is_none(), "portico exited; log:\n{}", child.log());
        assert!(tokio::time::Instant::now() < deadline, "{url} did not answer 200; log:\n{}", child.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A config over the four fixture folders read as files, with its SQLite file in `dir`.
fn write_files_config(dir: &Path) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\ndev_token = \"{TOKEN}\"\n[database]\nurl = \"sqlite://{}/portico.db\"\n",
        dir.display()
    );
    for s in ["ehr", "lab", "imaging", "behavioral"] {
        let path = fixtures(s);
        let anchor = fixture_anchor();
        text += &format!(
            "[[sources]]\nname = \"{s}\"\ndisplay = \"{}\"\nkind = \"files\"\npath = \"{}\"\nshift_dates_from = \"{anchor}\"\n",
            display_of(s),
            path.display()
        );
    }
    let file = dir.join("portico.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

fn patients_json(config: &str) -> Value {
    let out = run(&["patients", "--config", config, "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}
