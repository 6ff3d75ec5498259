//! Attachments: the content an attachment's `url` names (`DocumentReference.content.attachment`,
//! `DiagnosticReport.presentedForm`, `Media.content`) — a `Binary/{id}` of the source, or a
//! URL on the source's own origin — fetched from the source that holds the pointing resource,
//! with that source's credentials, and handed on as a stream of chunks ([`AttachmentBody`]).
//! A REST source is asked for the raw content (`Accept` the attachment's type); a folder of
//! files serves the files in its `Binary/` folder (`{id}.{ext}`, the type from the
//! extension). A REST fetch takes one of the source's concurrent-call slots until the answer
//! starts, counts in its circuit breaker and statistics, re-authenticates once on 401 and
//! retries 429/502/503/504 honouring `Retry-After`, like every call to the source. It never
//! buffers a whole attachment (a source answering with a FHIR `Binary`
//! resource instead of raw content is the one exception: JSON must be read whole, and is
//! capped), never follows a URL to another origin (the source's credentials must not leave
//! it), and knows nothing of gateway ids, viewers or policy.

use super::rest::RestSource;
use super::retry::{backoff, is_retryable, parse_retry_after};
use super::SourceError;
use base64::Engine;
use futures::stream::{self, BoxStream, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use url::Url;

/// The largest FHIR `Binary` JSON answer read (the content is inside it, base64).
const MAX_BINARY_JSON: usize = 64 * 1024 * 1024;

/// Chunks of generated content (a test double's large attachments).
const GENERATED_CHUNK: usize = 64 * 1024;

/// The content of one attachment, as it arrives.
pub struct AttachmentBody {
    /// The content type the source gave (`Content-Type`, or the file's extension).
    pub content_type: Option<String>,
    /// The length in bytes, when the source said.
    pub length: Option<u64>,
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

impl std::fmt::Debug for AttachmentBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentBody")
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// The Binary id a URL names when it is a plain `Binary/{id}` (optionally `_history`).
pub fn binary_id(url: &str) -> Option<&str> {
    match crate::fhir::reference::parse(url) {
        Some(("Binary", id)) => Some(id),
        _ => None,
    }
}

/// Whether `url` is relative (no scheme): relative to the source's FHIR base.
fn is_relative(url: &str) -> bool {
    Url::parse(url).is_err() && !url.starts_with("//")
}

/// A source's key for an attachment URL: the Binary id of a relative `Binary/{id}`; for
/// another URL it serves, a digest of the URL (`u` + 32 hex digits) — a valid FHIR id.
fn key_of(url: &str) -> String {
    match binary_id(url) {
        Some(id) => id.to_string(),
        None => format!("u{}", &hex::encode(Sha256::digest(url.as_bytes()))[..32]),
    }
}

/// The content type for a file name's extension.
pub fn content_type_of(path: &Path) -> &'static str {
    match path.extension().and_then(|x| x.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("pdf") => "application/pdf",
        Some("xml") => "application/xml",
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("rtf") => "application/rtf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("dcm") => "application/dicom",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Whether an `Accept` header allows a WADO-RS series as DICOM instances
/// (`multipart/related; type="application/dicom"`, the default type of `multipart/related`,
/// or any type). No header allows it.
pub fn accepts_dicom_instances(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<String> = parts.map(|p| p.to_ascii_lowercase().replace(['"', ' '], "")).collect();
        let refused = params.iter().any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
        let dicom = params.iter().all(|p| !p.starts_with("type=") || p == "type=application/dicom");
        !refused && (essence == "*/*" || essence == "multipart/*" || (essence == "multipart/related" && dicom))
    })
}

/// Byte `i` of generated content: a fixed, cheap pattern anyone can recompute.
pub fn generated_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// One stored attachment of a folder of files (or generated content, for tests and the
/// demo's large-document case).
#[derive(Debug, Clone)]
pub enum StoredBinary {
    File {
        path: PathBuf,
        content_type: String,
    },
    /// `length` bytes of [`generated_byte`], made while they are sent.
    Generated {
        length: u64,
        content_type: String,
    },
}

/// The attachments a folder of files serves: `Binary/{id}.{ext}` beside the resources.
#[derive(Debug, Clone, Default)]
pub struct BinaryFiles {
    by_id: BTreeMap<String, StoredBinary>,
}

impl BinaryFiles {
    /// The files of `dir` (none when it does not exist), by id: the file name without its
    /// last extension. Only names that are valid FHIR ids are served.
    pub fn load(dir: &Path) -> std::io::Result<BinaryFiles> {
        let mut files = BinaryFiles::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if !path.is_file() {
                continue;
            }
            let Some(id) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if crate::fhir::is_valid_id(id) {
                let content_type = content_type_of(&path).to_string();
                files.by_id.insert(id.to_string(), StoredBinary::File { path: path.clone(), content_type });
            }
        }
        Ok(files)
    }

    pub fn insert(&mut self, id: &str, binary: StoredBinary) {
        self.by_id.insert(id.to_string(), binary);
    }

    pub fn get(&self, id: &str) -> Option<&StoredBinary> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The content of Binary `id`, streamed from its file (or generated), if there is one.
    pub async fn open(&self, id: &str) -> std::io::Result<Option<AttachmentBody>> {
        match self.by_id.get(id) {
            None => Ok(None),
            Some(StoredBinary::File { path, content_type }) => {
                let file = tokio::fs::File::open(path).await?;
                let length = file.metadata().await?.len();
                Ok(Some(AttachmentBody {
                    content_type: Some(content_type.clone()),
                    length: Some(length),
                    stream: tokio_util::io::ReaderStream::new(file).boxed(),
                }))
            }
            Some(StoredBinary::Generated { length, content_type }) => Ok(Some(AttachmentBody {
                content_type: Some(content_type.clone()),
                length: Some(*length),
                stream: generated(*length),
            })),
        }
    }
}

/// `length` bytes of [`generated_byte`], in chunks.
fn generated(length: u64) -> BoxStream<'static, std::io::Result<Bytes>> {
    stream::unfold(0u64, move |at| async move {
        if at >= length {
            return None;
        }
        let n = (length - at).min(GENERATED_CHUNK as u64);
        let chunk: Vec<u8> = (at..at + n).map(generated_byte).collect();
        Some((Ok(Bytes::from(chunk)), at + n))
    })
    .boxed()
}

/// A folder's key for an attachment URL: relative `Binary/{id}` only.
pub(super) fn files_key(url: &str) -> Option<String> {
    if is_relative(url) {
        binary_id(url).map(str::to_string)
    } else {
        None
    }
}

impl RestSource {
    /// The URL an attachment URL names on this source, when it is one: relative to the
    /// FHIR base, or absolute on the source's own origin.
    fn attachment_url(&self, url: &str) -> Option<Url> {
        let base = self.base_url();
        let full = if is_relative(url) { base.join(url).ok()? } else { Url::parse(url).ok()? };
        (full.origin() == base.origin() && matches!(full.scheme(), "http" | "https")).then_some(full)
    }

    /// See [`super::SourceSystem::attachment_key`].
    pub(super) fn rest_attachment_key(&self, url: &str) -> Option<String> {
        let full = self.attachment_url(url)?;
        // `Binary/{id}` under the FHIR base, however it is written, is that Binary.
        let under_base = full.as_str().strip_prefix(self.base_url().as_str());
        match under_base.and_then(binary_id) {
            Some(id) if under_base.is_some_and(|rest| rest.split('/').count() == 2) => Some(id.to_string()),
            _ => Some(key_of(full.as_str())),
        }
    }

    /// See [`super::SourceSystem::attachment`]: one GET (one re-authentication on 401),
    /// answered as a stream; the circuit breaker counts it like any call.
    pub(super) async fn rest_attachment(
        &self,
        url: &str,
        content_type: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<AttachmentBody>, SourceError> {
        let Some(full) = self.attachment_url(url) else { return Ok(None) };
        if self.breaker_open() {
            return Err(SourceError::CircuitOpen { source_name: self.name_owned() });
        }
        let started = std::time::Instant::now();
        let result = self.fetch_attachment(full, content_type, deadline).await;
        self.observe(started.elapsed(), &result);
        result
    }

    async fn fetch_attachment(
        &self,
        url: Url,
        content_type: Option<&str>,
        deadline: Instant,
    ) -> Result<Option<AttachmentBody>, SourceError> {
        let accept = content_type.filter(|t| !t.trim().is_empty()).unwrap_or("*/*");
        let (max_retries, retry_backoff, max_retry_after) = self.retry_policy();
        let mut reauthenticated = false;
        let mut attempt = 0u32;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.deadline_error());
            }
            let until = deadline.min(now + self.timeout());
            // No reqwest timeout: it would cut a long body. Until the headers, the deadline;
            // then each chunk must come within the request timeout.
            let request = self.client().get(url.clone()).header("Accept", format!("{accept}, */*;q=0.1"));
            let request = self.authorize(request).await?;
            // One of the source's concurrent calls until the answer starts; the body then
            // streams without holding it (a long download must not starve record gathering).
            let slot = tokio::time::timeout_at(until, self.slots().acquire())
                .await
                .map_err(|_| self.deadline_error())?
                .map_err(|_| SourceError::Unavailable {
                    source_name: self.name_owned(),
                    message: "source closed".into(),
                })?;
            let sent = tokio::time::timeout_at(until, request.send()).await;
            drop(slot);
            let resp = match sent {
                Err(_) => return Err(self.deadline_error()),
                Ok(Err(e)) => return Err(self.transport(e, deadline)),
                Ok(Ok(resp)) => resp,
            };
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return self.body_of(resp).await.map(Some);
            }
            if status == 401 && !reauthenticated && self.reauthenticate().await {
                reauthenticated = true;
                continue;
            }
            // Throttled or briefly down: retried as every call to the source is.
            if is_retryable(status) && attempt < max_retries {
                let asked = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let wait = match asked {
                    Some(d) if d > max_retry_after => None,
                    Some(d) => Some(d),
                    None => Some(backoff(retry_backoff, attempt)),
                };
                if let Some(wait) = wait.filter(|w| Instant::now() + *w < deadline) {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
            }
            return match status {
                401 | 403 => Err(SourceError::Auth { source_name: self.name_owned(), status }),
                404 | 410 => Ok(None),
                _ => {
                    Err(SourceError::Unavailable { source_name: self.name_owned(), message: format!("HTTP {status}") })
                }
            };
        }
    }

    async fn body_of(&self, resp: reqwest::Response) -> Result<AttachmentBody, SourceError> {
        let content_type =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let is_fhir_json = content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/fhir+json") || t.starts_with("application/json+fhir"));
        if is_fhir_json {
            return self.binary_resource(resp).await;
        }
        let length = resp.content_length();
        let idle = self.timeout();
        let stream = stream::unfold(Some(resp), move |resp| async move {
            let mut resp = resp?;
            match tokio::time::timeout(idle, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => Some((Ok(chunk), Some(resp))),
                Ok(Ok(None)) => None,
                Ok(Err(e)) => Some((Err(std::io::Error::other(e)), None)),
                Err(_) => Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "source stalled")), None)),
            }
        })
        .boxed();
        Ok(AttachmentBody { content_type, length, stream })
    }

    /// A FHIR `Binary` resource answered instead of raw content: its `data`, decoded.
    async fn binary_resource(&self, mut resp: reqwest::Response) -> Result<AttachmentBody, SourceError> {
        let bad = |message: &str| SourceError::BadResponse { source_name: self.name_owned(), message: message.into() };
        let mut bytes = Vec::new();
        while let Some(chunk) = tokio::time::timeout(self.timeout(), resp.chunk())
            .await
            .map_err(|_| self.deadline_error())?
            .map_err(|e| self.transport(e, Instant::now() + Duration::from_secs(1)))?
        {
            if bytes.len() + chunk.len() > MAX_BINARY_JSON {
                return Err(bad("Binary resource too large"));
            }
            bytes.extend_from_slice(&chunk);
        }
        let binary: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad("Binary is not JSON"))?;
        if crate::fhir::resource_type(&binary) != Some("Binary") {
            return Err(bad("attachment answered a resource that is not a Binary"));
        }
        let data = binary.get("data").and_then(serde_json::Value::as_str).unwrap_or("");
        let data =
            base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| bad("Binary data is not base64"))?;
        let content_type = binary.get("contentType").and_then(serde_json::Value::as_str).map(str::to_string);
        Ok(AttachmentBody {
            content_type,
            length: Some(data.len() as u64),
            stream: stream::once(async move { Ok(Bytes::from(data)) }).boxed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_binaries_by_id_and_other_urls_by_digest() {
        assert_eq!(binary_id("Binary/note-1"), Some("note-1"));
        assert_eq!(binary_id("Observation/1"), None);
        assert_eq!(files_key("Binary/note-1").as_deref(), Some("note-1"));
        assert_eq!(files_key("https://elsewhere.example/Binary/note-1"), None);
        let k = key_of("https://ehr.example/docs/1.pdf");
        assert!(k.starts_with('u') && k.len() == 33 && crate::fhir::is_valid_id(&k));
        assert_eq!(content_type_of(Path::new("a/b.PDF")), "application/pdf");
    }

    #[test]
    fn a_series_is_for_accept_headers_that_allow_dicom_instances() {
        assert!(accepts_dicom_instances(None));
        assert!(accepts_dicom_instances(Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*")));
        assert!(accepts_dicom_instances(Some("multipart/related")));
        assert!(accepts_dicom_instances(Some("application/dicom+json, */*;q=0.1")));
        assert!(!accepts_dicom_instances(Some("multipart/related; type=\"image/jpeg\"")));
        assert!(!accepts_dicom_instances(Some("application/dicom+json")));
        assert!(!accepts_dicom_instances(Some("multipart/related; type=application/dicom; q=0")));
    }

    #[tokio::test]
    async fn files_and_generated_content_stream_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("doc-1.xml"), b"<ClinicalDocument/>").unwrap();
        std::fs::write(dir.path().join("not an id!.pdf"), b"x").unwrap();
        let mut files = BinaryFiles::load(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        let body = files.open("doc-1").await.unwrap().unwrap();
        assert_eq!((body.content_type.as_deref(), body.length), (Some("application/xml"), Some(19)));
        files.insert("big", StoredBinary::Generated { length: 200_003, content_type: "application/pdf".into() });
        let body = files.open("big").await.unwrap().unwrap();
        let chunks: Vec<Bytes> = body.stream.map(Result::unwrap).collect().await;
        assert_eq!(chunks.len(), 4);
        let all: Vec<u8> = chunks.concat();
        assert_eq!(all.len(), 200_003);
        assert!(all.iter().enumerate().all(|(i, b)| *b == generated_byte(i as u64)));
        assert!(files.open("nothing").await.unwrap().is_none());
        assert!(BinaryFiles::load(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rest_source_streams_raw_content_or_decodes_a_binary_resource_from_its_own_origin_only() {
        use crate::sources::SourceSystem;
        let content: Vec<u8> = (0..5000u64).map(generated_byte).collect();
        let store = crate::sources::files::ResourceStore::default()
            .with_binary("a", StoredBinary::Generated { length: 5000, content_type: "application/pdf".into() });
        let sim = crate::simulator::start(store, Default::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = sim.base_url().to_string();
        let source = RestSource::new(&crate::config::SourceConfig::rest("sim", &base), Path::new(".")).unwrap();
        assert_eq!(source.attachment_key("Binary/a").as_deref(), Some("a"));
        assert_eq!(source.attachment_key(&format!("{base}/Binary/a")).as_deref(), Some("a"));
        let other = source.attachment_key(&base.replace("/fhir", "/docs/1.pdf")).unwrap();
        assert!(other.starts_with('u'), "{other}");
        assert_eq!(source.attachment_key("https://elsewhere.example/Binary/a"), None);
        let soon = Instant::now() + Duration::from_secs(5);
        for url in ["Binary/a", "Binary/a?_format=json"] {
            let body = source.attachment(url, Some("application/pdf"), soon).await.unwrap().unwrap();
            assert_eq!((body.content_type.as_deref(), body.length), (Some("application/pdf"), Some(5000)), "{url}");
            let bytes: Vec<u8> = body.stream.map(Result::unwrap).collect::<Vec<_>>().await.concat();
            assert!(bytes == content, "{url}: the same bytes, raw or from a Binary resource");
        }
        assert!(source.attachment("Binary/missing", None, soon).await.unwrap().is_none());
        // Throttled once (429 + Retry-After): retried, then the content.
        sim.controls().fail_next(1);
        let body = source.attachment("Binary/a", None, soon).await.unwrap().unwrap();
        assert_eq!(body.length, Some(5000));
        assert_eq!(sim.stats().answered_429, 1);
        assert!(source.attachment("https://elsewhere.example/Binary/a", None, soon).await.unwrap().is_none());
        // The simulator refuses to put large content in a Binary resource.
        let huge = crate::sources::files::ResourceStore::default()
            .with_binary("h", StoredBinary::Generated { length: 40 << 20, content_type: "application/pdf".into() });
        let sim = crate::simulator::start(huge, Default::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let r = reqwest::Client::new()
            .get(format!("{}/Binary/h", sim.base_url()))
            .header("accept", "application/fhir+json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 406);
    }
}
