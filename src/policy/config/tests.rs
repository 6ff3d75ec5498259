use super::*;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn demo_text() -> String {
    std::fs::read_to_string(config_dir().join("policy.toml")).unwrap()
}

fn check(text: &str) -> Result<PolicyConfig, String> {
    PolicyConfig::from_toml(text, "policy.toml", &config_dir()).map_err(|e| e.to_string())
}

#[test]
fn the_shipped_policy_is_valid_and_holds_nothing_by_default() {
    let p = check(&demo_text()).unwrap();
    assert!(p.holds.rules.is_empty(), "no blanket delay of results by default");
    assert_eq!(p.jurisdiction().unwrap().name, "default");
    assert_eq!(p.part2_sources, vec!["behavioral"]);
}

#[test]
fn overlapping_or_gapped_bands_are_refused() {
    let overlapping = demo_text()
        .replace("{ from = 12, to = 18, proxy = \"limited\" }", "{ from = 11, to = 18, proxy = \"limited\" }");
    let e = check(&overlapping).unwrap_err();
    assert!(e.starts_with("policy.toml: minors.jurisdictions[0].bands[1]: overlaps"), "{e}");
    let gapped = demo_text()
        .replace("{ from = 12, to = 18, proxy = \"limited\" }", "{ from = 13, to = 18, proxy = \"limited\" }");
    assert!(check(&gapped).unwrap_err().contains("leaves ages 12–13 without a band"));
}

#[test]
fn unknown_labels_purposes_jurisdictions_and_keys_are_refused() {
    let e = check(&demo_text().replace("\"42CFRPart2\"]", "\"42CFRPart2\", \"GOSSIP\"]")).unwrap_err();
    assert_eq!(e, "policy.toml: minors.services.part2-records: `GOSSIP` is not a known security label");
    let e =
        check(&demo_text().replace("emergency_purposes = [\"ETREAT\", \"BTG\"]", "emergency_purposes = [\"HRESCH\"]"))
            .unwrap_err();
    assert!(e.contains("partners.emergency_purposes") && e.contains("HRESCH"), "{e}");
    let e = check(&demo_text().replace("jurisdiction = \"default\"", "jurisdiction = \"atlantis\"")).unwrap_err();
    assert!(e.contains("minors.jurisdiction") && e.contains("atlantis"), "{e}");
    let e = check(&format!("{}\nsurprise = 1\n", demo_text())).unwrap_err();
    assert!(e.contains("surprise"), "{e}");
}

#[test]
fn hold_rules_must_match_something_and_name_codes_with_systems() {
    let with_rule = |rule: &str| demo_text().replace("rules = []", &format!("rules = [{rule}]"));
    assert!(check(&with_rule("{ id = \"p\", categories = [\"SP\"], max = \"3d\" }")).is_ok());
    let e = check(&with_rule("{ id = \"p\", max = \"3d\" }")).unwrap_err();
    assert!(e.contains("holds.rules[0]: matches nothing"), "{e}");
    let e = check(&with_rule("{ id = \"p\", codes = [\"60567-5\"], max = \"3d\" }")).unwrap_err();
    assert!(e.contains("must be system|code"), "{e}");
    let e = check(&with_rule("{ id = \"p\", categories = [\"SP\"], max = \"soon\" }")).unwrap_err();
    assert!(e.contains("holds.rules[0].max"), "{e}");
}

#[test]
fn a_missing_labels_file_is_named() {
    let e = check(&demo_text().replace("labels = \"labels.toml\"", "labels = \"nope.toml\"")).unwrap_err();
    assert!(e.starts_with("policy.toml: labels: cannot read") && e.contains("nope.toml"), "{e}");
}

#[test]
fn the_shipped_jurisdictions_give_every_service_with_a_citation() {
    let p = check(&demo_text()).unwrap();
    let names: Vec<&str> = p.minors.jurisdictions.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, vec!["default", "assent-at-13", "california", "washington"]);
    let age = |j: &str, service: &str| {
        let j = p.minors.jurisdictions.iter().find(|x| x.name == j).unwrap();
        j.consent.iter().find(|c| c.service == service).unwrap().from_age
    };
    assert_eq!((age("default", "mental-health"), age("default", "sti"), age("default", "pregnancy")), (12, 0, 0));
    assert_eq!((age("california", "sti"), age("california", "pregnancy"), age("california", "violence")), (12, 0, 0));
    assert_eq!((age("washington", "mental-health"), age("washington", "sti")), (13, 14));
    for j in &p.minors.jurisdictions {
        assert_eq!(j.consent.len(), p.minors.services.len(), "{}", j.name);
        assert!(j.consent.iter().all(|c| !c.citation.is_empty()));
    }
}

#[test]
fn consent_rules_name_a_service_once_with_an_age_before_majority_and_a_citation() {
    let mh =
        "{ service = \"mental-health\", from_age = 13, citation = \"RCW 71.34.530 (outpatient, adolescent = 13-17)\" }";
    assert_eq!(demo_text().matches(mh).count(), 1);
    let with = |to: &str| check(&demo_text().replace(mh, to)).unwrap_err();
    let e = with("{ service = \"mental\", from_age = 13, citation = \"x\" }");
    assert!(
        e.starts_with(
            "policy.toml: minors.jurisdictions[3].consent[4].service: `mental` is not one of minors.services ("
        ),
        "{e}"
    );
    let e = with("{ service = \"sti\", from_age = 13, citation = \"x\" }");
    assert_eq!(e, "policy.toml: minors.jurisdictions[3].consent[4].service: `sti` is given twice");
    let e = with("{ service = \"mental-health\", from_age = 19, citation = \"x\" }");
    assert!(e.starts_with("policy.toml: minors.jurisdictions[3].consent[4].from_age: 19 is past the age of majority of `washington` (18)"), "{e}");
    assert!(
        check(&demo_text().replace(mh, "{ service = \"mental-health\", from_age = 18, citation = \"never\" }")).is_ok(),
        "18 = never"
    );
    let e = with("{ service = \"mental-health\", from_age = 13, citation = \" \" }");
    assert_eq!(
        e,
        "policy.toml: minors.jurisdictions[3].consent[4].citation: give the statute, or say why there is none"
    );
    let e = check(&demo_text().replace(&format!("{mh},"), "")).unwrap_err();
    assert!(e.contains("minors.jurisdictions[3].consent: says nothing of `mental-health`"), "{e}");
    let e = with("{ service = \"mental-health\", from_age = 13 }");
    assert!(e.contains("minors.jurisdictions[3].consent[4]") && e.contains("citation"), "{e}");
}

#[test]
fn a_label_marks_one_service() {
    let e = check(&demo_text().replace("hiv = [\"HIV\"]", "hiv = [\"HIV\", \"STD\"]")).unwrap_err();
    assert!(e.starts_with("policy.toml: minors.services.") && e.contains("`STD` already marks the service"), "{e}");
    let e = check(&demo_text().replace("hiv = [\"HIV\"]", "hiv = []")).unwrap_err();
    assert_eq!(e, "policy.toml: minors.services.hiv: names no label");
    let old =
        demo_text().replace("proxy_limited_types = ", "minor_consented_labels = [\"MH\"]\nproxy_limited_types = ");
    let e = check(&old).unwrap_err();
    assert!(e.starts_with("policy.toml: minors.minor_consented_labels: replaced by [minors.services]"), "{e}");
    // … also when the file has no [minors.services] yet.
    let (from, to) = (old.find("[minors.services]").unwrap(), old.find("[[minors.jurisdictions]]").unwrap());
    let e = check(&format!("{}{}", &old[..from], &old[to..])).unwrap_err();
    assert!(e.starts_with("policy.toml: minors.minor_consented_labels: replaced by"), "{e}");
}

#[test]
fn the_labels_files_review_net_is_checked_like_terms() {
    let dir = tempfile::tempdir().unwrap();
    let labels = std::fs::read_to_string(config_dir().join("labels.toml")).unwrap();
    let policy = demo_text();
    let broken = labels.replacen("review_terms = [", "review_terms = [\"x\", ", 1);
    assert_ne!(broken, labels, "the shipped labels file has a review net");
    std::fs::write(dir.path().join("labels.toml"), &broken).unwrap();
    let e = PolicyConfig::from_toml(&policy, "policy.toml", dir.path()).unwrap_err().to_string();
    assert!(e.contains("labels.toml: review_terms:") && e.contains("`x` is too short"), "{e}");
    std::fs::write(dir.path().join("labels.toml"), &labels).unwrap();
    let ok = PolicyConfig::from_toml(&policy, "policy.toml", dir.path()).unwrap();
    assert!(ok.review_terms.iter().any(|t| t == "pregnan*"));
}
