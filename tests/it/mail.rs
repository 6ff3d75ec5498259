//! Security mails (issue 12 part 3) through a real SMTP server (PyPI aiosmtpd, started by
//! the test) and through the folder the demo uses: the verification link, "your record was
//! connected", "someone tried to enroll into your record" and "new sign-in" reach the right
//! account with the right subject, and no mail carries PHI — not the patient's name, birth
//! date, medical record number or anything from the record, in any header or body.

use crate::common::*;

const MRN: &str = "HG100142";

fn smtp_body(port: u16) -> String {
    format!(
        "[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}?tls=none\"\nfrom = \"Harbor Health portal <no-reply@harbor.example>\"\n{}",
        fixture_file_sources()
    )
}

/// What must never be in a mail about Bob's record: his names, birth date, record
/// numbers, and what his record holds (conditions, medications, results, as the gateway
/// serves them to staff).
async fn phi_of_bob(gw: &Gateway) -> Vec<String> {
    let patient = gw.patient_id("ehr", "pt-10001");
    let (status, p) = gw.get(&format!("Patient/{patient}")).await;
    assert_eq!(status, 200, "{p}");
    let mut phi = vec![MRN.to_string(), shifted("1967-06-18"), "1967".into()];
    for n in p["name"].as_array().unwrap() {
        phi.push(n["family"].as_str().unwrap().to_string());
        phi.extend(n["given"].as_array().into_iter().flatten().map(|g| g.as_str().unwrap().to_string()));
    }
    phi.extend(p["identifier"].as_array().into_iter().flatten().map(|i| i["value"].as_str().unwrap().to_string()));
    phi.push(p["birthDate"].as_str().unwrap().to_string());
    for kind in ["Condition", "MedicationRequest", "Observation"] {
        let (resources, _) = gw.all_pages(&format!("{kind}?patient={patient}")).await;
        for r in resources {
            for text in
                [&r["code"]["text"], &r["code"]["coding"][0]["display"], &r["medicationCodeableConcept"]["text"]]
            {
                if let Some(t) = text.as_str().filter(|t| t.len() >= 4) {
                    phi.push(t.to_string());
                }
            }
        }
    }
    assert!(phi.len() > 8, "the record gives enough to look for: {phi:?}");
    phi
}

fn assert_no_phi(mails: &[Mail], phi: &[String]) {
    for m in mails {
        let raw = m.text().to_lowercase();
        for p in phi {
            assert!(!raw.contains(&p.to_lowercase()), "a mail holds {p:?}:\n{}", m.raw);
        }
    }
}

/// Follows the verification link in the mail the SMTP server got for `username`.
async fn verify_by_smtp(sink: &SmtpSink, b: &Browser, username: &str) -> String {
    let mail = wait_for_mail(|| sink.mails(), |m| m.to() == username && m.verification_link().is_some()).await;
    let link = mail.verification_link().unwrap();
    let path = link[link.find("/verify-email").unwrap()..].to_string();
    let (status, html, _) = b.get(&path).await;
    assert_eq!(status, 200, "{html}");
    path
}

async fn enroll_bob(b: &Browser) -> (u16, String) {
    let (token, _) = b.form_page("/enroll").await;
    let (status, html, _) = b
        .post(
            "/enroll",
            &[("csrf", &token), ("mrn", MRN), ("birth_date", &shifted("1967-06-18")), ("family", "Martinez")],
        )
        .await;
    (status, html)
}

async fn sign_in(b: &Browser, username: &str) {
    let (token, _) = b.form_page("/login").await;
    let (status, html, _) = b.post("/login", &[("csrf", &token), ("username", username), ("password", PASSWORD)]).await;
    assert_eq!(status, 303, "{html}");
}

fn count(mails: &[Mail], to: &str, subject: &str) -> usize {
    mails.iter().filter(|m| m.to() == to && m.subject().contains(subject)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_mails_reach_the_account_over_smtp_and_carry_no_phi() {
    if !require("python") {
        return;
    }
    let sink = SmtpSink::start();
    let gw = Gateway::start(&smtp_body(sink.port)).await;
    // The owner registers: the verification mail, to her address only.
    let owner = register_unverified(&gw, "Robert Martinez", "owner@example.org").await;
    let path = verify_by_smtp(&sink, &owner, "owner@example.org").await;
    // The link works once.
    let (status, _, _) = Browser::new(&gw).get(&path).await;
    assert_eq!(status, 400, "a used link");
    let (status, _, _) = owner.get("/verify-email?token=00ff").await;
    assert_eq!(status, 400, "an unknown token");
    // Enrolled: "your record was connected".
    assert_eq!(enroll_bob(&owner).await.0, 303);
    let connected = wait_for_mail(|| sink.mails(), |m| m.subject().contains("connected to a health record")).await;
    assert_eq!(connected.to(), "owner@example.org");
    assert_eq!(connected.envelope_to, vec!["owner@example.org".to_string()]);
    // Someone else with the right details: refused, and the owner (only) is told.
    let other = register_unverified(&gw, "Robert Martinez", "other@example.org").await;
    verify_by_smtp(&sink, &other, "other@example.org").await;
    assert_eq!(enroll_bob(&other).await.0, 400);
    let tried = wait_for_mail(|| sink.mails(), |m| m.subject().contains("tried to connect")).await;
    assert_eq!((tried.to(), tried.envelope_to.clone()), ("owner@example.org".into(), vec!["owner@example.org".into()]));
    // A sign-in from a new browser: "new sign-in"; again from that browser: no second one.
    let laptop = Browser::new(&gw);
    sign_in(&laptop, "owner@example.org").await;
    wait_for_mail(|| sink.mails(), |m| m.to() == "owner@example.org" && m.subject().contains("New sign-in")).await;
    sign_in(&laptop, "owner@example.org").await;
    // Mails leave in order: once a later mail has arrived, an earlier one would have too.
    register_unverified(&gw, "Third", "third@example.org").await;
    wait_for_mail(|| sink.mails(), |m| m.to() == "third@example.org").await;
    let mails = sink.mails();
    assert_eq!(count(&mails, "owner@example.org", "New sign-in"), 1, "a known browser sends none");
    assert_eq!(count(&mails, "other@example.org", "New sign-in"), 0);
    assert_eq!(count(&mails, "other@example.org", "tried to connect"), 0, "the one who tried is not told");
    assert_eq!(count(&mails, "other@example.org", "connected to a health record"), 0);
    for m in &mails {
        assert_eq!(m.envelope_to, vec![m.to()], "{}", m.raw);
        assert!(m.header("From").unwrap().contains("no-reply@harbor.example"), "{}", m.raw);
        assert!(!m.text().contains("Robert"), "not even the account's display name: {}", m.raw);
    }
    assert_no_phi(&mails, &phi_of_bob(&gw).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_gets_one_eml_file_a_mail_and_without_mail_the_gateway_still_starts() {
    // The demo's way: a folder of .eml files (this one named in the config).
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("outbox");
    let gw =
        Gateway::start(&format!("[mail]\nfolder = {:?}\n{}", folder.display().to_string(), fixture_file_sources()))
            .await;
    let b = register_unverified(&gw, "Robert Martinez", "owner@example.org").await;
    let mail = wait_for_mail(|| folder_mails(&folder), |m| m.verification_link().is_some()).await;
    assert_eq!((mail.to(), mail.subject().contains("Confirm your e-mail")), ("owner@example.org".into(), true));
    let link = mail.verification_link().unwrap();
    assert!(link.starts_with(&format!("{}/verify-email?token=", gw.origin)), "{link}");
    assert_eq!(b.get(&link[gw.origin.len()..]).await.0, 200);
    assert_eq!(enroll_bob(&b).await.0, 303);
    wait_for_mail(|| folder_mails(&folder), |m| m.subject().contains("connected to a health record")).await;
    assert_no_phi(&folder_mails(&folder), &phi_of_bob(&gw).await);
    assert!(!gw.mail_dir.exists(), "the configured folder, not the default");

    // No [mail] section at all: the gateway starts, registration works, nothing is sent
    // (so the account waits for staff to confirm its address) and enrolling is refused.
    let gw = Gateway::start(&format!("# this gateway has no [mail] section\n{}", fixture_file_sources())).await;
    let b = register_unverified(&gw, "Robert Martinez", "owner@example.org").await;
    let (status, html) = enroll_bob(&b).await;
    assert_eq!(status, 403, "{html}");
    assert!(!gw.mail_dir.exists(), "no mail written anywhere");
}
