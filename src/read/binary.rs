//! Attachments through the door. The content an attachment names
//! (`DocumentReference.content.attachment`, `DiagnosticReport.presentedForm`,
//! `Media.content`) is released under the same decision as the resource that points at it:
//! `Binary/{id}` is read only when a resource released to this viewer now points at it, and
//! is otherwise answered exactly like an id that does not exist. What goes out names the
//! content only by its gateway id: an attachment `url` the source serves (`Binary/{id}` or a
//! URL on its own origin) becomes `{fhir base}/Binary/{source}.{key}` in every released
//! resource; inline `data`, and URLs elsewhere, stay as they are. The content itself is
//! fetched from the source that holds the pointing resource and handed on as a stream
//! ([`BinaryContent`]), never read whole. Reading it is logged like any read.

use super::{trail, ReadError, Reader, Trail, WholeRecord};
use crate::aggregate::provenance::{gateway_resource_id, source_of_meta};
use crate::auth::{Access, PatientScope};
use crate::fhir;
use crate::sources::attachments::AttachmentBody;
use crate::store::{Store, StoreError};
use futures::stream::BoxStream;
use moka::future::Cache;
use serde_json::{Map, Value};
use std::borrow::Borrow;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::bytes::Bytes;

/// How long a source has to start answering with an attachment.
const FETCH_DEADLINE: Duration = Duration::from_secs(30);

/// What readers keep for attachments: the base their gateway URLs start with, and which
/// record each attachment id was last found in (so staff and partners, who may reach
/// any record, can read one by its id alone — once a page, a read or an export read its record,
/// on any gateway sharing the database: the `attachment_homes` table, with this process's
/// cache in front). A home is only where to look: the content is served only if that
/// record's released view names the attachment now. Clones share one index: give every
/// reader of a gateway the same.
#[derive(Clone)]
pub struct AttachmentIndex {
    fhir_base: String,
    homes: Cache<String, String>,
    store: Option<Store>,
}

impl AttachmentIndex {
    /// `fhir_base`: the FHIR base the gateway's Binary URLs start with (empty: relative
    /// `Binary/{id}`).
    pub fn new(fhir_base: &str) -> AttachmentIndex {
        AttachmentIndex {
            fhir_base: fhir_base.trim_end_matches('/').to_string(),
            homes: Cache::builder().max_capacity(200_000).time_to_live(Duration::from_secs(24 * 3600)).build(),
            store: None,
        }
    }

    /// Keeps homes in `store` too, so a gateway started later (or a replica) finds them.
    pub fn stored_in(mut self, store: Store) -> AttachmentIndex {
        self.store = Some(store);
        self
    }

    /// The record attachment `id` was last released from, if any gateway noted one.
    async fn home(&self, id: &str) -> Result<Option<String>, StoreError> {
        if let Some(home) = self.homes.get(id).await {
            return Ok(Some(home));
        }
        let Some(store) = &self.store else { return Ok(None) };
        let row: Option<(String,)> = sqlx::query_as("SELECT patient_id FROM attachment_homes WHERE attachment_id = $1")
            .bind(id)
            .fetch_optional(&store.pool)
            .await?;
        let home = row.map(|(p,)| p);
        if let Some(p) = &home {
            self.homes.insert(id.to_string(), p.clone()).await;
        }
        Ok(home)
    }

    /// Notes that `ids` were released from `patient_id`'s record; only the ones this process
    /// did not know there are written.
    async fn note(&self, patient_id: &str, ids: Vec<String>) {
        let mut new = Vec::new();
        for id in ids {
            if self.homes.get(&id).await.as_deref() != Some(patient_id) {
                new.push(id);
            }
        }
        if new.is_empty() {
            return;
        }
        if let Some(store) = &self.store {
            if let Err(e) = write_homes(store, patient_id, &new).await {
                // Not fatal: this process still knows them; another may not find them.
                tracing::warn!(error = %e, "attachment homes could not be stored");
                return self.remember(patient_id, new).await;
            }
        }
        self.remember(patient_id, new).await;
    }

    async fn remember(&self, patient_id: &str, ids: Vec<String>) {
        for id in ids {
            self.homes.insert(id, patient_id.to_string()).await;
        }
    }
}

/// Upserts attachment homes, a batch per statement.
async fn write_homes(store: &Store, patient_id: &str, ids: &[String]) -> Result<(), StoreError> {
    for chunk in ids.chunks(200) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
        let sql = format!(
            "INSERT INTO attachment_homes (attachment_id, patient_id) VALUES {} \
             ON CONFLICT (attachment_id) DO UPDATE SET patient_id = excluded.patient_id",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.clone()).bind(patient_id.to_string());
        }
        q.execute(&store.pool).await?;
    }
    Ok(())
}

/// One attachment of a released resource: its gateway id and where its source keeps it.
/// Only the reader makes these, from what the policy released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedAttachment {
    id: String,
    source: String,
    url: String,
    content_type: Option<String>,
    title: Option<String>,
    /// `Type/id` of the released resource that points at it.
    pointed_by: String,
}

impl ReleasedAttachment {
    pub(super) fn new(
        id: String,
        source: &str,
        url: String,
        content_type: Option<String>,
        title: Option<String>,
        pointed_by: String,
    ) -> ReleasedAttachment {
        ReleasedAttachment { id, source: source.to_string(), url, content_type, title, pointed_by }
    }

    /// The gateway id (`GET /fhir/Binary/{id}`).
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The content type the pointing resource gives.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    /// `Type/id` of the released resource that points at it.
    pub fn pointed_by(&self) -> &str {
        &self.pointed_by
    }

    /// An attachment as if released, for renderers' unit tests.
    #[cfg(test)]
    pub fn for_test(id: &str, content_type: &str, pointed_by: &str) -> ReleasedAttachment {
        ReleasedAttachment {
            id: id.into(),
            source: "test".into(),
            url: format!("Binary/{id}"),
            content_type: Some(content_type.into()),
            title: None,
            pointed_by: pointed_by.into(),
        }
    }
}

/// An attachment's content as it arrives from its source.
pub struct BinaryContent {
    content_type: String,
    length: Option<u64>,
    stream: BoxStream<'static, std::io::Result<Bytes>>,
}

impl std::fmt::Debug for BinaryContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryContent")
            .field("content_type", &self.content_type)
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl BinaryContent {
    /// The source's content type, else the attachment's, else `application/octet-stream`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }
    /// The length in bytes, when the source said.
    pub fn length(&self) -> Option<u64> {
        self.length
    }
    pub fn into_stream(self) -> BoxStream<'static, std::io::Result<Bytes>> {
        self.stream
    }
}

/// Every Attachment of a resource that may name content by URL (none for other types).
fn each_attachment<'a>(r: &'a Value) -> Vec<&'a Map<String, Value>> {
    let list = |v: Option<&'a Value>| v.and_then(Value::as_array).into_iter().flatten();
    match fhir::resource_type(r) {
        Some("DocumentReference") => list(r.get("content")).filter_map(|c| c.get("attachment")?.as_object()).collect(),
        Some("DiagnosticReport") => list(r.get("presentedForm")).filter_map(Value::as_object).collect(),
        Some("Media") => r.get("content").and_then(Value::as_object).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn each_attachment_mut(r: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match fhir::resource_type(r) {
        Some("DocumentReference") => {
            for c in r.get_mut("content").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(a) = c.get_mut("attachment").and_then(Value::as_object_mut) {
                    f(a);
                }
            }
        }
        Some("DiagnosticReport") => {
            for a in r.get_mut("presentedForm").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(a) = a.as_object_mut() {
                    f(a);
                }
            }
        }
        Some("Media") => {
            if let Some(a) = r.get_mut("content").and_then(Value::as_object_mut) {
                f(a);
            }
        }
        _ => {}
    }
}

fn text_of(a: &Map<String, Value>, key: &str) -> Option<String> {
    a.get(key).and_then(Value::as_str).map(str::to_string)
}

impl Reader {
    /// Uses `index` for attachment URLs and homes (the gateway's one, shared by its readers).
    pub fn with_attachments(mut self, index: AttachmentIndex) -> Reader {
        self.attachments = index;
        self
    }

    /// The gateway id of an attachment URL of a resource from `source`, when the source
    /// serves it.
    pub(super) fn attachment_id(&self, source: &str, url: &str) -> Option<String> {
        let system = self.aggregator.sources().iter().find(|s| s.name() == source)?;
        Some(gateway_resource_id(source, &system.attachment_key(url)?))
    }

    /// The attachments of a released resource that the gateway serves (`record`: the
    /// released record it is part of, where an ImagingStudy's Endpoints are).
    pub(super) fn attachments_of<R: Borrow<Value>>(&self, r: &Value, record: &[R]) -> Vec<ReleasedAttachment> {
        let t = fhir::resource_type(r).unwrap_or("");
        if t == "ImagingStudy" {
            let Some(source) = source_of_meta(r) else { return Vec::new() };
            return self.series_attachments(r, source, record);
        }
        // Only the types that carry attachments are looked into further.
        let attachments = each_attachment(r);
        let Some(source) = source_of_meta(r).filter(|_| !attachments.is_empty()) else { return Vec::new() };
        let pointed_by = format!("{t}/{}", fhir::resource_id(r).unwrap_or(""));
        attachments
            .into_iter()
            .filter_map(|a| {
                let url = a.get("url").and_then(Value::as_str)?;
                Some(ReleasedAttachment {
                    id: self.attachment_id(source, url)?,
                    source: source.to_string(),
                    url: url.to_string(),
                    content_type: text_of(a, "contentType"),
                    title: text_of(a, "title"),
                    pointed_by: pointed_by.clone(),
                })
            })
            .collect()
    }

    /// Every attachment the gateway serves of `resources`, each once.
    pub(super) fn documents_of<R: Borrow<Value>>(&self, resources: &[R]) -> Vec<ReleasedAttachment> {
        let mut seen = std::collections::HashSet::new();
        resources
            .iter()
            .flat_map(|r| self.attachments_of(r.borrow(), resources))
            .filter(|a| seen.insert(a.id.clone()))
            .collect()
    }

    /// A released resource as it goes out: attachment URLs the gateway serves rewritten to
    /// its own Binary URL.
    pub(super) fn outward(&self, mut r: Value) -> Value {
        let Some(source) = source_of_meta(&r).map(str::to_string) else { return r };
        self.outward_endpoint(&mut r, &source, &self.attachments.fhir_base);
        each_attachment_mut(&mut r, &mut |a| {
            let id = a.get("url").and_then(Value::as_str).and_then(|url| self.attachment_id(&source, url));
            if let Some(id) = id {
                let url = if self.attachments.fhir_base.is_empty() {
                    format!("Binary/{id}")
                } else {
                    format!("{}/Binary/{id}", self.attachments.fhir_base)
                };
                a.insert("url".into(), Value::String(url));
            }
        });
        r
    }

    /// Notes which record the attachments among `resources` belong to: a record's own
    /// resources, or a release's (finished or not: finishing leaves attachments as they are).
    /// Noting a home releases nothing.
    pub(super) async fn remember_attachments(&self, patient_id: &str, resources: Vec<&Value>) {
        let ids = self.documents_of(&resources).into_iter().map(|a| a.id).collect();
        self.attachments.note(patient_id, ids).await;
    }

    /// `GET Binary/[id]`: the content of an attachment a resource released to the caller now
    /// points at. Anything else — a made-up id, content pointed at only by withheld
    /// resources, another person's — is `NotFound`, alike. Logged as a read of the record.
    pub async fn binary(&self, access: &Access, trail: &Trail, id: &str) -> Result<BinaryContent, ReadError> {
        let (patient, result) = self.find_binary(access, id).await;
        let result = match result {
            Ok(a) => self.open_attachment(&a).await,
            Err(e) => Err(e),
        };
        trail::logged(&self.audit, access, trail, "read", patient, false, result).await
    }

    async fn find_binary(&self, access: &Access, id: &str) -> (Option<String>, Result<ReleasedAttachment, ReadError>) {
        if !fhir::is_valid_id(id) {
            return (None, Err(ReadError::NotFound));
        }
        let patient = match &access.patients {
            PatientScope::Person { .. } => self.own_id(access).await,
            PatientScope::Any => match self.attachments.home(id).await {
                Ok(home) => home,
                Err(e) => return (None, Err(e.into())),
            },
        };
        let Some(patient) = patient else { return (None, Err(ReadError::NotFound)) };
        // Looked for among the released resources as they are before finishing (which leaves
        // attachments as they are): none of them is copied to find one attachment.
        let found = match self.visible_for_one(access, &patient).await {
            Ok(v) => {
                let released = v.released.unfinished();
                released
                    .iter()
                    .flat_map(|r| self.attachments_of(r, &released))
                    .find(|a| a.id == id)
                    .ok_or(ReadError::NotFound)
            }
            Err(e) => Err(e),
        };
        (found.is_ok().then_some(patient), found)
    }

    /// The content of an attachment of a record already released to the caller (a
    /// download's documents): the record's access was logged when it was read.
    pub async fn open_attachment(&self, a: &ReleasedAttachment) -> Result<BinaryContent, ReadError> {
        let system = self.aggregator.sources().iter().find(|s| s.name() == a.source).ok_or(ReadError::NotFound)?;
        let deadline = Instant::now() + FETCH_DEADLINE;
        match system.attachment(&a.url, a.content_type.as_deref(), deadline).await {
            Ok(Some(AttachmentBody { content_type, length, stream })) => Ok(BinaryContent {
                content_type: content_type
                    .or_else(|| a.content_type.clone())
                    .unwrap_or_else(|| "application/octet-stream".into()),
                length,
                stream,
            }),
            Ok(None) => Err(ReadError::NotFound),
            Err(e) => {
                tracing::warn!(error = %e, "an attachment could not be fetched from its source");
                Err(ReadError::SourceUnavailable)
            }
        }
    }
}

impl WholeRecord {
    /// The documents (attachment contents) of the released resources that the gateway
    /// serves, each once, in record order.
    pub fn documents(&self) -> &[ReleasedAttachment] {
        &self.documents
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_attachments_of_documents_reports_and_media_only() {
        let doc = json!({"resourceType": "DocumentReference", "content": [
            {"attachment": {"url": "Binary/a", "contentType": "application/pdf"}},
            {"attachment": {"data": "aGk="}}]});
        let report = json!({"resourceType": "DiagnosticReport", "presentedForm": [{"url": "Binary/b"}]});
        let media = json!({"resourceType": "Media", "content": {"url": "Binary/c"}});
        let other = json!({"resourceType": "Observation", "valueAttachment": {"url": "Binary/d"}});
        assert_eq!(each_attachment(&doc).len(), 2);
        assert_eq!(each_attachment(&report)[0]["url"], "Binary/b");
        assert_eq!(each_attachment(&media)[0]["url"], "Binary/c");
        assert!(each_attachment(&other).is_empty());
        let mut media = media;
        each_attachment_mut(&mut media, &mut |a| {
            a.insert("url".into(), json!("x"));
        });
        assert_eq!(media["content"]["url"], "x");
    }
}
