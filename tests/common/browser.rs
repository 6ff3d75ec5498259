//! A person's browser for the page tests: a cookie jar and no automatic redirects, so each
//! test sees every 303 and where it points.

use super::Gateway;
use std::time::Duration;

pub struct Browser {
    pub http: reqwest::Client,
    pub origin: String,
}

impl Browser {
    pub fn new(gw: &Gateway) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
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
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
