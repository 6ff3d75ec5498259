//! The privacy-policy conformance matrix (conformance/policy/cases.toml) run through the
//! HTTP API: for every case, read, search and `$everything` with a token standing for the
//! case's viewer must show or withhold the resource, and `/admin/policy/explain` must give
//! the case's rule. One gateway per distinct setup (policy variant, jurisdiction, consent,
//! preference, release) over the four fixture folders as file sources.
//! Prints `policy matrix: N passed, M failed`; cases marked `known_bug` run but do not count.

use crate::common::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

const CASES: &str = "conformance/policy/cases.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    case: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    scenario: String,
    viewer: String,
    scopes: Option<String>,
    patient: String,
    resource: String,
    expect: Expect,
    because: String,
    #[serde(default)]
    setup: Setup,
    /// Label codes the delivered resource must carry (read and search).
    #[serde(default)]
    carries: Vec<String>,
    /// Label codes it must not carry.
    #[serde(default)]
    lacks: Vec<String>,
    /// `redisclosure`: search and `$everything` carry the 42 CFR §2.32 notice.
    notice: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
    known_bug: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Shown,
    Withheld,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Setup {
    policy: Option<String>,
    jurisdiction: Option<String>,
    consent: Option<ConsentSetup>,
    preference: Vec<String>,
    released: Option<ReleasedSetup>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConsentSetup {
    partner: String,
    purposes: Vec<String>,
    #[serde(default)]
    part2: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
enum ReleasedSetup {
    /// `true`: release the case's own resource.
    This(bool),
    /// `source/Type/id` of the resource to release.
    Resource(String),
}

/// Policy variants: text changes to config/policy.toml, each asserted to apply.
const VARIANTS: &[&str] = &["default", "holds", "holds-critical-7d", "mh-not-minor-consented", "research-allowed"];
/// What `because` of a withheld case starts with: rules, and pseudo-rules for whole answers.
const WITHHOLDING: &str = "exclusion: minors: hold: part2:no-consent scope: denied:no-access denied:purpose record:";
const RELEASING: &[&str] = &["", "part2:released:consent", "part2:released:emergency"];

fn load_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(root().join(CASES)).expect("cases file");
    toml::from_str::<CasesFile>(&text).unwrap_or_else(|e| panic!("{CASES}: {e}")).case
}

fn split_resource(r: &str) -> Option<(&str, &str, &str)> {
    let mut parts = r.splitn(3, '/');
    let (s, t, id) = (parts.next()?, parts.next()?, parts.next()?);
    (!s.is_empty() && t.starts_with(|c: char| c.is_ascii_uppercase()) && !id.is_empty()).then_some((s, t, id))
}

/// Problems with the table itself (not with the gateway).
fn validate(cases: &[Case]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for c in cases {
        let released = match &c.setup.released {
            Some(ReleasedSetup::Resource(r)) => split_resource(r).is_some(),
            _ => true,
        };
        let fits = match c.expect {
            Expect::Withheld => WITHHOLDING.split(' ').any(|w| c.because.starts_with(w)),
            Expect::Shown => RELEASING.contains(&c.because.as_str()),
        };
        let person = c.scenario.get(..4).is_some_and(|p| p.starts_with('P') && p[1..3].parse::<u8>().is_ok());
        for (bad, what) in [
            (!ids.insert(c.id.clone()), "the id is used twice".to_string()),
            (!person, format!("scenario `{}` must start with the person, e.g. `P07 Maya / …`", c.scenario)),
            (c.patient.split_once('/').is_none(), format!("patient `{}` is not source/source-id", c.patient)),
            (split_resource(&c.resource).is_none(), format!("resource `{}` is not source/Type/id", c.resource)),
            (
                !fits,
                format!(
                    "`because = {:?}` does not fit `expect = {:?}` ({WITHHOLDING} | {RELEASING:?})",
                    c.because, c.expect
                ),
            ),
            (
                c.setup.policy.as_ref().is_some_and(|v| !VARIANTS.contains(&&**v)),
                format!("policy: one of {VARIANTS:?}"),
            ),
            (!released, "setup.released is true or source/Type/id".into()),
            (c.notice.as_deref().is_some_and(|n| n != "redisclosure"), "notice is `redisclosure`".into()),
            (c.viewer == "staff" && c.scopes.is_some(), "staff act without app scopes".into()),
        ] {
            if bad {
                problems.push(format!("{CASES}: case `{}`: {what}", c.id));
            }
        }
        if let Err(e) = portico::policy::Viewer::from_spec(&c.viewer, c.scopes.as_deref()) {
            problems.push(format!("{CASES}: case `{}`: viewer: {e}", c.id));
        }
    }
    problems
}

fn replace_once(text: &str, from: &str, to: &str, what: &str) -> String {
    assert!(text.matches(from).count() == 1, "policy variant `{what}`: `{from}` must occur once in config/policy.toml");
    text.replacen(from, to, 1)
}

/// Writes the policy variant (with the jurisdiction in force) into `dir`; returns its path.
fn write_policy(dir: &Path, variant: &str, jurisdiction: Option<&str>) -> PathBuf {
    let config = root().join("config");
    let mut text = std::fs::read_to_string(config.join("policy.toml")).unwrap();
    let labels = format!("labels = {:?}", config.join("labels.toml").display().to_string());
    text = replace_once(&text, "labels = \"labels.toml\"", &labels, variant);
    let example = std::fs::read_to_string(config.join("examples/hold-rules.toml")).unwrap();
    let holds = || example[example.find("\nrules = [").expect("hold-rules.toml has rules = [")..].to_string();
    text = match variant {
        "default" => text,
        "holds" => replace_once(&text, "\nrules = []", &holds(), variant),
        "holds-critical-7d" => replace_once(
            &text,
            "\nrules = []",
            &replace_once(&holds(), "max = \"24h\"", "max = \"7d\"", variant),
            variant,
        ),
        "mh-not-minor-consented" => replace_once(&text, "\"MH\", ", "", variant),
        "research-allowed" => {
            replace_once(&text, "= [\"TREAT\", \"ETREAT\"", "= [\"HRESCH\", \"TREAT\", \"ETREAT\"", variant)
        }
        other => panic!("unknown policy variant {other}"),
    };
    if let Some(j) = jurisdiction {
        text = replace_once(&text, "jurisdiction = \"default\"", &format!("jurisdiction = {j:?}"), variant);
    }
    let path = dir.join(format!("policy-{variant}-{}.toml", jurisdiction.unwrap_or("default")));
    std::fs::write(&path, text).unwrap();
    portico::policy::PolicyConfig::load(&path).unwrap_or_else(|e| panic!("policy variant {variant}: {e}"));
    path
}

/// What a gateway is started and prepared with; cases of one group share a gateway.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    policy: String,
    jurisdiction: Option<String>,
    /// Set only when the setup writes something about the patient.
    patient: Option<String>,
    consent: Option<ConsentSetup>,
    preference: Vec<String>,
    released: Option<String>,
}

fn group_of(c: &Case) -> Group {
    let s = &c.setup;
    let released = match &s.released {
        Some(ReleasedSetup::This(true)) => Some(c.resource.clone()),
        Some(ReleasedSetup::Resource(r)) => Some(r.clone()),
        _ => None,
    };
    let mutates = s.consent.is_some() || !s.preference.is_empty() || released.is_some();
    Group {
        policy: s.policy.clone().unwrap_or_else(|| "default".into()),
        jurisdiction: s.jurisdiction.clone(),
        patient: mutates.then(|| c.patient.clone()),
        consent: s.consent.clone(),
        preference: s.preference.clone(),
        released,
    }
}

/// A token stands for (viewer, scopes, patient — for patient-facing viewers).
type TokenKey = (String, Option<String>, Option<String>);

fn token_key(c: &Case) -> TokenKey {
    let facing = c.viewer == "patient" || c.viewer.starts_with("proxy:");
    (c.viewer.clone(), c.scopes.clone(), facing.then(|| c.patient.clone()))
}

/// The gateway's config body: dev tokens, the policy file, the fixture folders as files.
fn config_body(tokens: &BTreeMap<TokenKey, String>, policy: &Path) -> String {
    let mut out = String::new();
    for ((viewer, scopes, patient), token) in tokens {
        out += &format!("[[server.dev_tokens]]\ntoken = {token:?}\nviewer = {viewer:?}\n");
        out += &patient.as_ref().map(|p| format!("patient = {p:?}\n")).unwrap_or_default();
        out += &scopes.as_ref().map(|s| format!("scopes = {s:?}\n")).unwrap_or_default();
    }
    out += &format!("[policy]\nfile = {:?}\n", policy.display().to_string());
    out += &fixture_file_sources();
    out
}

/// Every page of a searchset from `path` with `token`: (first status, resources, outcomes).
async fn walk(gw: &Gateway, path: &str, token: &str) -> (u16, Vec<Value>, Vec<Value>) {
    let (mut resources, mut outcomes, mut first) = (Vec::new(), Vec::new(), None);
    let mut next = Some(path.to_string());
    while let Some(p) = next.take() {
        let (status, bundle) = gw.get_with(&p, Some(token), &[]).await;
        if *first.get_or_insert(status) != 200 {
            break;
        }
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let list = if e["search"]["mode"] == "outcome" { &mut outcomes } else { &mut resources };
            list.push(e["resource"].clone());
        }
        next = link(&bundle, "next");
        assert!(resources.len() + outcomes.len() < 5000, "paging does not end: {path}");
    }
    (first.unwrap_or(0), resources, outcomes)
}

/// One gateway under test, with `$everything`, explanations and resolved ids cached.
struct Run<'a> {
    gw: &'a Gateway,
    cache: HashMap<String, (u16, Value, Vec<Value>)>,
}

impl Run<'_> {
    /// `$everything` (all pages) as (status, resources, outcomes).
    async fn everything(&mut self, token: &str, pid: &str) -> (u16, Value, Vec<Value>) {
        let k = format!("everything {token} {pid}");
        if !self.cache.contains_key(&k) {
            let (s, r, o) = walk(self.gw, &format!("Patient/{pid}/$everything?_count=40"), token).await;
            self.cache.insert(k.clone(), (s, Value::Array(r), o));
        }
        self.cache[&k].clone()
    }

    async fn explain(&mut self, viewer: &str, scopes: Option<&str>, pid: &str) -> (u16, Value) {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("patient", pid).append_pair("viewer", viewer);
        if let Some(s) = scopes {
            q.append_pair("scopes", s);
        }
        let url = format!("{}/admin/policy/explain?{}", self.gw.origin, q.finish());
        if !self.cache.contains_key(&url) {
            let (s, v) = self.gw.get_with(&url, Some(TOKEN), &[]).await;
            self.cache.insert(url.clone(), (s, v, vec![]));
        }
        let (s, v, _) = &self.cache[&url];
        (*s, v.clone())
    }

    /// Gateway `Type/id` of a fixture `source/Type/id`: a duplicate merged away answers
    /// under the kept copy's id, which staff's read reveals.
    async fn resolve(&mut self, resource: &str) -> Option<(String, String)> {
        let (source, t, id) = split_resource(resource)?;
        if t == "Patient" {
            return self.gw.index.gateway_id_of(source, id).await.unwrap().map(|p| (t.to_string(), p));
        }
        let (status, body) = self.gw.get(&format!("{t}/{source}.{id}")).await;
        (status == 200).then(|| (t.to_string(), body["id"].as_str().unwrap().to_string()))
    }
}

fn has_text(outcomes: &[Value], text: &str) -> bool {
    outcomes.iter().any(|o| o["issue"].as_array().into_iter().flatten().any(|i| i["diagnostics"] == text))
}

fn check_labels(c: &Case, r: &Value, path: &str, problems: &mut Vec<String>) {
    let labels: BTreeSet<&str> =
        r["meta"]["security"].as_array().into_iter().flatten().filter_map(|l| l["code"].as_str()).collect();
    let missing: Vec<&String> = c.carries.iter().filter(|l| !labels.contains(l.as_str())).collect();
    let extra: Vec<&String> = c.lacks.iter().filter(|l| labels.contains(l.as_str())).collect();
    if !missing.is_empty() || !extra.is_empty() {
        problems.push(format!("{path}: labels {labels:?}: missing {missing:?}, must not carry {extra:?}"));
    }
}

/// Runs one case; returns what is wrong (empty: passed).
async fn check(run: &mut Run<'_>, c: &Case, token: &str, redisclosure: &str) -> Vec<String> {
    let (source, sid) = c.patient.split_once('/').unwrap();
    let Some(pid) = run.gw.index.gateway_id_of(source, sid).await.unwrap() else {
        return vec![format!("{} is not indexed", c.patient)];
    };
    let Some((t, id)) = run.resolve(&c.resource).await else {
        return vec![format!("staff cannot read {}", c.resource)];
    };
    let (key, shown, because) = (format!("{t}/{id}"), c.expect == Expect::Shown, c.because.as_str());
    let denied = match because {
        "denied:no-access" => Some(404),
        "denied:purpose" => Some(403),
        _ => None,
    };
    let is_it = |r: &Value| r["resourceType"] == t.as_str() && r["id"] == id.as_str();
    let mut problems = Vec::new();

    // Explain: the decision and the rule.
    let (status, explained) = run.explain(&c.viewer, c.scopes.as_deref(), &pid).await;
    let entry = explained["resources"].as_array().into_iter().flatten().find(|e| e["resource"] == key.as_str());
    match (denied, entry) {
        (Some(want), _) if status != want => problems.push(format!("explain: status {status}, want {want}")),
        (Some(_), _) => {}
        _ if status != 200 => problems.push(format!("explain: status {status}: {explained}")),
        (None, Some(_)) if because == "record:not-in-record" => problems.push(format!("explain lists {key}")),
        (None, None) if because == "record:not-in-record" => {}
        (None, None) => problems.push(format!("explain does not list {key}")),
        (None, Some(e)) => {
            let rules: Vec<&str> = e["rules"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            let deciding: Vec<&&str> = rules.iter().filter(|r| !r.starts_with("label:") && **r != because).collect();
            if e["decision"] != if shown { "shown" } else { "withheld" } {
                problems.push(format!("explain: {} by {rules:?}", e["decision"]));
            } else if !because.is_empty() && !rules.contains(&because) {
                problems.push(format!("explain: rules {rules:?} do not include {because}"));
            } else if shown && !deciding.is_empty() {
                problems.push(format!("explain: shown, yet rules {deciding:?}"));
            }
        }
    }

    // An app's scopes that grant no read (or search) of this type at all refuse the request
    // outright (403, SMART insufficient scope); a category they do not grant just hides.
    let viewer = portico::policy::Viewer::from_spec(&c.viewer, c.scopes.as_deref()).expect("viewer spec");
    let refused = |i: portico::policy::Interaction| !shown && because == "scope:not-granted" && !viewer.permits(&t, i);

    // Read.
    let want = if refused(portico::policy::Interaction::Read) {
        403
    } else if shown {
        200
    } else {
        denied.unwrap_or(404)
    };
    let (status, body) = run.gw.get_with(&key, Some(token), &[]).await;
    if status != want {
        problems.push(format!("read {key}: status {status}, want {want}"));
    } else if shown && !is_it(&body) {
        problems.push(format!("read {key}: answered {}/{}", body["resourceType"], body["id"]));
    } else if shown {
        check_labels(c, &body, "read", &mut problems);
    }

    // Search (all pages), and its total.
    let search = if t == "Patient" { format!("Patient?_id={pid}") } else { format!("{t}?patient={pid}&_id={id}") };
    let (status, resources, outcomes) = walk(run.gw, &search, token).await;
    let want = if denied == Some(403) || refused(portico::policy::Interaction::Search) { 403 } else { 200 };
    let n = usize::from(shown);
    if status != want {
        problems.push(format!("search: status {status}, want {want}"));
    } else if status == 200 {
        let total = run.gw.get_with(&search, Some(token), &[]).await.1["total"].clone();
        if resources.len() != n || resources.iter().filter(|r| is_it(r)).count() != n || total != n {
            problems.push(format!(
                "search: {} entries ({}), total {total}, want {n}",
                resources.len(),
                keys(&resources).join(", ")
            ));
        }
        resources.iter().filter(|r| is_it(r)).for_each(|r| check_labels(c, r, "search", &mut problems));
        if c.notice.is_some() && !has_text(&outcomes, redisclosure) {
            problems.push("search: no redisclosure notice".into());
        }
    }

    // $everything, every page.
    let (status, resources, outcomes) = run.everything(token, &pid).await;
    let want = denied.unwrap_or(200);
    if status != want {
        problems.push(format!("$everything: status {status}, want {want}"));
    } else if status == 200 {
        let present = resources.as_array().unwrap().iter().any(is_it);
        if present != shown {
            problems.push(format!("$everything: {key} {}", if present { "present" } else { "absent" }));
        }
        if c.notice.is_some() && !has_text(&outcomes, redisclosure) {
            problems.push("$everything: no redisclosure notice".into());
        }
    }
    problems
}

/// Consent and preference through the store, releases through the admin API.
async fn apply_setup(gw: &Gateway, g: &Group) -> Result<(), String> {
    let Some((source, sid)) = g.patient.as_deref().and_then(|p| p.split_once('/')) else { return Ok(()) };
    let pid = gw.patient_id(source, sid);
    let e = |e: portico::store::StoreError| e.to_string();
    if g.consent.is_some() || !g.preference.is_empty() {
        let url = gw.database_url.clone();
        let ledger = portico::policy::holds::PolicyLedger::new(portico::store::Store::open(&url, 2).await.map_err(e)?);
        if let Some(c) = &g.consent {
            ledger.add_consent(&pid, &c.partner, &c.purposes, c.part2, "policy-matrix").await.map_err(e)?;
        }
        if !g.preference.is_empty() {
            ledger.set_preferences(&pid, &g.preference).await.map_err(e)?;
        }
    }
    if let Some((s, t, id)) = g.released.as_deref().and_then(split_resource) {
        let body = serde_json::json!({"patient": pid, "resource": format!("{t}/{s}.{id}"), "by": "Dr. Matrix"});
        let url = format!("{}/admin/holds/release", gw.origin);
        let resp = gw.http.post(url).bearer_auth(TOKEN).json(&body).send().await.map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("release {body}: {} {}", resp.status(), resp.text().await.unwrap_or_default()));
        }
    }
    Ok(())
}

/// Runs `cases`, one gateway per group; returns each case with what is wrong with it.
async fn run_matrix(cases: &[Case]) -> (Vec<(Case, Vec<String>)>, usize) {
    let redisclosure =
        portico::policy::PolicyConfig::load(&root().join("config/policy.toml")).unwrap().redisclosure_notice;
    let mut groups: Vec<(Group, Vec<&Case>)> = Vec::new();
    for c in cases {
        let g = group_of(c);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, list)) => list.push(c),
            None => groups.push((g, vec![c])),
        }
    }
    let policy_dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (n, (group, members)) in groups.iter().enumerate() {
        let mut tokens: BTreeMap<TokenKey, String> = BTreeMap::new();
        for c in members.iter().filter(|c| c.viewer != "staff") {
            let next = tokens.len();
            tokens.entry(token_key(c)).or_insert_with(|| format!("policy-matrix-{n:02}-{next:03}-token"));
        }
        let policy = write_policy(policy_dir.path(), &group.policy, group.jurisdiction.as_deref());
        let gw = Gateway::start(&config_body(&tokens, &policy)).await;
        let setup = apply_setup(&gw, group).await;
        let mut run = Run { gw: &gw, cache: HashMap::new() };
        for c in members {
            let token = if c.viewer == "staff" { TOKEN.to_string() } else { tokens[&token_key(c)].clone() };
            let problems = match &setup {
                Ok(()) => check(&mut run, c, &token, &redisclosure).await,
                Err(e) => vec![format!("setup: {e}")],
            };
            results.push(((*c).clone(), problems));
        }
        gw.stop().await;
    }
    (results, groups.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_matrix() {
    let started = std::time::Instant::now();
    let cases = load_cases();
    let problems = validate(&cases);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let (results, gateways) = run_matrix(&cases).await;

    let mut per_rule: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let mut per_scenario: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let (mut failures, mut bugs) = (Vec::new(), Vec::new());
    for (c, problems) in &results {
        let detail = format!("{} [{} as {}]:\n    {}", c.id, c.resource, c.viewer, problems.join("\n    "));
        if let Some(bug) = &c.known_bug {
            let state = if problems.is_empty() { "NOW PASSES: remove known_bug" } else { "still failing" };
            bugs.push(format!("  known bug, not counted ({state}): {bug}\n  {detail}"));
            continue;
        }
        let side = usize::from(c.expect == Expect::Withheld);
        let rule = if c.because.is_empty() { "(shown, no rule)" } else { &c.because };
        per_rule.entry(rule.to_string()).or_default()[side] += 1;
        per_scenario.entry(c.scenario.clone()).or_default()[side] += 1;
        if !problems.is_empty() {
            failures.push(detail);
        }
    }
    println!("cases per rule (shown / withheld):");
    per_rule.iter().for_each(|(rule, [s, w])| println!("  {rule:<40} {s:>3} / {w:>3}"));
    println!("cases per scenario (shown / withheld):");
    per_scenario.iter().for_each(|(scenario, [s, w])| println!("  {scenario:<58} {s:>3} / {w:>3}"));
    bugs.iter().for_each(|b| println!("{b}"));
    failures.iter().for_each(|f| println!("FAILED {f}"));
    let counted = results.len() - bugs.len();
    println!("{} cases, {gateways} gateways, {:.1}s", results.len(), started.elapsed().as_secs_f64());
    println!("policy matrix: {} passed, {} failed", counted - failures.len(), failures.len());
    if !bugs.is_empty() {
        println!("policy matrix: {} known bugs not counted", bugs.len());
    }
    let failed: Vec<&str> =
        results.iter().filter(|(c, p)| c.known_bug.is_none() && !p.is_empty()).map(|(c, _)| &*c.id).collect();
    assert!(failed.is_empty(), "policy matrix: {} passed, {} failed: {failed:?}", counted - failed.len(), failed.len());
}

/// The matrix is only as good as its power to fail: with every counted case's expectation
/// inverted, every case must fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_fails_when_its_decision_is_flipped() {
    let flip = |mut c: Case| {
        c.expect = if c.expect == Expect::Shown { Expect::Withheld } else { Expect::Shown };
        c
    };
    let flipped: Vec<Case> = load_cases().into_iter().filter(|c| c.known_bug.is_none()).map(flip).collect();
    let (results, _) = run_matrix(&flipped).await;
    let survivors: Vec<&str> = results.iter().filter(|(_, p)| p.is_empty()).map(|(c, _)| &*c.id).collect();
    assert!(survivors.is_empty(), "these cases pass with their decision flipped, so they prove nothing: {survivors:?}");
}

#[test]
fn the_table_is_well_formed_and_covers_every_rule_scenario_and_viewer() {
    let cases = load_cases();
    let problems = validate(&cases);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let counted: Vec<&Case> = cases.iter().filter(|c| c.known_bug.is_none()).collect();
    let becauses: BTreeSet<&str> = counted.iter().map(|c| c.because.as_str()).collect();
    // Every rule; of minor-consented labels, those the fixtures' minors carry (no HIV, ETH, SDV …).
    let mut required: Vec<String> =
        "exclusion:document-type minors:minor-consented:SEX minors:minor-consented:PREGNANT \
        minors:minor-consented:STD minors:minor-consented:MH minors:proxy-limited-type minors:proxy-limited-labelled \
        hold:with-its-report hold:patient-preference part2:no-consent part2:released:consent part2:released:emergency \
        scope:not-granted denied:no-access denied:purpose record:not-in-record"
            .split_whitespace()
            .map(String::from)
            .collect();
    // … and every example hold rule HIM may adopt.
    let example = std::fs::read_to_string(root().join("config/examples/hold-rules.toml")).unwrap();
    let example: toml::Table = toml::from_str(&example).unwrap();
    required.extend(example["rules"].as_array().unwrap().iter().map(|r| format!("hold:{}", r["id"].as_str().unwrap())));
    let missing: Vec<&String> = required.iter().filter(|r| !becauses.contains(r.as_str())).collect();
    assert!(missing.is_empty(), "no counted case gives {missing:?}");

    // Every person, and every viewer kind, on both sides.
    let mut sides: BTreeMap<String, BTreeSet<bool>> = BTreeMap::new();
    for c in &counted {
        let kind = if c.scopes.is_some() { "app" } else { c.viewer.split(':').next().unwrap() };
        sides.entry(c.scenario[..3].to_string()).or_default().insert(c.expect == Expect::Shown);
        sides.entry(format!("viewer {kind}")).or_default().insert(c.expect == Expect::Shown);
    }
    let both: Vec<String> = (1..=15)
        .map(|n| format!("P{n:02}"))
        .chain(["patient", "proxy", "app", "partner"].map(|k| format!("viewer {k}")))
        .collect();
    let one_sided: Vec<&String> = both.iter().filter(|k| sides.get(*k).map(BTreeSet::len) != Some(2)).collect();
    assert!(one_sided.is_empty() && sides.contains_key("viewer staff"), "need shown and withheld cases: {one_sided:?}");

    // fixtures/README.md names each person's cases under that person, and only cases that exist.
    let readme = std::fs::read_to_string(root().join("fixtures/README.md")).unwrap();
    let (mut person, mut named) = (String::new(), BTreeMap::new());
    for line in readme.lines() {
        if let Some(rest) = line.strip_prefix("**P") {
            person = format!("P{}", &rest[..2]);
        }
        if let Some(list) = line.strip_prefix("- Policy cases") {
            named.extend(list.split('`').skip(1).step_by(2).map(|id| (id.to_string(), person.clone())));
        }
    }
    let mut wrong: Vec<String> = cases
        .iter()
        .filter(|c| named.get(&c.id) != Some(&c.scenario[..3].to_string()))
        .map(|c| format!("{} is not named under {} in fixtures/README.md", c.id, &c.scenario[..3]))
        .collect();
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    wrong.extend(
        named
            .keys()
            .filter(|id| !ids.contains(id.as_str()))
            .map(|id| format!("fixtures/README.md names {id}: no such case")),
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
