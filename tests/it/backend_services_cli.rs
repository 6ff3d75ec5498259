//! Registering an HIE partner from the command line (`portico client register --kind
//! backend --purpose … --groups …`), what `client list` shows of it, the refusals that
//! write nothing, and `portico client assertion` signing an assertion the running gateway
//! accepts for a `client_credentials` token that reads a record.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn portico(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portico"));
    cmd.args(args).current_dir(root()).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PORTICO_")) {
        cmd.env_remove(k);
    }
    cmd.output().expect("portico runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn jwk(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("tests/keys").join(format!("{name}.jwk.json"))).unwrap()).unwrap()
}

/// A config on an SQLite file in `dir` with the EHR fixtures; returns (config path, db url).
fn write_config(dir: &Path) -> (String, String) {
    let db = format!("sqlite://{}/portico.db", dir.display());
    let anchor = fixture_anchor();
    let body = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[database]\nurl = \"{db}\"\n\
         [[sources]]\nname = \"ehr\"\nkind = \"files\"\npath = \"{}\"\nshift_dates_from = \"{anchor}\"\n",
        fixtures("ehr").display()
    );
    let file = dir.join("portico.toml");
    std::fs::write(&file, body).unwrap();
    (file.to_str().unwrap().to_string(), db)
}

#[tokio::test]
async fn a_partner_registered_from_the_cli_gets_a_token_with_a_cli_signed_assertion() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let (config, db) = write_config(dir.path());
    let jwks = dir.path().join("partner-jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk("es384"), jwk("rs384")]}).to_string()).unwrap();
    let jwks = jwks.to_str().unwrap();
    let register = |extra: &[&str]| {
        let mut args = vec!["client", "register", "--config", &config, "--name", "HIE North", "--kind", "backend"];
        args.extend_from_slice(extra);
        portico(&args)
    };
    // Refusals name what is wrong and register nothing.
    for (extra, expected) in [
        (vec!["--scopes", "system/*.rs", "--jwks-file", jwks], "purpose"),
        (vec!["--scopes", "system/*.rs", "--jwks-file", jwks, "--purpose", "SNOOP"], "SNOOP"),
        (vec!["--scopes", "patient/*.rs", "--jwks-file", jwks, "--purpose", "TREAT"], "system scopes only"),
        (vec!["--scopes", "system/*.rs", "--purpose", "TREAT"], "JWKS"),
        (vec!["--scopes", "system/*.rs", "--jwks-file", jwks, "--purpose", "TREAT", "--groups", "a b"], "groups[0]"),
        (
            vec![
                "--scopes",
                "system/*.rs",
                "--jwks-file",
                jwks,
                "--purpose",
                "TREAT",
                "--redirect-uri",
                "https://x.example/cb",
            ],
            "redirect",
        ),
    ] {
        let out = register(&extra);
        assert!(!out.status.success(), "{extra:?} was accepted");
        assert!(text(&out.stderr).contains(expected), "{extra:?}: {}", text(&out.stderr));
    }
    let out = portico(&["client", "list", "--config", &config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("HIE North"), "a refused registration wrote nothing");
    let out = portico(&[
        "client",
        "register",
        "--config",
        &config,
        "--name",
        "An app",
        "--kind",
        "public",
        "--redirect-uri",
        "https://app.example/cb",
        "--scopes",
        "patient/*.rs",
        "--purpose",
        "TREAT",
    ]);
    assert!(!out.status.success() && text(&out.stderr).contains("backend"), "{}", text(&out.stderr));

    let out = register(&[
        "--scopes",
        "system/*.rs",
        "--jwks-file",
        jwks,
        "--purpose",
        "treat",
        "--groups",
        "north-roster,north-cardiology",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let client_id = stdout.lines().find_map(|l| l.strip_prefix("client_id: ")).unwrap().trim().to_string();
    assert!(!stdout.contains("client_secret"), "a backend client has no secret");
    let out = portico(&["client", "list", "--config", &config]);
    let listed = text(&out.stdout);
    assert!(listed.contains(&format!("{client_id}  HIE North  [backend, registered, enabled]")), "{listed}");
    assert!(
        listed.contains("purpose of use: TREAT") && listed.contains("groups: north-roster, north-cardiology"),
        "{listed}"
    );

    // The gateway on the same database; the helper signs with either key.
    let gw = Gateway::start_in(dir.clone(), &format!("{}\n", fixture_file_sources()), Some(&db)).await;
    let token_url = format!("{}/token", gw.origin);
    for (key, kid) in [("es384.pem", "es-1"), ("rs384.pem", "rs-1")] {
        let key = root().join("tests/keys").join(key);
        let out = portico(&[
            "client",
            "assertion",
            "--client-id",
            &client_id,
            "--token-url",
            &token_url,
            "--key",
            key.to_str().unwrap(),
            "--kid",
            kid,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let assertion = text(&out.stdout).trim().to_string();
        let header = jsonwebtoken::decode_header(&assertion).unwrap();
        assert_eq!(header.kid.as_deref(), Some(kid));
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "system/*.read"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ];
        let r = gw.http.post(&token_url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200, "{kid}");
        let body: Value = r.json().await.unwrap();
        assert_eq!((&body["scope"], &body["expires_in"]), (&json!("system/*.read"), &json!(300)), "{body}");
        let token = body["access_token"].as_str().unwrap();
        let pid = gw.patient_id("ehr", "pt-10001");
        let (status, patient) = gw.get_with(&format!("Patient/{pid}"), Some(token), &[]).await;
        assert_eq!((status, &patient["id"]), (200, &json!(pid)));
        // The same assertion twice: refused.
        let r = gw.http.post(&token_url).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    }
    let out = portico(&[
        "client",
        "assertion",
        "--client-id",
        &client_id,
        "--token-url",
        &token_url,
        "--key",
        "tests/keys/rs384.jwk.json",
        "--kid",
        "rs-1",
    ]);
    assert!(!out.status.success() && text(&out.stderr).contains("--key"), "{}", text(&out.stderr));
    gw.stop().await;
}
