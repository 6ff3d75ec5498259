//! The front door (issue 11 part 8): `GET /` is a small public page — what the service is,
//! sign in and register, and for developers the FHIR base URL, its CapabilityStatement and
//! the SMART configuration — with the page security headers and no session; every other
//! unknown path still answers 404.

use crate::common::*;

#[tokio::test]
async fn the_front_door_says_what_this_is_and_where_to_go() {
    let gw = Gateway::start(&fixture_file_sources()).await;
    let resp = gw.http.get(format!("{}/", gw.origin)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers().clone();
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(header("content-type").starts_with("text/html"), "{h:?}");
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script on the page: {csp}");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(h.get("set-cookie").is_none(), "the front door starts no session: {h:?}");
    // minijinja escapes `/` in what it is given (`&#x2f;`); a browser reads it back.
    let html = unescape(&resp.text().await.unwrap());

    assert!(html.contains("patient access gateway"), "{html}");
    assert!(html.contains("href=\"/login\"") && html.contains("href=\"/register\""), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let metadata = format!("{}/metadata", gw.fhir);
    let smart = format!("{}/.well-known/smart-configuration", gw.origin);
    assert!(html.contains(&format!(">{}</code>", gw.fhir)), "the FHIR base URL: {html}");
    assert!(html.contains(&format!("href=\"{metadata}\"")) && html.contains(&format!("href=\"{smart}\"")), "{html}");
    // What it points developers at is there, without a token.
    for url in [&metadata, &smart] {
        let r = gw.http.get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
    }
    for link in ["/login", "/register"] {
        let r = gw.http.get(format!("{}{link}", gw.origin)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{link}");
    }

    let head = gw.http.head(format!("{}/", gw.origin)).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);

    for path in ["/nope", "/index.html", "/home"] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = gw.http.request(method.clone(), format!("{}{path}", gw.origin)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "{method} {path}");
        }
    }
}
