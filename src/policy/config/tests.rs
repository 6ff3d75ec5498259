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
    assert_eq!(p.jurisdiction().name, "default");
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
    assert_eq!(e, "policy.toml: minors.minor_consented_labels: `GOSSIP` is not a known security label");
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
