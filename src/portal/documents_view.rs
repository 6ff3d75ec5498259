//! What a record page shows of a document's content: a plain-text note's words (inline
//! `text/plain` data, decoded), and for content the gateway serves (the record's released
//! attachments, [`WholeRecord::documents`]) a link to open or save it — a PDF opens, a C-CDA
//! or other document is offered as a file. It renders only what the reader released and
//! fetches nothing.

use crate::read::WholeRecord;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// The most characters of a note shown on a page.
const MAX_NOTE_CHARS: usize = 20_000;

/// A link to a document's content on the record pages (`/records/{link}/documents/{id}`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DocumentLink {
    /// The gateway id of the content.
    pub id: String,
    /// What the link says: "Open the PDF", "Save the document (C-CDA, XML)" …
    pub label: String,
}

/// The readable text of a document's first inline `text/plain` attachment.
pub fn note_text(r: &Value) -> Option<String> {
    let attachments: Vec<&Value> = match r.get("resourceType").and_then(Value::as_str) {
        Some("DocumentReference") => r
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("attachment"))
            .collect(),
        Some("DiagnosticReport") => r.get("presentedForm").and_then(Value::as_array).into_iter().flatten().collect(),
        _ => Vec::new(),
    };
    attachments.into_iter().find_map(|a| {
        let plain = a
            .get("contentType")
            .and_then(Value::as_str)
            .is_some_and(|t| t.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("text/plain"));
        let data = a.get("data").and_then(Value::as_str).filter(|_| plain)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let mut text: String = text.chars().take(MAX_NOTE_CHARS).collect();
        if text.len() < bytes.len() && text.chars().count() == MAX_NOTE_CHARS {
            text.push_str(" …");
        }
        Some(text)
    })
}

/// The links to the served content of each released resource, by `Type/id`.
pub fn links(record: &WholeRecord) -> HashMap<String, Vec<DocumentLink>> {
    let mut out: HashMap<String, Vec<DocumentLink>> = HashMap::new();
    for d in record.documents() {
        out.entry(d.pointed_by().to_string())
            .or_default()
            .push(DocumentLink { id: d.id().to_string(), label: label(d.content_type()) });
    }
    out
}

fn label(content_type: Option<&str>) -> String {
    let essence = content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/pdf") => "Open the PDF".into(),
        Some("application/xml" | "text/xml" | "application/cda+xml" | "application/hl7-cda+xml") => {
            "Save the document (C-CDA, XML)".into()
        }
        Some("text/plain") => "Open the note".into(),
        Some(t) if t.starts_with("image/") => "Open the image".into(),
        _ => "Save the document".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_text_notes_read_as_text_and_links_name_the_format() {
        let doc = json!({"resourceType": "DocumentReference", "content": [
            {"attachment": {"contentType": "application/pdf", "url": "x"}},
            {"attachment": {"contentType": "text/plain; charset=utf-8", "data": "Tm8gcmVkIGZsYWdzLg=="}}]});
        assert_eq!(note_text(&doc).as_deref(), Some("No red flags."));
        let not_text = json!({"resourceType": "DocumentReference", "content": [
            {"attachment": {"contentType": "text/html", "data": "PGI+aGk8L2I+"}}]});
        assert_eq!(note_text(&not_text), None);
        assert_eq!(label(Some("application/pdf")), "Open the PDF");
        assert_eq!(label(Some("application/xml")), "Save the document (C-CDA, XML)");
        assert_eq!(label(None), "Save the document");
    }
}
