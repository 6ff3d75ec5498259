//! A person's browser for the page tests: a cookie jar and no automatic redirects, so each
//! test sees every 303 and where it points.

use super::Gateway;
use std::time::Duration;

pub struct Browser {
    pub http: reqwest::Client,
    pub origin: String,
}

/// The sections of a record, as paths under `/records/{link}`.
pub const RECORD_PAGES: &[&str] = &[
    "",
    "/results",
    "/medications",
    "/allergies",
    "/immunizations",
    "/problems",
    "/visits",
    "/documents",
    "/care-team",
    "/access-log",
    "/apps",
];

impl Browser {
    /// A record page that must answer 200, with the record-page headers checked (no-store,
    /// a strict CSP, no script or inline style); the HTML with the template's escapes of
    /// ordinary characters undone (`&lt;` and `&gt;` stay, so no markup appears that was
    /// not there).
    pub async fn view(&self, path: &str) -> String {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        let html = r.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {html}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!html.contains("<script") && !html.contains("style="), "{path}: no script, no inline style");
        unescape(&html)
    }

    /// Every page of a record, concatenated (for what must appear nowhere).
    pub async fn every_page(&self, link: &str) -> String {
        let mut all = String::new();
        for p in RECORD_PAGES {
            all.push_str(&self.view(&format!("/records/{link}{p}")).await);
        }
        all
    }

    pub fn new(gw: &Gateway) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Browser { http, origin: gw.origin.clone() }
    }

    /// A path on the gateway, or an absolute URL (another host, such as an identity provider).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.origin)
        }
    }

    /// (status, body, Location).
    pub async fn get(&self, path_or_url: &str) -> (u16, String, Option<String>) {
        let r = self.http.get(self.url(path_or_url)).send().await.unwrap();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), r.text().await.unwrap(), location)
    }

    pub async fn post(&self, path_or_url: &str, form: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let r = self.http.post(self.url(path_or_url)).form(form).send().await.unwrap();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), r.text().await.unwrap(), location)
    }

    /// GETs a page that must answer 200, with its CSRF token.
    pub async fn form_page(&self, path: &str) -> (String, String) {
        let (status, html, _) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {html}");
        (csrf(&html), html)
    }
}

/// The page's CSRF token.
pub fn csrf(html: &str) -> String {
    value_of(html, "csrf").into_iter().next().expect("a CSRF field")
}

/// The `value` of every input named `name`, unescaped.
pub fn value_of(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            let s = i + marker.len();
            unescape(&html[s..s + html[s..].find('"').unwrap()])
        })
        .collect()
}

/// Undoes the HTML escaping templates apply to attribute values.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#x2f;", "/")
        .replace("&#x3D;", "=")
        .replace("&#x3d;", "=")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}
