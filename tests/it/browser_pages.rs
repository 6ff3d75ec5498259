//! The patient pages in a real browser: playwright-core (npm, pinned in
//! tests/browser/package-lock.json) drives Debian's Chromium (`/usr/bin/chromium`, headless)
//! through `tests/browser/portal.mjs` against a gateway started here on port 0. The script
//! signs in as an adult, a parent of a 10-year-old (and of a 16-year-old), a parent of a
//! 15-year-old and the 15-year-old himself, checks what each sees and does not see, downloads
//! the record, allows and revokes an app, reads the access log, signs out; a second gateway
//! with the lab down shows the source banner. axe-core checks every main page; screenshots go
//! to `target/screenshots/` (and, with `PORTICO_README_SCREENSHOTS=1`, the README's to
//! `docs/screenshots/`). `tests/browser/spanish.mjs` walks the main journeys again in Spanish.
//! Runs under `TEST_WITH_BROWSER=1` (scripts/test sets it, installs
//! Chromium and the npm packages); installs the npm packages on first use too.

use crate::common::*;
use portico::simulator::SimulatorOptions;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CLIENT: &str = "growth-chart";
const APP_NAME: &str = "Growth Chart";

/// The screenshots the README shows, copied to docs/screenshots/ on request.
const README_SHOTS: [&str; 10] = [
    "sign-in",
    "record-home",
    "results",
    "access-log",
    "apps",
    "share",
    "corrections",
    "disclosures",
    "proxies",
    "notices",
];

/// The app's side of the launch: a page at its redirect URI on a port of its own, where the
/// browser lands with the code. Returns the redirect URI.
async fn app_callback() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><html lang=\"en\"><title>Growth Chart</title><h1>Growth Chart</h1><p>Connected.</p></html>")
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/callback")
}

fn client_block(redirect: &str) -> String {
    format!(
        "[[auth.clients]]\nclient_id = \"{CLIENT}\"\nname = \"{APP_NAME}\"\nkind = \"public\"\nredirect_uris = [\"{redirect}\"]\nallowed_scopes = \"launch/patient openid fhirUser offline_access patient/*.rs\"\n"
    )
}

fn bob() -> serde_json::Value {
    json!({"name": "Bob Martinez", "username": "bob@example.org", "password": PASSWORD,
           "mrn": "HG100142", "birth_date": shifted("1967-06-18"), "family": "Martinez"})
}

/// Registers a person and connects their record over plain HTTP (for scenarios that do not
/// test registration itself); `person` is as in `bob()`.
async fn enrolled(gw: &Gateway, person: &serde_json::Value) {
    let text = |k: &str| person[k].as_str().unwrap().to_string();
    let b = Browser::new(gw);
    let (token, _) = b.form_page("/register").await;
    let (status, html, _) = b
        .post(
            "/register",
            &[
                ("csrf", &token),
                ("display_name", &text("name")),
                ("username", &text("username")),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    verify_email(gw, &b, &text("username")).await;
    let (token, _) = b.form_page("/enroll").await;
    let (status, html, _) = b
        .post(
            "/enroll",
            &[
                ("csrf", &token),
                ("mrn", &text("mrn")),
                ("birth_date", &text("birth_date")),
                ("family", &text("family")),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
}

fn screenshots() -> PathBuf {
    root().join("target").join("screenshots")
}

fn base_config(gw: &Gateway, redirect: &str) -> serde_json::Value {
    json!({
        "origin": gw.origin,
        "fhir": gw.fhir,
        "mail_dir": gw.mail_dir,
        "screenshots": screenshots(),
        "chromium": chromium(),
        "app": {"client_id": CLIENT, "name": APP_NAME, "redirect_uri": redirect},
        "adult": bob(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_parents_and_a_teen_use_their_pages_in_a_real_browser() {
    if !require("browser") {
        return;
    }
    let redirect = app_callback().await;
    let gw = Gateway::start(&format!("{}{}", client_block(&redirect), fixture_file_sources())).await;
    // Ana Rodriguez: mother of Ethan (10) and Maya (16); David Kim: father of Noah (15).
    register(&gw, "Ana Rodriguez", "ana@example.org").await;
    grant_proxy(&gw, "ana@example.org", "ehr/pt-10008", "MTH", "ehr/rp-10002").await;
    grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    register(&gw, "David Kim", "david@example.org").await;
    grant_proxy(&gw, "david@example.org", "ehr/pt-10009", "FTH", "ehr/rp-10004").await;

    let mut config = base_config(&gw, &redirect);
    config["parent_of_ten"] = json!({"username": "ana@example.org", "password": PASSWORD});
    config["parent_of_fifteen"] = json!({"username": "david@example.org", "password": PASSWORD});
    config["teen"] = json!({"name": "Noah Kim", "username": "noah@example.org", "password": PASSWORD,
                            "mrn": "HG100812", "birth_date": shifted("2010-09-30"), "family": "Kim"});
    // Sarah Whitfield (P06): an adult with a note written for staff only.
    let sarah = json!({"name": "Sarah Whitfield", "username": "sarah@example.org", "password": PASSWORD,
                       "mrn": "HG100604", "birth_date": shifted("1988-05-21"), "family": "Whitfield"});
    enrolled(&gw, &sarah).await;
    config["adult_with_staff_note"] = sarah;
    run_scenario("main", &config).await;

    if std::env::var("PORTICO_README_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = root().join("docs").join("screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        for name in README_SHOTS {
            let file = format!("{name}.png");
            std::fs::copy(screenshots().join("readme").join(&file), docs.join(&file))
                .unwrap_or_else(|e| panic!("copy {file} to docs/screenshots: {e}"));
        }
    }
    gw.stop().await;
}

/// The main journeys in Spanish (`tests/browser/spanish.mjs`): a browser preferring es-MX
/// registers, connects, reads and downloads the record in Spanish, switches language (kept
/// in the browser and on the account), and a parent reads a 16-year-old's record in Spanish
/// without seeing anything withheld; then the rights pages in Spanish (share links and the
/// recipient's view, corrections, disclosures, proxies and an invitation accepted, notice
/// preferences); axe-core checks the Spanish pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_journeys_in_spanish_in_a_real_browser() {
    if !require("browser") {
        return;
    }
    let redirect = app_callback().await;
    let gw = Gateway::start(&format!("{}{}", client_block(&redirect), fixture_file_sources())).await;
    register(&gw, "Ana Rodriguez", "ana@example.org").await;
    grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    let mut config = base_config(&gw, &redirect);
    config["adult"] = json!({"name": "Roberto Martínez", "username": "roberto@example.org", "password": PASSWORD,
                             "mrn": "HG100142", "birth_date": shifted("1967-06-18"), "family": "Martinez"});
    config["parent_of_sixteen"] = json!({"username": "ana@example.org", "password": PASSWORD});
    // HIM's token: the script denies a correction request through the admin API.
    config["staff_token"] = json!(TOKEN);
    run_script("spanish.mjs", "spanish", &config).await;
    if std::env::var("PORTICO_README_SCREENSHOTS").as_deref() == Ok("1") {
        let shot = screenshots().join("readme").join("record-home-es.png");
        std::fs::copy(&shot, root().join("docs").join("screenshots").join("record-home-es.png"))
            .unwrap_or_else(|e| panic!("copy {} to docs/screenshots: {e}", shot.display()));
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_that_is_down_shows_a_banner_and_an_idle_session_ends() {
    if !require("browser") {
        return;
    }
    let redirect = app_callback().await;
    let ehr = simulate("ehr", SimulatorOptions::default()).await;
    let lab = simulate("lab", SimulatorOptions::default()).await;
    let body = format!(
        "[aggregate]\ndeadline = \"3s\"\ncache_ttl = \"1ms\"\n[auth]\nsession_idle = \"15s\"\n{}{}{}",
        client_block(&redirect),
        rest_source("ehr", "Harbor General Hospital", ehr.base_url(), ""),
        rest_source(
            "lab",
            "Bayview Regional Reference Lab",
            lab.base_url(),
            "max_retries = 0\nretry_backoff = \"20ms\""
        ),
    );
    let gw = Gateway::start(&body).await;
    enrolled(&gw, &bob()).await;
    lab.controls().set_down(true);
    let mut config = base_config(&gw, &redirect);
    config["idle_wait_ms"] = json!(16_500);
    run_scenario("source-down", &config).await;
    gw.stop().await;
}

/// Runs `node tests/browser/portal.mjs SCENARIO` with the config; fails showing its output.
async fn run_scenario(scenario: &str, config: &serde_json::Value) {
    run_script("portal.mjs", scenario, config).await;
}

/// Runs `node tests/browser/{script} SCENARIO` with the config; fails showing its output.
async fn run_script(script: &str, scenario: &str, config: &serde_json::Value) {
    let dir = root().join("tests").join("browser");
    install_once(&dir);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join(script))
        .arg(scenario)
        .env("PORTICO_BROWSER_CONFIG", config.to_string())
        .current_dir(&dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), command.output())
        .await
        .unwrap_or_else(|_| panic!("the browser scenario {scenario} did not finish in 10 minutes"))
        .unwrap_or_else(|e| panic!("cannot run node (Node.js 20 is needed for the browser tests): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(out.status.success(), "the browser scenario {scenario} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// Debian's Chromium; `scripts/test` installs it (`apt-get install chromium`).
fn chromium() -> String {
    let path = std::env::var("PORTICO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the browser tests need Debian's Chromium (apt-get install -y chromium; scripts/test does it)"
    );
    path
}

/// Installs the pinned npm packages the first time a test needs them (the lockfile pins every
/// version; npm runs no install scripts here, so playwright-core downloads no browser).
fn install_once(dir: &Path) {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let ready = ["playwright-core", "axe-core", "fflate"]
            .iter()
            .all(|p| dir.join("node_modules").join(p).join("package.json").exists());
        if ready {
            return Ok(());
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run npm (Node.js and npm are needed for the browser tests): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("npm ci in {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr)))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
