//! The FHIR R4 REST adapter: searches a source over HTTP (reqwest), following
//! `Bundle.link[next]` (absolute or relative) on the source's own origin only, with a
//! per-request timeout clipped to the caller's deadline, retries with backoff and jitter on
//! 429/502/503/504 honouring `Retry-After`, a concurrency limit, one token refresh on 401,
//! and a circuit breaker. It never follows a link to another origin (the source's
//! credentials must not leave it) and never changes the JSON it receives. Where the source's
//! CapabilityStatement offers them, a person's record is one paged `Patient/{id}/$everything`
//! and each search brings its Provenances along (`_revinclude=Provenance:target`); where it
//! offers Bulk Data `$export`, the gateway's exports ask it for its own (`rest/bulk.rs`).

mod bulk;

use super::breaker::{CircuitBreaker, Permit};
use super::retry::{backoff, is_retryable, parse_retry_after};
use super::upstream_auth::{tls, CredentialError, SourceCredentials};
use super::{Offer, SourceError, SourceStatus, SourceSystem};
use crate::config::SourceConfig;
use async_trait::async_trait;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

/// How many ids go into one `_id=` search.
const IDS_PER_SEARCH: usize = 50;

/// Which entries of a search answer are gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The matches (of the searched type).
    Matches,
    /// The matches, and the Provenances targeting them (`_revinclude=Provenance:target`).
    WithProvenance,
}

pub struct RestSource {
    name: String,
    display: String,
    base: Url,
    http: reqwest::Client,
    credentials: SourceCredentials,
    limit: Semaphore,
    breaker: CircuitBreaker,
    request_timeout: Duration,
    max_retries: u32,
    retry_backoff: Duration,
    max_retry_after: Duration,
    page_size: usize,
    max_pages: usize,
    stats: super::stats::SourceStats,
    /// What the source's CapabilityStatement last said it offers.
    offered: std::sync::RwLock<Option<super::Offer>>,
}

impl RestSource {
    pub fn new(config: &SourceConfig, base_dir: &Path) -> Result<RestSource, SourceError> {
        let fail = |message: String| SourceError::BadResponse { source_name: config.name.clone(), message };
        let url = config.url.as_deref().ok_or_else(|| fail("no url configured".into()))?;
        let mut base = Url::parse(url).map_err(|e| fail(format!("bad url: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let credential_error = |problem: CredentialError| SourceError::Credentials {
            source_name: config.name.clone(),
            problem: problem.into(),
        };
        let tls = || tls::client_builder(&config.tls, base_dir).map_err(credential_error);
        let credentials = SourceCredentials::from_config(config, base_dir, tls()?).map_err(credential_error)?;
        let http = tls()?
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        Ok(RestSource {
            name: config.name.clone(),
            display: config.display_name().to_string(),
            base,
            http,
            credentials,
            limit: Semaphore::new(config.max_concurrency),
            breaker: CircuitBreaker::new(config.breaker_failures, config.breaker_cooldown.std()),
            request_timeout: config.request_timeout.std(),
            max_retries: config.max_retries,
            retry_backoff: config.retry_backoff.std(),
            max_retry_after: config.max_retry_after.std(),
            page_size: config.page_size,
            max_pages: config.max_pages,
            stats: Default::default(),
            offered: std::sync::RwLock::new(None),
        })
    }

    fn unavailable(&self, message: impl Into<String>) -> SourceError {
        SourceError::Unavailable { source_name: self.name.clone(), message: message.into() }
    }

    fn deadline_exceeded(&self) -> SourceError {
        SourceError::DeadlineExceeded { source_name: self.name.clone() }
    }

    /// Runs a search and follows next links, gathering every `match` entry's resource (and,
    /// with `Keep::WithProvenance`, the `include` entries that are Provenances).
    async fn search_all(
        &self,
        resource_type: &str,
        params: &[(&str, String)],
        keep: Keep,
        deadline: Instant,
    ) -> Result<Vec<Value>, SourceError> {
        let mut url = self.base.join(resource_type).map_err(|e| self.unavailable(e.to_string()))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if keep == Keep::WithProvenance {
                q.append_pair("_revinclude", super::PROVENANCE_REVINCLUDE);
            }
            q.append_pair("_count", &self.page_size.to_string());
        }
        self.all_pages(url, "search", self.max_pages, deadline, |mode, r| {
            let t = crate::fhir::resource_type(r);
            (mode == "match" && t == Some(resource_type))
                || (keep == Keep::WithProvenance && mode == "include" && t == Some("Provenance"))
        })
        .await
    }

    /// Whether the source's CapabilityStatement offers `_revinclude=Provenance:target` on
    /// searches of `resource_type`.
    fn keep_for(&self, resource_type: &str) -> Keep {
        let revinclude = self
            .offered
            .read()
            .ok()
            .is_some_and(|o| o.as_ref().is_some_and(|o| o.revincludes_provenance(resource_type)));
        if revinclude {
            Keep::WithProvenance
        } else {
            Keep::Matches
        }
    }

    /// GETs `url` and follows next links (at most `max_pages` pages), gathering the resources
    /// of the entries `keep` accepts (given the entry's `search.mode`, `match` when absent).
    /// `what` names the interaction in errors.
    async fn all_pages(
        &self,
        mut url: Url,
        what: &str,
        max_pages: usize,
        deadline: Instant,
        keep: impl Fn(&str, &Value) -> bool,
    ) -> Result<Vec<Value>, SourceError> {
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let mut bundle = self.get_json(url.clone(), deadline).await?;
            if crate::fhir::resource_type(&bundle) != Some("Bundle") {
                return Err(SourceError::BadResponse {
                    source_name: self.name.clone(),
                    message: format!("{what} did not answer a Bundle"),
                });
            }
            // The kept resources are moved out of the parsed page, not copied.
            let entries = match bundle.get_mut("entry").map(Value::take) {
                Some(Value::Array(entries)) => entries,
                _ => Vec::new(),
            };
            for mut entry in entries {
                let mode = entry.pointer("/search/mode").and_then(Value::as_str).unwrap_or("match");
                if entry.get("resource").is_some_and(|r| keep(mode, r)) {
                    if let Some(r) = entry.get_mut("resource") {
                        out.push(r.take());
                    }
                }
            }
            match self.next_link(&bundle)? {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        Err(SourceError::BadResponse {
            source_name: self.name.clone(),
            message: format!("more than {max_pages} pages"),
        })
    }

    /// The next page's URL: absolute, or relative to the FHIR base; never another origin.
    fn next_link(&self, bundle: &Value) -> Result<Option<Url>, SourceError> {
        let next = bundle
            .get("link")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))
            .and_then(|l| l.get("url").and_then(Value::as_str));
        let Some(next) = next else { return Ok(None) };
        let url = self.base.join(next).map_err(|e| self.unavailable(format!("bad next link: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(SourceError::BadResponse {
                source_name: self.name.clone(),
                message: "next link points to another origin".into(),
            });
        }
        Ok(Some(url))
    }

    /// One GET with breaker, concurrency limit, retries and one re-authentication.
    async fn get_json(&self, url: Url, deadline: Instant) -> Result<Value, SourceError> {
        let permit = self.breaker.permit();
        if permit == Permit::Open {
            return Err(SourceError::CircuitOpen { source_name: self.name.clone() });
        }
        let started = std::time::Instant::now();
        let result = self.get_json_inner(url, deadline).await;
        self.stats.observe(started.elapsed(), result.is_ok());
        match &result {
            // Unreachable, erroring, too slow for the deadline or refusing our credentials:
            // the source is unhealthy for us.
            Err(
                SourceError::Auth { .. }
                | SourceError::Credentials { .. }
                | SourceError::Unavailable { .. }
                | SourceError::DeadlineExceeded { .. },
            ) => {
                self.breaker.record_failure();
            }
            // It answered (even if with a 4xx or an odd body): it is up.
            _ => self.breaker.record_success(),
        }
        result
    }

    async fn get_json_inner(&self, url: Url, deadline: Instant) -> Result<Value, SourceError> {
        let _slot = tokio::time::timeout_at(deadline, self.limit.acquire())
            .await
            .map_err(|_| self.deadline_exceeded())?
            .map_err(|_| self.unavailable("source closed"))?;
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.deadline_exceeded());
            }
            let timeout = self.request_timeout.min(deadline - now);
            let request = self.http.get(url.clone()).header("Accept", "application/fhir+json").timeout(timeout);
            let request = self.credentials.apply(request).await.map_err(|problem| SourceError::Credentials {
                source_name: self.name.clone(),
                problem: problem.into(),
            })?;
            let wait = match request.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if resp.status().is_success() {
                        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e, deadline))?;
                        return serde_json::from_slice(&bytes).map_err(|e| SourceError::BadResponse {
                            source_name: self.name.clone(),
                            message: format!("body is not JSON: {e}"),
                        });
                    }
                    if status == 401 && !reauthenticated && self.credentials.invalidate().await {
                        reauthenticated = true;
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(SourceError::Auth { source_name: self.name.clone(), status });
                    }
                    if !is_retryable(status) {
                        return Err(SourceError::BadResponse {
                            source_name: self.name.clone(),
                            message: format!("HTTP {status}"),
                        });
                    }
                    if attempt >= self.max_retries {
                        return Err(self.unavailable(format!("HTTP {status} after {} attempts", attempt + 1)));
                    }
                    let asked =
                        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                    match asked {
                        Some(d) if d > self.max_retry_after => {
                            return Err(
                                self.unavailable(format!("HTTP {status}, asked to retry after {}s", d.as_secs()))
                            )
                        }
                        Some(d) => d,
                        None => backoff(self.retry_backoff, attempt),
                    }
                }
                Err(e) => {
                    let err = self.transport_error(e, deadline);
                    if attempt >= self.max_retries || matches!(err, SourceError::DeadlineExceeded { .. }) {
                        return Err(err);
                    }
                    backoff(self.retry_backoff, attempt)
                }
            };
            if Instant::now() + wait >= deadline {
                return Err(self.deadline_exceeded());
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    // What the attachment fetch (`super::attachments`) uses of this source.
    pub(super) fn base_url(&self) -> &Url {
        &self.base
    }
    pub(super) fn client(&self) -> &reqwest::Client {
        &self.http
    }
    pub(super) fn timeout(&self) -> Duration {
        self.request_timeout
    }
    pub(super) fn name_owned(&self) -> String {
        self.name.clone()
    }
    pub(super) fn deadline_error(&self) -> SourceError {
        self.deadline_exceeded()
    }
    pub(super) fn transport(&self, e: reqwest::Error, deadline: Instant) -> SourceError {
        self.transport_error(e, deadline)
    }
    /// Retries, their base backoff and the longest `Retry-After` honoured.
    pub(super) fn retry_policy(&self) -> (u32, Duration, Duration) {
        (self.max_retries, self.retry_backoff, self.max_retry_after)
    }
    pub(super) fn slots(&self) -> &Semaphore {
        &self.limit
    }
    pub(super) fn breaker_open(&self) -> bool {
        self.breaker.permit() == Permit::Open
    }
    pub(super) async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, SourceError> {
        self.credentials
            .apply(request)
            .await
            .map_err(|problem| SourceError::Credentials { source_name: self.name.clone(), problem: problem.into() })
    }
    pub(super) async fn reauthenticate(&self) -> bool {
        self.credentials.invalidate().await
    }
    /// Counts a call in the statistics and the circuit breaker, as `get_json` does.
    pub(super) fn observe<T>(&self, took: std::time::Duration, result: &Result<T, SourceError>) {
        self.stats.observe(took, result.is_ok());
        match result {
            Err(
                SourceError::Auth { .. }
                | SourceError::Credentials { .. }
                | SourceError::Unavailable { .. }
                | SourceError::DeadlineExceeded { .. },
            ) => self.breaker.record_failure(),
            _ => self.breaker.record_success(),
        }
    }

    fn transport_error(&self, e: reqwest::Error, deadline: Instant) -> SourceError {
        if Instant::now() >= deadline {
            self.deadline_exceeded()
        } else if e.is_timeout() {
            self.unavailable("request timed out")
        } else if e.is_connect() {
            self.unavailable("connection refused or unreachable")
        } else {
            self.unavailable("transport error")
        }
    }
}

#[async_trait]
impl SourceSystem for RestSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn display(&self) -> &str {
        &self.display
    }
    fn base_url(&self) -> Option<&str> {
        Some(self.base.as_str())
    }
    async fn list_patients(&self, deadline: Instant) -> Result<Vec<Value>, SourceError> {
        self.search_all("Patient", &[], Keep::Matches, deadline).await
    }
    async fn patients_changed_since(&self, since: Option<&str>, deadline: Instant) -> Result<Vec<Value>, SourceError> {
        match since {
            Some(since) => {
                self.search_all("Patient", &[("_lastUpdated", format!("gt{since}"))], Keep::Matches, deadline).await
            }
            None => self.list_patients(deadline).await,
        }
    }
    async fn patients_changed_page(
        &self,
        since: Option<&str>,
        page: Option<&str>,
        deadline: Instant,
    ) -> Result<super::PatientPage, SourceError> {
        let url = match page {
            // A cursor this adapter made from the source's own next link (same origin).
            Some(next) => {
                let url = Url::parse(next).map_err(|e| self.unavailable(format!("bad next link: {e}")))?;
                if url.origin() != self.base.origin() {
                    return Err(SourceError::BadResponse {
                        source_name: self.name.clone(),
                        message: "next link points to another origin".into(),
                    });
                }
                url
            }
            None => {
                let mut url = self.base.join("Patient").map_err(|e| self.unavailable(e.to_string()))?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(since) = since {
                        q.append_pair("_lastUpdated", &format!("gt{since}"));
                    }
                    q.append_pair("_count", &self.page_size.to_string());
                }
                url
            }
        };
        let bundle = self.get_json(url, deadline).await?;
        if crate::fhir::resource_type(&bundle) != Some("Bundle") {
            return Err(SourceError::BadResponse {
                source_name: self.name.clone(),
                message: "search did not answer a Bundle".into(),
            });
        }
        let patients = bundle
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.pointer("/search/mode").and_then(Value::as_str).unwrap_or("match") == "match")
            .filter_map(|e| e.get("resource"))
            .filter(|r| crate::fhir::resource_type(r) == Some("Patient"))
            .cloned()
            .collect();
        let next = self.next_link(&bundle)?.map(String::from);
        Ok(super::PatientPage { patients, next })
    }
    async fn search_patients(&self, params: &[(&str, String)], deadline: Instant) -> Result<Vec<Value>, SourceError> {
        self.search_all("Patient", params, Keep::Matches, deadline).await
    }
    async fn patient_resources(
        &self,
        patient_id: &str,
        resource_type: &str,
        deadline: Instant,
    ) -> Result<Vec<Value>, SourceError> {
        // The parameter the source declared for the type (`patient`, else the type's
        // compartment parameter); `patient` while its CapabilityStatement is unknown.
        let param = self
            .offered
            .read()
            .ok()
            .and_then(|o| o.as_ref().and_then(|o| o.patient_param(resource_type)))
            .unwrap_or("patient");
        let keep = self.keep_for(resource_type);
        self.search_all(resource_type, &[(param, patient_id.to_string())], keep, deadline).await
    }
    async fn everything(&self, patient_id: &str, deadline: Instant) -> Result<Vec<Value>, SourceError> {
        if !crate::fhir::is_valid_id(patient_id) {
            return Err(SourceError::BadResponse {
                source_name: self.name.clone(),
                message: "a patient id is not a valid FHIR id".into(),
            });
        }
        let path = format!("Patient/{patient_id}/$everything");
        let mut url = self.base.join(&path).map_err(|e| self.unavailable(e.to_string()))?;
        url.query_pairs_mut().append_pair("_count", &self.page_size.to_string());
        // One answer instead of a search per type, so as many pages as those searches could
        // take; every entry but an OperationOutcome about the answer itself.
        let max_pages = self.max_pages.saturating_mul(crate::fhir::compartment::types().len().max(1));
        self.all_pages(url, "$everything", max_pages, deadline, |mode, r| {
            mode != "outcome" && crate::fhir::resource_type(r).is_some_and(|t| t != "OperationOutcome")
        })
        .await
    }
    async fn patients(&self, ids: &[String], deadline: Instant) -> Result<Vec<Value>, SourceError> {
        let keep = self.keep_for("Patient");
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_SEARCH) {
            out.extend(self.search_all("Patient", &[("_id", chunk.join(","))], keep, deadline).await?);
        }
        Ok(out)
    }
    async fn offer(&self, deadline: Instant) -> Result<Option<Offer>, SourceError> {
        let url = self.base.join("metadata").map_err(|e| self.unavailable(e.to_string()))?;
        let statement = self.get_json(url, deadline).await?;
        let offer = Offer::from_capability_statement(&statement).ok_or_else(|| SourceError::BadResponse {
            source_name: self.name.clone(),
            message: "metadata did not answer a CapabilityStatement".into(),
        })?;
        if let Ok(mut held) = self.offered.write() {
            *held = Some(offer.clone());
        }
        Ok(Some(offer))
    }
    async fn count(&self, resource_type: &str, deadline: Instant) -> Result<Option<usize>, SourceError> {
        let mut url = self.base.join(resource_type).map_err(|e| self.unavailable(e.to_string()))?;
        url.query_pairs_mut().append_pair("_summary", "count");
        let bundle = self.get_json(url, deadline).await?;
        Ok(bundle.get("total").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()))
    }
    async fn read_many(
        &self,
        resource_type: &str,
        ids: &[String],
        deadline: Instant,
    ) -> Result<Vec<Value>, SourceError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_SEARCH) {
            out.extend(self.search_all(resource_type, &[("_id", chunk.join(","))], Keep::Matches, deadline).await?);
        }
        Ok(out)
    }
    async fn bulk_kick_off(&self, ask: &super::bulk::BulkAsk, deadline: Instant) -> Result<String, SourceError> {
        self.rest_bulk_kick_off(ask, deadline).await
    }
    async fn bulk_poll(&self, status_url: &str, deadline: Instant) -> Result<super::bulk::BulkPoll, SourceError> {
        self.rest_bulk_poll(status_url, deadline).await
    }
    async fn bulk_file(
        &self,
        url: &str,
        with_token: bool,
        deadline: Instant,
    ) -> Result<Box<dyn super::bulk::NdjsonLines>, SourceError> {
        self.rest_bulk_file(url, with_token, deadline).await
    }
    async fn bulk_cancel(&self, status_url: &str, deadline: Instant) -> Result<(), SourceError> {
        self.rest_bulk_cancel(status_url, deadline).await
    }
    fn status(&self) -> SourceStatus {
        let failures = self.breaker.consecutive_failures();
        let state = if self.breaker.is_open() {
            "down"
        } else if failures > 0 {
            "degraded"
        } else {
            "up"
        };
        SourceStatus { name: self.name.clone(), display: self.display.clone(), state, consecutive_failures: failures }
    }

    fn stats(&self) -> Option<&super::stats::SourceStats> {
        Some(&self.stats)
    }
    fn attachment_key(&self, url: &str) -> Option<String> {
        self.rest_attachment_key(url)
    }
    async fn attachment(
        &self,
        url: &str,
        content_type: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<super::attachments::AttachmentBody>, SourceError> {
        self.rest_attachment(url, content_type, deadline).await
    }
}

#[cfg(test)]
mod tests;
