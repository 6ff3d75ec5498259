//! Pages, mails and the download's summary in Spanish over real HTTP (issue 16 part 6): the
//! language is negotiated from `Accept-Language` with its q-values, the switch overrides it
//! and is remembered by the browser and by a signed-in account, a Spanish-preferring
//! account's mails are Spanish, its zip's summary too; and a translated page leaks nothing
//! the policy withholds, checked as the English page tests check it.

use crate::common::*;
use std::time::Duration;

/// A person's browser whose language preference is `accept_language`.
fn browser_in(gw: &Gateway, accept_language: &str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT_LANGUAGE, accept_language.parse().unwrap());
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    Browser { http, origin: gw.origin.clone() }
}

/// `(lang of <html>, Content-Language)` of a page.
async fn language_of(b: &Browser, path: &str) -> (String, String) {
    let r = b.http.get(b.url(path)).send().await.unwrap();
    let content_language =
        r.headers().get("content-language").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let html = r.text().await.unwrap();
    let at = html.find("<html lang=\"").expect("an <html lang>") + "<html lang=\"".len();
    (html[at..at + 2].to_string(), content_language)
}

async fn gateway() -> Gateway {
    Gateway::start(&fixture_file_sources()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_language_chooses_and_the_switch_overrides_and_is_remembered() {
    let gw = gateway().await;
    for (header, lang) in [
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-CA,de;q=0.9", "en"),
        ("en;q=0.2, es;q=0.9", "es"),
        ("es;q=0, en;q=0.1", "en"),
        ("*", "en"),
    ] {
        let b = browser_in(&gw, header);
        assert_eq!(language_of(&b, "/login").await, (lang.to_string(), lang.to_string()), "Accept-Language: {header}");
    }
    let es = browser_in(&gw, "es-MX");
    let login = es.view("/").await;
    assert!(
        login.contains("Su expediente médico, en un solo lugar") && !login.contains("Your health record"),
        "{login}"
    );
    assert!(
        login.contains("href=\"/language/en?next=%2F\"") && login.contains("lang=\"en\""),
        "the switch offers English"
    );

    // The switch: back to the page, in the chosen language from then on, whatever the header.
    let en_browser = browser_in(&gw, "en-US");
    let (status, _, location) = en_browser.get("/language/es?next=%2Flogin%3Fsigned_out%3D1").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login?signed_out=1")));
    assert_eq!(language_of(&en_browser, "/login").await.0, "es");
    assert_eq!(language_of(&en_browser, "/register").await.0, "es", "remembered on the next page");
    let (status, _, location) = en_browser.get("/language/en?next=/").await;
    assert_eq!((status, location.as_deref()), (303, Some("/")));
    assert_eq!(language_of(&en_browser, "/login").await.0, "en");

    // Bad input: a clear 400 that changes nothing; never a redirect off the site.
    let (status, html, _) = es.get("/language/klingon?next=/login").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Ese idioma no está disponible"), "{html}");
    assert_eq!(language_of(&es, "/login").await.0, "es", "nothing changed");
    for next in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let query: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let (status, _, location) = es.get(&format!("/language/en?next={query}")).await;
        assert_eq!((status, location.as_deref()), (303, Some("/")), "{next}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spanish_preferring_account_gets_spanish_pages_mails_and_summary_wherever_it_signs_in() {
    let gw = gateway().await;
    // Registered from a Spanish browser: the verification mail is Spanish.
    let b = browser_in(&gw, "es-MX,es;q=0.9");
    let (token, _) = b.form_page("/register").await;
    let form = [
        ("csrf", token.as_str()),
        ("display_name", "Roberto"),
        ("username", "roberto@example.org"),
        ("password", PASSWORD),
    ];
    assert_eq!(b.post("/register", &form).await.0, 303);
    let dir = gw.mail_dir.clone();
    let verify = wait_for_mail(|| folder_mails(&dir), |m| m.to() == "roberto@example.org").await;
    assert_eq!(verify.subject(), "Confirme su correo electrónico para el portal del paciente");
    assert!(verify.body().starts_with("Hola:") && verify.body().contains(" de 20"), "{}", verify.body());
    verify_email(&gw, &b, "roberto@example.org").await;
    let (token, _) = b.form_page("/enroll").await;
    let birth = shifted("1967-06-18");
    let form = [("csrf", token.as_str()), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "Martinez")];
    assert_eq!(b.post("/enroll", &form).await.0, 303);
    let connected =
        wait_for_mail(|| folder_mails(&dir), |m| m.subject().contains("se conectó a un expediente médico")).await;
    assert!(connected.body().contains("/account"), "{}", connected.body());

    // Signing in on an English browser: the pages follow the account, and so do the mails
    // (a new browser sends the "new sign-in" mail).
    let elsewhere = browser_in(&gw, "en-US");
    let (token, _) = elsewhere.form_page("/login").await;
    let (status, _, _) = elsewhere
        .post("/login", &[("csrf", &token), ("username", "roberto@example.org"), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(language_of(&elsewhere, "/account").await.0, "es");
    let signed_in = wait_for_mail(|| folder_mails(&dir), |m| m.subject().contains("Nuevo inicio de sesión")).await;
    assert!(signed_in.body().contains("desde un navegador o dispositivo"), "{}", signed_in.body());

    // The account's pages that came with proxies and notices are Spanish too, and so is an
    // invitation mailed from them (to an address with no account: the inviter's language).
    let (_, notices) = elsewhere.form_page("/account/notices").await;
    assert!(notices.contains("Los correos que le enviamos") && !notices.contains("Mails we send you"), "{notices}");
    let (token, proxies) = elsewhere.form_page("/account/proxies").await;
    assert!(proxies.contains("Invitar a alguien") && !proxies.contains("Invite someone"), "{proxies}");
    let form = [("csrf", token.as_str()), ("email", "tia@example.org"), ("relationship", "FAMMEMB")];
    let (status, _, location) = elsewhere.post("/account/proxies/invite", &form).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account/proxies?done=invited")));
    let invitation = wait_for_mail(|| folder_mails(&dir), |m| m.to() == "tia@example.org").await;
    assert_eq!(invitation.subject(), "Le invitan a ver un expediente médico en el portal del paciente");
    let body = invitation.body();
    assert!(body.starts_with("Hola:") && body.contains("/proxy-invitations/accept?token="), "{body}");
    assert!(!body.contains("Martinez") && !body.contains(&birth), "no patient data: {body}");

    // The record pages: the gateway's words in Spanish, the record's as its sources wrote them.
    let (_, _, location) = elsewhere.get("/records").await;
    let link = location.unwrap().strip_prefix("/records/").unwrap().to_string();
    let results = elsewhere.view(&format!("/records/{link}/results")).await;
    assert!(results.contains("<h1>Resultados de pruebas</h1>") && results.contains("Hemoglobin A1c"), "{results}");
    assert!(!results.contains("All results") && !results.contains("Usual range"), "no English left on the page");

    // The zip's summary, in Spanish; the English browser's switch back to English changes
    // the account too (its next mails are English) and the next zip is English.
    let zip = elsewhere.http.get(elsewhere.url(&format!("/records/{link}/download.zip"))).send().await.unwrap();
    let files = unzip(&zip.bytes().await.unwrap());
    let summary = &files["summary.html"];
    assert!(summary.contains("<html lang=\"es\">") && summary.contains("Resumen del expediente médico"), "{summary}");
    assert!(summary.contains(" de 20") && summary.contains("Hemoglobin A1c"), "date in words, source words kept");
    assert_eq!(elsewhere.get("/language/en?next=/account").await.0, 303);
    let zip = elsewhere.http.get(elsewhere.url(&format!("/records/{link}/download.zip"))).send().await.unwrap();
    let english = unzip(&zip.bytes().await.unwrap());
    assert!(english["summary.html"].contains("Health record summary"), "switched: the next summary is English");
    let third = browser_in(&gw, "es-MX");
    let (token, _) = third.form_page("/login").await;
    third.post("/login", &[("csrf", &token), ("username", "roberto@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(language_of(&third, "/account").await.0, "en", "the account now keeps English, over the header");
    let again = wait_for_mail(
        || folder_mails(&dir),
        |m| m.subject() == "New sign-in to your patient portal account" && m.to() == "roberto@example.org",
    )
    .await;
    assert!(again.body().starts_with("Hello,"), "{}", again.body());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_reading_in_spanish_sees_nothing_withheld() {
    let gw = gateway().await;
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let maya = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    assert_eq!(ana.get(&format!("/language/es?next=/records/{maya}")).await.0, 303);
    let pages = ana.every_page(&maya).await;
    assert!(pages.contains("<html lang=\"es\">") && pages.contains("Acerca de este expediente"), "Spanish pages");
    let pages = pages.to_lowercase();
    assert!(pages.contains("tdap") && pages.contains("hpv9"), "a parent of a teen sees immunizations");
    let zip = ana.http.get(ana.url(&format!("/records/{maya}/download.zip"))).send().await.unwrap();
    let files = unzip(&zip.bytes().await.unwrap());
    assert!(files["summary.html"].contains("<html lang=\"es\">"));
    let download = files.values().cloned().collect::<Vec<_>>().join("\n").to_lowercase();
    for secret in [
        "pregnan",
        "embaraz",
        "chlamydia",
        "contracept",
        "anticoncep",
        "camila",
        "phq",
        "depression",
        "depresión",
        "gonorrh",
        "choriogonadotropin",
        "confidential visit note",
        "well child visit",
    ] {
        // As words: the pages' random tokens (CSRF, nonces) may hold any three letters.
        assert!(!mentions(&pages, secret), "a parent must not see `{secret}` on any Spanish page");
        assert!(!mentions(&download, secret), "nor in the Spanish download: `{secret}`");
    }
    // The withheld-notice reads the same whatever was withheld, in Spanish too.
    let notice = |html: &str| {
        let at = html.find("data-testid=\"withheld-notice\"").unwrap();
        html[at..at + html[at..].find("</aside>").unwrap()].to_string()
    };
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    let (token, _) = bob.form_page("/enroll").await;
    let birth = shifted("1967-06-18");
    bob.post("/enroll", &[("csrf", &token), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "Martinez")]).await;
    let (_, _, location) = bob.get("/records").await;
    assert_eq!(bob.get("/language/es?next=/").await.0, 303);
    let bob_home = bob.view(&location.unwrap()).await;
    assert_eq!(notice(&ana.view(&format!("/records/{maya}")).await), notice(&bob_home));
    gw.stop().await;
}

/// Posts the share form of `home` for the allergies, labelled "Para la escuela".
async fn share_form(b: &Browser, home: &str, csrf: &str, days: &str, passcode: &str) -> (u16, String, Option<String>) {
    let form = [
        ("csrf", csrf),
        ("section", "allergies"),
        ("label", "Para la escuela"),
        ("days", days),
        ("passcode", passcode),
    ];
    b.post(&format!("{home}/share"), &form).await
}

/// The text of the element opened by `marker` (up to its closing `</textarea>`), unescaped.
fn textarea(html: &str, marker: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("no {marker} in {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    unescape(&html[start..start + html[start..].find("</textarea>").unwrap()])
}

/// The rights pages in Spanish over HTTP, with the words the Rust code writes on them (the
/// refusals of the share, correction and proxy forms, the recipient's viewer, the
/// disclosures' recipients and purposes, a proxy's relationship and dates) and the zip's
/// README.txt: Spanish, and the English they replaced absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rights_pages_their_refusals_and_the_zip_readme_are_in_spanish() {
    let gw = gateway().await;
    let bob = register(&gw, "Bob Martinez", "bob@example.org").await;
    let (token, _) = bob.form_page("/enroll").await;
    let birth = shifted("1967-06-18");
    bob.post("/enroll", &[("csrf", &token), ("mrn", "HG100142"), ("birth_date", &birth), ("family", "Martinez")]).await;
    let (_, _, location) = bob.get("/records").await;
    let home = location.unwrap();
    assert_eq!(bob.get(&format!("/language/es?next={home}")).await.0, 303);
    let today = portico::i18n::day(portico::i18n::Lang::Es, chrono::Utc::now().date_naive());

    // Share links: refusals in Spanish and nothing made; then a link, opened by a recipient.
    let (csrf, page) = bob.form_page(&format!("{home}/share")).await;
    assert!(page.contains("Compartir su expediente") && !page.contains("Share your record"), "{page}");
    let share = |days: &'static str, passcode: &'static str| share_form(&bob, &home, &csrf, days, passcode);
    let (status, html, _) = share("2", "").await;
    assert_eq!(status, 400);
    assert!(
        html.contains("Elija por cuánto tiempo funciona el enlace.") && !html.contains("Choose how long"),
        "{html}"
    );
    let (status, html, _) = share("7", "12").await;
    assert_eq!(status, 400);
    assert!(
        html.contains("un código de acceso tiene de 4 a 64 caracteres") && !html.contains("a passcode has"),
        "{html}"
    );
    assert!(
        bob.view(&format!("{home}/share")).await.contains("Usted no ha compartido este expediente"),
        "nothing was made"
    );
    let (status, made, _) = share("7", "").await;
    assert_eq!(status, 200, "{made}");
    assert!(made.contains("Su enlace para compartir está listo"), "{made}");
    let shlink = textarea(&made, "data-testid=\"share-shlink\"");
    assert!(shlink.starts_with("shlink:/"), "{shlink}");

    let school = browser_in(&gw, "es-MX,es;q=0.9");
    let (status, html, _) =
        school.post("/share/view", &[("shlink", "no es un enlace"), ("recipient", "Escuela Lincoln")]).await;
    assert_eq!(status, 400);
    assert!(
        html.contains("Eso no es un enlace para compartir") && !html.contains("That is not a share link"),
        "{html}"
    );
    let (status, html, _) = school.post("/share/view", &[("shlink", &shlink), ("recipient", "Escuela Lincoln")]).await;
    let html = unescape(&html);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<html lang=\"es\">") && html.contains("Expediente médico compartido: Para la escuela"));
    assert!(html.contains(&format!("el {today}")) || html.contains(&today), "shared on a Spanish date: {html}");
    assert!(html.contains("Penicillin") && !html.contains("Shared health record"), "{html}");

    // Corrections: an empty request is refused in Spanish; a denied one takes a statement.
    let (csrf, _) = bob.form_page(&format!("{home}/corrections")).await;
    let (status, html, _) = bob.post(&format!("{home}/corrections"), &[("csrf", &csrf), ("text", "  ")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("falta el cambio que pide") && !html.contains("is empty"), "{html}");
    let text = "Mi dirección ahora es Calle del Puerto 12.";
    assert_eq!(bob.post(&format!("{home}/corrections"), &[("csrf", &csrf), ("text", text)]).await.0, 303);
    let page = bob.view(&format!("{home}/corrections")).await;
    assert!(page.contains(&format!("Enviada el {today}")) || page.contains(&today), "Spanish dates: {page}");
    assert!(page.contains("En espera de respuesta") && !page.contains("Waiting for an answer"), "{page}");
    let (_, queue) = admin_get(&gw, "/admin/corrections").await;
    let id = queue["requests"][0]["id"].as_str().unwrap().to_string();
    let decision = serde_json::json!({"decision": "deny", "reason": "The record is accurate.", "by": "HIM desk"});
    assert_eq!(admin_post(&gw, &format!("/admin/corrections/{id}/decision"), decision).await.0, 200);
    let path = format!("{home}/corrections/{id}/disagreement");
    let (status, html, _) = bob.post(&path, &[("csrf", &csrf), ("text", "")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("falta la declaración de desacuerdo") && !html.contains("is empty"), "{html}");
    assert_eq!(bob.post(&path, &[("csrf", &csrf), ("text", "No estoy de acuerdo.")]).await.0, 303);
    let (status, html, _) = bob.post(&path, &[("csrf", &csrf), ("text", "Otra vez.")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("se presenta una sola vez") && !html.contains("can be filed once"), "{html}");
    let page = bob.view(&format!("{home}/corrections")).await;
    assert!(
        page.contains("Rechazada") && page.contains("Su declaración de desacuerdo: No estoy de acuerdo."),
        "{page}"
    );

    // Disclosures: the recipient and the purpose in Spanish, on the page and the printable copy.
    for path in [format!("{home}/disclosures"), format!("{home}/disclosures/print")] {
        let page = bob.view(&path).await;
        assert!(
            page.contains("Alguien que abrió un enlace para compartir")
                && page.contains("Compartido por el paciente: “Para la escuela”"),
            "{path}: {page}"
        );
        assert!(page.contains(&today), "{path}: a Spanish date");
        assert!(
            !page.contains("Someone who opened") && !page.contains("Shared by the patient") && !page.contains(" PM"),
            "{path}: no English left: {page}"
        );
    }
    // A proxy is sent to HIM, in Spanish.
    let ana = register(&gw, "Ana Rodriguez", "ana@example.org").await;
    let maya = grant_proxy(&gw, "ana@example.org", "ehr/pt-10007", "MTH", "ehr/rp-10001").await;
    assert_eq!(ana.get("/language/es?next=/").await.0, 303);
    let (status, html, _) = ana.get(&format!("/records/{maya}/disclosures")).await;
    assert_eq!(status, 403);
    assert!(html.contains("Solo para el paciente") && !html.contains("Only for the patient"), "{html}");

    // Proxies: a refused invitation, then one sent, its relationship and date in Spanish.
    let (csrf, _) = bob.form_page("/account/proxies").await;
    let form = [("csrf", csrf.as_str()), ("email", "not an address"), ("relationship", "FAMMEMB")];
    let (status, html, _) = bob.post("/account/proxies/invite", &form).await;
    assert_eq!(status, 400);
    assert!(html.contains("escriba el correo electrónico de la persona que invita"), "{html}");
    assert!(!html.contains("give the e-mail address"), "{html}");
    let form = [("csrf", csrf.as_str()), ("email", "tia@example.org"), ("relationship", "FAMMEMB")];
    assert_eq!(bob.post("/account/proxies/invite", &form).await.0, 303);
    let (_, html) = bob.form_page("/account/proxies").await;
    let html = unescape(&html);
    assert!(html.contains(&format!("(familiar, enviada el {today})")), "{html}");
    let main = &html[html.find("<main").unwrap()..];
    assert!(!main.contains(&chrono::Utc::now().format("%Y-%m-%d").to_string()), "no ISO date: {main}");
    assert!(!main.contains("(FAMMEMB") && !main.contains(", sent "), "{main}");

    // The zip's README.txt follows the language; English again after the switch.
    let zip = bob.http.get(bob.url(&format!("{home}/download.zip"))).send().await.unwrap();
    let files = unzip(&zip.bytes().await.unwrap());
    let readme = &files["README.txt"];
    assert!(readme.starts_with("Descarga del expediente médico\n==============================\n"), "{readme}");
    for spanish in [
        "Qué contiene este archivo",
        "recursos",
        "de FHIR R4, un objeto JSON por línea",
        " de 20",
        "manténgala en privado",
    ] {
        assert!(readme.contains(spanish), "README.txt has `{spanish}`: {readme}");
    }
    for english in ["What is in this file", "one JSON object per line", "keep it private", "Produced:"] {
        assert!(!readme.contains(english), "README.txt has no `{english}`: {readme}");
    }
    assert!(readme.contains("Observation.ndjson") && readme.contains("summary.html"), "file names kept");
    assert_eq!(bob.get("/language/en?next=/").await.0, 303);
    let zip = bob.http.get(bob.url(&format!("{home}/download.zip"))).send().await.unwrap();
    let english = &unzip(&zip.bytes().await.unwrap())["README.txt"];
    assert!(english.starts_with("Health record download\n") && english.contains("What is in this file"), "{english}");
    assert!(!english.contains("Qué contiene"), "{english}");
    gw.stop().await;
}

/// An app's bad authorization request is explained on a page in the person's language.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_refused_request_is_explained_in_spanish() {
    let gw = gateway().await;
    let b = browser_in(&gw, "es-MX,es;q=0.9");
    let query = "response_type=code&client_id=nadie&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&state=s";
    let (status, html, _) = b.get(&format!("/authorize?{query}")).await;
    assert_eq!(status, 400, "{html}");
    let html = unescape(&html);
    assert!(html.contains("<html lang=\"es\">") && html.contains("La aplicación “nadie” no está registrada"), "{html}");
    assert!(!html.contains("is not registered"), "{html}");
    let english = browser_in(&gw, "en-US");
    let (_, html, _) = english.get(&format!("/authorize?{query}")).await;
    assert!(unescape(&html).contains("The app \"nadie\" is not registered with Harbor Health."), "{html}");
    gw.stop().await;
}
