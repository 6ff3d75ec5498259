//! The REST adapter's Bulk Data client (IG 2.0): kick-off with `Prefer: respond-async`,
//! status polls that read `Retry-After`, and output files streamed a chunk at a time and
//! split into resources (never a whole file in memory). Every URL it follows (status,
//! files) must be on the source's own origin — the source's credentials never leave it —
//! and every call goes through the source's concurrency limit, credentials (one
//! re-authentication on 401) and statistics. It never logs a resource.

use super::RestSource;
use crate::sources::bulk::{BulkAsk, BulkManifest, BulkPoll, LineSplitter, NdjsonLines};
use crate::sources::retry::parse_retry_after;
use crate::sources::SourceError;
use async_trait::async_trait;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

/// The longest NDJSON line accepted (one resource).
const MAX_LINE: usize = 64 * 1024 * 1024;

impl RestSource {
    fn bad(&self, message: impl Into<String>) -> SourceError {
        SourceError::BadResponse { source_name: self.name_owned(), message: message.into() }
    }

    /// `url` parsed, and only when it is on the source's own origin.
    fn own_url(&self, url: &str) -> Result<Url, SourceError> {
        let url = self.base_url().join(url).map_err(|_| self.bad("a Bulk Data URL is not a URL"))?;
        if url.origin() != self.base_url().origin() {
            return Err(self.bad("a Bulk Data URL points to another origin"));
        }
        Ok(url)
    }

    /// Sends one request (built anew for a retry after re-authentication) within the
    /// deadline; `with_token` adds the source's credentials.
    async fn bulk_send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        with_token: bool,
        whole_body_timeout: bool,
        deadline: Instant,
    ) -> Result<reqwest::Response, SourceError> {
        let _slot = tokio::time::timeout_at(deadline, self.slots().acquire())
            .await
            .map_err(|_| self.deadline_error())?
            .map_err(|_| self.bad("source closed"))?;
        let mut reauthenticated = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.deadline_error());
            }
            let mut request = build();
            if whole_body_timeout {
                request = request.timeout(self.timeout().min(deadline - now));
            }
            if with_token {
                request = self.authorize(request).await?;
            }
            let started = std::time::Instant::now();
            let sent = tokio::time::timeout_at(deadline, request.send()).await;
            let result = match sent {
                Err(_) => Err(self.deadline_error()),
                Ok(Err(e)) => Err(self.transport(e, deadline)),
                Ok(Ok(resp)) if resp.status().as_u16() == 401 && with_token && !reauthenticated => {
                    reauthenticated = true;
                    if self.reauthenticate().await {
                        continue;
                    }
                    Err(SourceError::Auth { source_name: self.name_owned(), status: 401 })
                }
                Ok(Ok(resp)) if matches!(resp.status().as_u16(), 401 | 403) => {
                    Err(SourceError::Auth { source_name: self.name_owned(), status: resp.status().as_u16() })
                }
                Ok(Ok(resp)) => Ok(resp),
            };
            self.observe(started.elapsed(), &result);
            return result;
        }
    }

    pub(super) async fn rest_bulk_kick_off(&self, ask: &BulkAsk, deadline: Instant) -> Result<String, SourceError> {
        let path = match &ask.group {
            Some(g) if crate::fhir::is_valid_id(g) => format!("Group/{g}/$export"),
            Some(_) => return Err(self.bad("a Group id is not a valid FHIR id")),
            None => "$export".to_string(),
        };
        let mut url = self.base_url().join(&path).map_err(|_| self.bad("bad kick-off URL"))?;
        {
            let mut q = url.query_pairs_mut();
            if !ask.types.is_empty() {
                q.append_pair("_type", &ask.types.join(","));
            }
            if let Some(since) = &ask.since {
                q.append_pair("_since", since);
            }
        }
        let build = || {
            self.client().get(url.clone()).header("Accept", "application/fhir+json").header("Prefer", "respond-async")
        };
        let resp = self.bulk_send(build, true, true, deadline).await?;
        let status = resp.status().as_u16();
        if status != 202 {
            return Err(self.bad(format!("$export kick-off answered HTTP {status}")));
        }
        let location = resp
            .headers()
            .get("content-location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.bad("$export kick-off gave no Content-Location"))?;
        Ok(self.own_url(location)?.to_string())
    }

    pub(super) async fn rest_bulk_poll(&self, status_url: &str, deadline: Instant) -> Result<BulkPoll, SourceError> {
        let url = self.own_url(status_url)?;
        let build = || self.client().get(url.clone()).header("Accept", "application/json");
        let resp = self.bulk_send(build, true, true, deadline).await?;
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        match resp.status().as_u16() {
            // 429: polled too often (the IG allows it); wait as told.
            202 | 429 => Ok(BulkPoll::Running { retry_after }),
            200 => {
                let bytes = resp.bytes().await.map_err(|e| self.transport(e, deadline))?;
                let manifest: BulkManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| self.bad(format!("the export manifest is not readable: {e}")))?;
                Ok(BulkPoll::Done(manifest))
            }
            status => Err(self.bad(format!("the export failed: status HTTP {status}"))),
        }
    }

    pub(super) async fn rest_bulk_file(
        &self,
        url: &str,
        with_token: bool,
        deadline: Instant,
    ) -> Result<Box<dyn NdjsonLines>, SourceError> {
        let url = self.own_url(url)?;
        let build = || self.client().get(url.clone()).header("Accept", "application/fhir+ndjson");
        let resp = self.bulk_send(build, with_token, false, deadline).await?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.bad(format!("an export file answered HTTP {status}")));
        }
        Ok(Box::new(FileLines {
            resp,
            lines: LineSplitter::default(),
            ended: false,
            deadline,
            chunk_timeout: self.timeout(),
            source_name: self.name_owned(),
        }))
    }

    pub(super) async fn rest_bulk_cancel(&self, status_url: &str, deadline: Instant) -> Result<(), SourceError> {
        let url = self.own_url(status_url)?;
        let build = || self.client().delete(url.clone());
        self.bulk_send(build, true, true, deadline).await.map(|_| ())
    }
}

/// An output file being read: chunks as they arrive, split into lines.
struct FileLines {
    resp: reqwest::Response,
    lines: LineSplitter,
    ended: bool,
    deadline: Instant,
    /// The longest wait for the next chunk.
    chunk_timeout: std::time::Duration,
    source_name: String,
}

impl FileLines {
    fn bad(&self, message: impl Into<String>) -> SourceError {
        SourceError::BadResponse { source_name: self.source_name.clone(), message: message.into() }
    }

    fn parse(&self, line: &[u8]) -> Result<Value, SourceError> {
        let value: Value =
            serde_json::from_slice(line).map_err(|e| self.bad(format!("an export file line is not JSON: {e}")))?;
        if crate::fhir::resource_type(&value).is_none() {
            return Err(self.bad("an export file line is not a resource"));
        }
        Ok(value)
    }
}

#[async_trait]
impl NdjsonLines for FileLines {
    async fn next(&mut self) -> Result<Option<Value>, SourceError> {
        loop {
            if let Some(line) = self.lines.line() {
                let line = line.to_vec();
                return self.parse(&line).map(Some);
            }
            if self.ended {
                return match self.lines.rest().map(<[u8]>::to_vec) {
                    Some(line) => self.parse(&line).map(Some),
                    None => Ok(None),
                };
            }
            if self.lines.pending() > MAX_LINE {
                return Err(self.bad("an export file line is too long"));
            }
            let wait = (Instant::now() + self.chunk_timeout).min(self.deadline);
            let chunk = match tokio::time::timeout_at(wait, self.resp.chunk()).await {
                Err(_) if Instant::now() >= self.deadline => {
                    return Err(SourceError::DeadlineExceeded { source_name: self.source_name.clone() })
                }
                Err(_) => {
                    return Err(SourceError::Unavailable {
                        source_name: self.source_name.clone(),
                        message: "an export file stalled".into(),
                    })
                }
                Ok(Err(_)) => {
                    return Err(SourceError::Unavailable {
                        source_name: self.source_name.clone(),
                        message: "an export file was cut off".into(),
                    })
                }
                Ok(Ok(c)) => c,
            };
            match chunk {
                Some(bytes) => self.lines.push(&bytes),
                None => self.ended = true,
            }
        }
    }
}
