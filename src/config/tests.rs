use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_env(text, &[])
}

fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_toml(text, "test.toml", &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"), &vars)
}

const MINIMAL: &str = r#"
[[sources]]
name = "ehr"
kind = "fhir"
url = "http://127.0.0.1:9/fhir"
"#;

fn err_text(r: Result<Config, ConfigError>) -> String {
    r.expect_err("config should be refused").to_string()
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.sources[0].request_timeout, Duration::from_secs(5));
    assert_eq!(c.fhir_base_url(), "http://127.0.0.1:8080/fhir");
}

#[test]
fn unknown_key_names_file_and_key() {
    let e = err_text(parse(&format!("{MINIMAL}\n[server]\nlisen = \"x\"\n")));
    assert!(e.starts_with("test.toml: server"), "{e}");
    assert!(e.contains("lisen"), "{e}");
}

#[test]
fn missing_source_url_is_refused() {
    let e = err_text(parse("[[sources]]\nname = \"lab\"\nkind = \"fhir\"\n"));
    assert_eq!(e, "test.toml: sources[0].url: is required for a source of kind fhir");
}

#[test]
fn bad_duration_is_refused_with_key() {
    let e = err_text(parse(&format!("{MINIMAL}request_timeout = \"5 parsecs\"\n")));
    assert!(e.starts_with("test.toml: sources[0].request_timeout"), "{e}");
    assert!(e.contains("not a duration"), "{e}");
}

#[test]
fn syntax_error_names_line() {
    let e = err_text(parse("[server\nlisten = 1"));
    assert!(e.contains("(syntax)") && e.contains("line 1"), "{e}");
}

#[test]
fn duplicate_source_names_are_refused() {
    let e = err_text(parse(&format!("{MINIMAL}{MINIMAL}")));
    assert!(e.contains("sources[1].name") && e.contains("another source"), "{e}");
}

#[test]
fn missing_secret_env_is_refused_without_revealing_anything() {
    let text = format!("{MINIMAL}auth = {{ type = \"bearer\", token = {{ env = \"PORTICO_TEST_NO_SUCH_VAR\" }} }}\n");
    let e = err_text(parse(&text));
    assert!(e.contains("sources[0].auth.token") && e.contains("PORTICO_TEST_NO_SUCH_VAR is not set"), "{e}");
}

#[test]
fn environment_overrides_apply_with_types() {
    let c = parse_env(
        MINIMAL,
        &[
            ("PORTICO_SERVER__LISTEN", "127.0.0.1:9999"),
            ("PORTICO_SOURCES__0__MAX_RETRIES", "7"),
            ("PORTICO_LOG", "debug"),
        ],
    )
    .unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:9999");
    assert_eq!(c.sources[0].max_retries, 7);
}

#[test]
fn environment_override_of_unknown_key_is_refused() {
    let e = err_text(parse_env(MINIMAL, &[("PORTICO_SERVER__NOPE", "1")]));
    assert!(e.contains("nope"), "{e}");
    let e = err_text(parse_env(MINIMAL, &[("PORTICO_SOURCES__3__URL", "http://x")]));
    assert!(e.contains("sources.3.url") && e.contains("past the 1 entries"), "{e}");
}

#[test]
fn short_dev_token_is_refused() {
    let e = err_text(parse(&format!("[server]\ndev_token = \"short\"\n{MINIMAL}")));
    assert_eq!(e, "test.toml: server.dev_token: must be at least 16 characters");
}

#[test]
fn dev_token_only_on_loopback() {
    let text = format!("[server]\nlisten = \"0.0.0.0:8080\"\ndev_token = \"0123456789abcdef\"\n{MINIMAL}");
    let e = err_text(parse(&text));
    assert_eq!(e, "test.toml: server.dev_token: is allowed only when listening on loopback, not 0.0.0.0:8080");
    let mut c = parse(&format!("[server]\ndev_token = \"0123456789abcdef\"\n{MINIMAL}")).unwrap();
    c.server.listen = "10.1.2.3:80".into();
    assert!(c.revalidate().unwrap_err().to_string().contains("(command line): server.dev_token"));
}

#[test]
fn export_file_limits_and_store_are_read_and_checked() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!((c.export.file_max_resources, c.export.file_max_bytes.0), (100_000, 256_000_000));
    assert_eq!(c.export.store, None, "the local folder by default");
    let c = parse(&format!(
        "[export]\nfile_max_resources = 500\nfile_max_bytes = \"64MiB\"\nstore = \"s3://exports/portico\"\n{MINIMAL}"
    ))
    .unwrap();
    assert_eq!((c.export.file_max_resources, c.export.file_max_bytes.0), (500, 64 * 1024 * 1024));
    assert_eq!(parse(&format!("[export]\nfile_max_bytes = 4096\n{MINIMAL}")).unwrap().export.file_max_bytes.0, 4096);
    let e = err_text(parse(&format!("[export]\nfile_max_bytes = \"lots\"\n{MINIMAL}")));
    assert!(e.contains("export") && e.contains("not a size"), "{e}");
    let e = err_text(parse(&format!("[export]\nfile_max_resources = 0\n{MINIMAL}")));
    assert!(e.contains("export.file_max_resources"), "{e}");
    let e = err_text(parse(&format!("[export]\nstore = \"/mnt/exports\"\n{MINIMAL}")));
    assert!(e.starts_with("test.toml: export.store") && e.contains("s3://bucket/prefix"), "{e}");
}
