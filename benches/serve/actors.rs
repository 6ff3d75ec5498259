//! The mixed phase's traffic besides the FHIR reads and searches: a patient's browser
//! session viewing their record's pages, an app holding refresh tokens (each refresh rotates
//! the token, so every chain is one task), and a partner's Bulk `$export` run again and
//! again. Each is set up the way a person or a client does it — registration, the mailed
//! verification link, enrollment, the standalone launch with PKCE — against the gateway's
//! pages and endpoints, then sends until the deadline, every request a [`Sample`].

use crate::child::{ChildGateway, APP_CLIENT, APP_REDIRECT, PARTNER_TOKEN};
use crate::load::{Outcome, Sample};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// The sections of a record as paths under `/records/{link}` (what a person clicks through).
const RECORD_PAGES: &[&str] =
    &["", "/results", "/medications", "/allergies", "/immunizations", "/problems", "/visits", "/care-team"];
const PASSWORD: &str = "harbor-lights-at-dusk";
/// Bob Martinez as the fixtures hold him (the date before the fixtures' shift).
const BOB: (&str, &str, &str) = ("HG100142", "1967-06-18", "martinez");

/// A signed-in browser: a cookie jar, no automatic redirects.
pub struct Browser {
    pub http: reqwest::Client,
    origin: String,
    /// The record link `/records` leads to.
    pub link: String,
}

fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("browser client")
}

impl Browser {
    async fn get(&self, path: &str) -> Result<(u16, String, Option<String>), String> {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.origin) };
        let r = self.http.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok((r.status().as_u16(), r.text().await.map_err(|e| e.to_string())?, location))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<(u16, String, Option<String>), String> {
        let url = format!("{}{path}", self.origin);
        let r = self.http.post(&url).form(form).send().await.map_err(|e| format!("{url}: {e}"))?;
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok((r.status().as_u16(), r.text().await.map_err(|e| e.to_string())?, location))
    }

    /// A form page's HTML and its CSRF token.
    async fn form(&self, path: &str) -> Result<(String, String), String> {
        let (status, html, _) = self.get(path).await?;
        if status != 200 {
            return Err(format!("{path} answered {status}"));
        }
        let csrf = values_of(&html, "csrf").into_iter().next().ok_or_else(|| format!("{path}: no CSRF field"))?;
        Ok((csrf, html))
    }

    /// Registers Bob, follows the mailed verification link and enrolls him (MRN, birth
    /// date, family name): a signed-in browser with his record.
    pub async fn bob(gw: &ChildGateway, shift_days: i64) -> Result<Browser, String> {
        let mut b = Browser { http: browser_client(), origin: gw.origin.clone(), link: String::new() };
        let username = "bob@example.org";
        let (csrf, _) = b.form("/register").await?;
        let form =
            [("csrf", csrf.as_str()), ("display_name", "Bob Martinez"), ("username", username), ("password", PASSWORD)];
        let (status, html, _) = b.post("/register", &form).await?;
        if status != 303 {
            return Err(format!("/register answered {status}: {html}"));
        }
        let token = verification_token(&gw.dir.join("mail")).await?;
        let (status, _, _) = b.get(&format!("/verify-email?token={token}")).await?;
        if status != 200 {
            return Err(format!("/verify-email answered {status}"));
        }
        let birth = chrono::NaiveDate::parse_from_str(BOB.1, "%Y-%m-%d").map_err(|e| e.to_string())?
            + chrono::Duration::days(shift_days);
        let birth = birth.format("%Y-%m-%d").to_string();
        let (csrf, _) = b.form("/enroll").await?;
        let form = [("csrf", csrf.as_str()), ("mrn", BOB.0), ("birth_date", birth.as_str()), ("family", BOB.2)];
        let (status, html, _) = b.post("/enroll", &form).await?;
        if status != 303 {
            return Err(format!("/enroll answered {status}: {html}"));
        }
        let (status, _, location) = b.get("/records").await?;
        b.link = match (status, location) {
            (303, Some(l)) if l.starts_with("/records/") => l["/records/".len()..].to_string(),
            (s, l) => return Err(format!("/records answered {s} {l:?} (one record expected)")),
        };
        Ok(b)
    }

    /// The standalone launch of the bench's app (PKCE, every offered scope allowed): the
    /// token answer, with a refresh token (`offline_access`).
    pub async fn launch_app(&self, fhir: &str) -> Result<Value, String> {
        let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
            + &URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", APP_CLIENT)
            .append_pair("redirect_uri", APP_REDIRECT)
            .append_pair("scope", "launch/patient openid fhirUser offline_access patient/*.rs")
            .append_pair("state", "bench")
            .append_pair("aud", fhir)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let (status, _, location) = self.get(&format!("/authorize?{}", q.finish())).await?;
        if (status, location.as_deref()) != (303, Some("/authorize/pick")) {
            return Err(format!("/authorize answered {status} {location:?}"));
        }
        let (csrf, html) = self.form("/authorize/pick").await?;
        let link = values_of(&html, "link_id").into_iter().next().ok_or("/authorize/pick: no record to pick")?;
        let (status, _, _) = self.post("/authorize/pick", &[("csrf", &csrf), ("link_id", &link)]).await?;
        if status != 303 {
            return Err(format!("/authorize/pick answered {status}"));
        }
        let (csrf, html) = self.form("/authorize/consent").await?;
        let scopes = values_of(&html, "scope");
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("decision", "allow")];
        form.extend(scopes.iter().map(|s| ("scope", s.as_str())));
        let (status, _, location) = self.post("/authorize/consent", &form).await?;
        let callback = location.filter(|_| status == 303).ok_or(format!("/authorize/consent answered {status}"))?;
        let code = url::Url::parse(&callback)
            .map_err(|e| e.to_string())?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| format!("no code in {callback}"))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", APP_REDIRECT),
            ("client_id", APP_CLIENT),
            ("code_verifier", verifier.as_str()),
        ];
        let r = self.http.post(format!("{}/token", self.origin)).form(&form).send().await.map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("/token answered {}", r.status()));
        }
        r.json().await.map_err(|e| e.to_string())
    }
}

/// The `value` of every input named `name` (with the template's escapes undone).
fn values_of(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .filter_map(|(i, _)| {
            let s = i + marker.len();
            let end = html[s..].find('"')?;
            Some(
                html[s..s + end]
                    .replace("&#x2F;", "/")
                    .replace("&#x2f;", "/")
                    .replace("&#x3D;", "=")
                    .replace("&#x3d;", "=")
                    .replace("&#x27;", "'")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&"),
            )
        })
        .collect()
}

/// The 64-hex-digit token of the verification link in the gateway's mail folder.
async fn verification_token(folder: &std::path::Path) -> Result<String, String> {
    for _ in 0..500 {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            // Quoted-printable: soft line breaks go, `=3D` is `=`.
            let text = raw.replace("=\r\n", "").replace("=3D", "=");
            if let Some(at) = text.find("/verify-email?token=") {
                let token: String = text[at + 20..].chars().take_while(char::is_ascii_hexdigit).collect();
                if token.len() == 64 {
                    return Ok(token);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("no verification mail in {}", folder.display()))
}

/// One request timed from `started`: its route, status-derived outcome and size.
fn sample(route: &'static str, phase_start: Instant, started: Instant, bytes: usize, outcome: Outcome) -> Sample {
    Sample { route, sent: started.duration_since(phase_start), latency: started.elapsed(), bytes, outcome }
}

/// Views the record's pages one after the other until `deadline`.
pub async fn page_views(b: &Browser, start: Instant, deadline: Instant, offset: usize) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut i = offset;
    while Instant::now() < deadline {
        let path = format!("{}/records/{}{}", b.origin, b.link, RECORD_PAGES[i % RECORD_PAGES.len()]);
        i += 1;
        let started = Instant::now();
        let (bytes, outcome) = match b.http.get(&path).send().await {
            Ok(r) if r.status() == 200 => match r.bytes().await {
                Ok(body) => (body.len(), Outcome::Ok),
                Err(_) => (0, Outcome::Error),
            },
            _ => (0, Outcome::Error),
        };
        samples.push(sample("page view", start, started, bytes, outcome));
    }
    samples
}

/// Refreshes one token chain every `every` until `deadline` (each answer's refresh token is
/// the next one's), reading the patient with each new access token.
pub async fn refreshes(
    http: &reqwest::Client,
    gw: (&str, &str),
    first: &Value,
    patient: &str,
    every: Duration,
    start: Instant,
    deadline: Instant,
) -> Vec<Sample> {
    let (origin, fhir) = gw;
    let mut samples = Vec::new();
    let Some(mut refresh) = first["refresh_token"].as_str().map(str::to_string) else {
        return samples;
    };
    while Instant::now() < deadline {
        tokio::time::sleep(every).await;
        let started = Instant::now();
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", APP_CLIENT)];
        let answer = match http.post(format!("{origin}/token")).form(&form).send().await {
            Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
            _ => None,
        };
        let tokens = answer.as_ref().and_then(|a| Some((a["access_token"].as_str()?, a["refresh_token"].as_str()?)));
        let Some((access, next)) = tokens else {
            samples.push(sample("token refresh", start, started, 0, Outcome::Error));
            // The chain is broken (a refused refresh revokes nothing here, but its token is spent).
            return samples;
        };
        samples.push(sample("token refresh", start, started, 0, Outcome::Ok));
        refresh = next.to_string();
        let started = Instant::now();
        let read = http.get(format!("{fhir}/Patient/{patient}")).bearer_auth(access).send().await;
        let outcome = match read {
            Ok(r) if r.status() == 200 => Outcome::Ok,
            _ => Outcome::Error,
        };
        samples.push(sample("app read (refreshed token)", start, started, 0, outcome));
    }
    samples
}

/// A partner's system-level Bulk `$export`, run again and again until `deadline`: kick-off,
/// status polls (every 0.5–2 s, honouring `Retry-After`; a 429 there is counted as a
/// documented answer, not an error), every output file downloaded, the job deleted.
pub async fn exports(http: &reqwest::Client, fhir: &str, start: Instant, deadline: Instant) -> (Vec<Sample>, usize) {
    let mut samples = Vec::new();
    let mut completed = 0;
    while Instant::now() < deadline {
        let started = Instant::now();
        let kick_off = http
            .get(format!("{fhir}/$export"))
            .header("Accept", "application/fhir+json")
            .header("Prefer", "respond-async")
            .bearer_auth(PARTNER_TOKEN)
            .send()
            .await;
        let status_url = match kick_off {
            Ok(r) if r.status() == 202 => {
                r.headers().get("content-location").and_then(|v| v.to_str().ok()).map(str::to_string)
            }
            _ => None,
        };
        let Some(status_url) = status_url else {
            samples.push(sample("export kick-off", start, started, 0, Outcome::Error));
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        samples.push(sample("export kick-off", start, started, 0, Outcome::Ok));
        let manifest = loop {
            let started = Instant::now();
            let r = http.get(&status_url).header("Accept", "application/json").bearer_auth(PARTNER_TOKEN).send().await;
            let (code, wait, body) = match r {
                Ok(r) => {
                    let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok());
                    let code = r.status().as_u16();
                    (code, wait.unwrap_or(1.0), if code == 200 { r.json::<Value>().await.ok() } else { None })
                }
                Err(_) => (0, 1.0, None),
            };
            let outcome = match code {
                200 if body.is_some() => Outcome::Ok,
                202 => Outcome::Ok,
                429 => Outcome::Partial,
                _ => Outcome::Error,
            };
            samples.push(sample("export status", start, started, 0, outcome));
            match (code, body) {
                (200, Some(manifest)) => break Some(manifest),
                (202 | 429, _) if Instant::now() < deadline + Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_secs_f64(wait.clamp(0.5, 2.0))).await;
                }
                _ => break None,
            }
        };
        let Some(manifest) = manifest else { continue };
        for output in manifest["output"].as_array().into_iter().flatten() {
            let Some(url) = output["url"].as_str() else { continue };
            let started = Instant::now();
            let (bytes, outcome) =
                match http.get(url).header("Accept", "application/fhir+ndjson").bearer_auth(PARTNER_TOKEN).send().await
                {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(b) => (b.len(), Outcome::Ok),
                        Err(_) => (0, Outcome::Error),
                    },
                    _ => (0, Outcome::Error),
                };
            samples.push(sample("export file", start, started, bytes, outcome));
        }
        let _ = http.delete(&status_url).bearer_auth(PARTNER_TOKEN).send().await;
        completed += 1;
    }
    (samples, completed)
}
