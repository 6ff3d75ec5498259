//! What a record page shows of a document's content: a plain-text note's words (inline
//! `text/plain` data, decoded), and for content the gateway serves (the record's released
//! attachments, [`WholeRecord::documents`]) a link to open or save it — a PDF opens, a C-CDA
//! or other document is offered as a file, and a C-CDA can also be read on a page: its
//! title and each section's title and narrative text ([`readable_cda`]; markup dropped,
//! entities decoded, escaped again by the template). It renders only what it is given and
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
    /// Whether the page can show it as text (a C-CDA: `…/documents/{id}/readable`).
    pub readable: bool,
}

/// A clinical document's words, for reading on a page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Readable {
    pub title: Option<String>,
    pub sections: Vec<ReadableSection>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadableSection {
    pub title: Option<String>,
    pub text: String,
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
        out.entry(d.pointed_by().to_string()).or_default().push(DocumentLink {
            id: d.id().to_string(),
            label: label(d.content_type()),
            readable: is_xml(d.content_type()),
        });
    }
    out
}

/// Whether a content type is XML (a C-CDA is served as one).
pub fn is_xml(content_type: Option<&str>) -> bool {
    let essence = content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    matches!(
        essence.as_deref(),
        Some("application/xml" | "text/xml" | "application/cda+xml" | "application/hl7-cda+xml")
    )
}

/// The text between the first `<{tag}>` (or `<{tag} …>`) and its `</{tag}>` in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(at) = xml[from..].find(&open) {
        let start = from + at + open.len();
        match xml[start..].chars().next() {
            Some('>' | ' ' | '\n' | '\t' | '\r') => {
                let body = start + xml[start..].find('>')? + 1;
                if xml[..body].ends_with("/>") {
                    return Some("");
                }
                let end = body + xml[body..].find(&format!("</{tag}>"))?;
                return Some(&xml[body..end]);
            }
            _ => from = start,
        }
    }
    None
}

/// Narrative markup as plain text: block ends become line breaks, other tags go, entities
/// are decoded, blank runs collapse.
fn plain(markup: &str) -> String {
    let mut out = String::new();
    let mut rest = markup;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else { break };
        let tag = rest[lt + 1..lt + gt].trim_start_matches('/').split([' ', '/']).next().unwrap_or("");
        if matches!(tag, "paragraph" | "br" | "tr" | "item" | "list" | "table" | "caption") {
            out.push('\n');
        } else if matches!(tag, "td" | "th") {
            out.push(' ');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#160;", " ")
        .replace("&amp;", "&");
    decoded
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A C-CDA document's title and its sections' titles and narrative (`<text>`), in order;
/// `None` for anything that is not a ClinicalDocument.
pub fn readable_cda(xml: &str) -> Option<Readable> {
    let root = xml.find("<ClinicalDocument")?;
    let xml = &xml[root..];
    let head = &xml[..xml.find("<component").unwrap_or(xml.len())];
    let title = element(head, "title").map(plain).filter(|t| !t.is_empty());
    let mut sections = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<section") {
        let after = &rest[at..];
        let end = after.find("</section>").map_or(after.len(), |e| e + "</section>".len());
        let section = &after[..end];
        // A nested section's title is its own: read this one's up to the first nested one.
        let own = &section[..section[1..].find("<section").map_or(section.len(), |n| n + 1)];
        let text = element(own, "text").map(plain).unwrap_or_default();
        let title = element(own, "title").map(plain).filter(|t| !t.is_empty());
        if title.is_some() || !text.is_empty() {
            sections.push(ReadableSection { title, text });
        }
        rest = &after["<section".len()..];
    }
    Some(Readable { title, sections })
}

fn label(content_type: Option<&str>) -> String {
    let essence = content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/pdf") => crate::i18n::t("file-open-the-pdf"),
        Some("application/xml" | "text/xml" | "application/cda+xml" | "application/hl7-cda+xml") => {
            crate::i18n::t("file-save-the-document-c-cda")
        }
        Some("text/plain") => crate::i18n::t("file-open-the-note"),
        Some(t) if t.starts_with("image/") => crate::i18n::t("file-open-the-image"),
        _ => crate::i18n::t("file-save-the-document"),
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

    #[test]
    fn the_record_view_links_the_documents_of_notes_and_reports() {
        use crate::read::{ReleasedAttachment, WholeRecord};
        let record = WholeRecord::for_test(
            "pt-1",
            vec![
                json!({"resourceType": "Patient", "id": "pt-1"}),
                json!({"resourceType": "DocumentReference", "id": "ehr.d1", "description": "Discharge",
                       "content": [{"attachment": {"contentType": "application/pdf", "url": "https://gw/fhir/Binary/ehr.b1"}}]}),
                json!({"resourceType": "DiagnosticReport", "id": "lab.r1", "code": {"text": "Echo"}, "status": "final",
                       "presentedForm": [{"contentType": "application/pdf", "url": "https://gw/fhir/Binary/lab.b2"}]}),
            ],
            vec![],
            vec![],
        )
        .with_documents(vec![
            ReleasedAttachment::for_test("ehr.b1", "application/pdf", "DocumentReference/ehr.d1"),
            ReleasedAttachment::for_test("lab.b2", "application/xml", "DiagnosticReport/lab.r1"),
        ]);
        let view = crate::portal::record_view::RecordView::of(&record, chrono::Utc::now());
        let link = |id: &str, label: &str, readable| DocumentLink { id: id.into(), label: label.into(), readable };
        assert_eq!(view.documents[0].files, vec![link("ehr.b1", "Open the PDF", false)]);
        assert_eq!(view.results.reports[0].files, vec![link("lab.b2", "Save the document (C-CDA, XML)", true)]);
    }

    #[test]
    fn a_ccda_reads_as_its_title_and_sections_with_markup_gone() {
        let xml = r#"<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Diabetes follow-up</title>
            <component><structuredBody><component><section><title>Assessment &amp; plan</title>
            <text mediaType="text/x-hl7-text+xml"><paragraph>HbA1c 7.2 %.</paragraph><paragraph>Recheck in <content>three</content> months &lt;soon&gt;.</paragraph>
            <table><tr><td>BP</td><td>136/84</td></tr></table></text></section></component>
            <component><section><title>Empty</title><text/></section></component></structuredBody></component></ClinicalDocument>"#;
        let r = readable_cda(xml).unwrap();
        assert_eq!(r.title.as_deref(), Some("Diabetes follow-up"));
        assert_eq!(r.sections.len(), 2);
        assert_eq!(r.sections[0].title.as_deref(), Some("Assessment & plan"));
        assert_eq!(r.sections[0].text, "HbA1c 7.2 %.\nRecheck in three months <soon>.\nBP 136/84");
        assert_eq!(r.sections[1].text, "");
        assert!(readable_cda("<html>no</html>").is_none());
        assert!(is_xml(Some("application/xml")) && !is_xml(Some("application/pdf")));
    }
}
