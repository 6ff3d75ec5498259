//! Whole-record downloads for one patient: the record as one FHIR `Bundle`, and as a zip
//! with one NDJSON file per resource type, the documents the released resources point at
//! (`documents/{id}.{ext}`, see `download_documents`), a `README.txt`, the
//! `withheld-notice.txt` and a readable `summary.html`. It gets the record only from `Reader::record` (what the policy
//! released for this caller) and writes exactly that JSON; it never adds a resource, never
//! says what was withheld, and never touches HTTP or the access log (the caller audits).
//!
//! The Bundle is a `searchset`, not a `collection`: it is the complete result of
//! `Patient/[id]/$everything` — whose defined output is a searchset — in one piece instead
//! of pages, so every reader of the API's `$everything` reads it unchanged. Only a
//! searchset can carry the withheld-notice and the missing-source warnings the way the API
//! does, as an OperationOutcome entry with `search.mode = outcome`; in a `collection` the
//! notice would have to pose as part of the record (R4 forbids `entry.search` there).

use super::download_documents::Documents;
use crate::auth::Access;
use crate::fhir;
use crate::fhir::bundle::{searchset, Entry, Searchset};
use crate::fhir::model::codes::SearchEntryMode;
use crate::fhir::outcome::{operation_outcome_with_id, Issue};
use crate::i18n::{text_in, Lang};
use crate::read::{missing_warning, ReadError, Reader, Trail, Use, WholeRecord};
use chrono::{DateTime, Datelike, Timelike, Utc};
use fluent_bundle::FluentValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Cursor, Seek, Write};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("writing the zip failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the download failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing a resource failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Summary(#[from] super::summary::SummaryError),
    #[error("the download task stopped: {0}")]
    Task(String),
}

/// What a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The whole record as one FHIR JSON Bundle.
    Bundle,
    /// NDJSON per type, README, withheld-notice and the readable summary, zipped.
    Zip,
}

/// A finished download: the file's bytes and how to name and label it.
#[derive(Debug)]
pub struct Download {
    /// The gateway id of the patient (for the access log).
    pub patient_id: String,
    pub content_type: &'static str,
    /// `health-record-{gateway id}.json|zip`: ids only, never a name.
    pub file_name: String,
    pub body: Vec<u8>,
}

/// Gathers what `access` may see of `patient_id`'s record and writes it as `format`.
/// `base_url` is the FHIR base the Bundle's `fullUrl`s use.
pub async fn prepare(
    reader: &Reader,
    access: &Access,
    trail: &Trail,
    patient_id: &str,
    format: Format,
    base_url: &str,
) -> Result<Download, DownloadError> {
    build(reader, reader.record(access, trail, Use::Download, patient_id).await?, format, base_url).await
}

/// Writes a record already read (what the policy released) as `format`; a zip's documents
/// are fetched through `reader`.
pub async fn build(
    reader: &Reader,
    record: WholeRecord,
    format: Format,
    base_url: &str,
) -> Result<Download, DownloadError> {
    let produced = Utc::now();
    let patient_id = record.patient_id().to_string();
    let (content_type, extension, body) = match format {
        Format::Bundle => {
            ("application/fhir+json; charset=utf-8", "json", serde_json::to_vec(&bundle(&record, base_url, produced))?)
        }
        // Compressing is CPU work: off the async workers. A record is bounded, so the zip
        // is built in memory (constant in the number of patients).
        Format::Zip => {
            let documents = super::download_documents::fetch(reader, &record, &std::env::temp_dir()).await?;
            // The summary is in the language of the request (off its task from here on).
            let lang = crate::i18n::current();
            let body = tokio::task::spawn_blocking(move || {
                Ok::<_, DownloadError>(
                    write_zip(&record, &documents, produced, lang, Cursor::new(Vec::new()))?.into_inner(),
                )
            })
            .await
            .map_err(|e| DownloadError::Task(e.to_string()))??;
            ("application/zip", "zip", body)
        }
    };
    Ok(Download { file_name: file_name(&patient_id, extension), patient_id, content_type, body })
}

/// `health-record-{id}.{extension}`; the id is a gateway id, anything else is replaced.
pub fn file_name(patient_id: &str, extension: &str) -> String {
    let id: String =
        patient_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    format!("health-record-{id}.{extension}")
}

/// The warnings and notices a whole-record answer carries, as `$everything` gives them:
/// a warning per missing source, then the policy's notices.
pub fn issues(record: &WholeRecord) -> Vec<Issue> {
    record.missing().iter().map(missing_warning).chain(record.notices().iter().cloned()).collect()
}

/// The whole record as one searchset Bundle: every released resource (`search.mode =
/// match`, record order, `total` = their number), then one OperationOutcome entry with the
/// warnings and the withheld-notice — the same entries `$everything` pages through.
pub fn bundle(record: &WholeRecord, base_url: &str, produced: DateTime<Utc>) -> Value {
    let mut entries: Vec<Entry> = record
        .resources()
        .iter()
        .map(|r| {
            let full_url = format!(
                "{base_url}/{}/{}",
                fhir::resource_type(r).unwrap_or_default(),
                fhir::resource_id(r).unwrap_or_default()
            );
            (full_url, r.clone(), SearchEntryMode::Match)
        })
        .collect();
    let issues = issues(record);
    if !issues.is_empty() {
        let outcome = operation_outcome_with_id("warnings", &issues);
        entries.push((format!("urn:uuid:{}", uuid::Uuid::new_v4()), outcome, SearchEntryMode::Outcome));
    }
    let self_url = format!("{base_url}/Patient/{}/$everything", record.patient_id());
    // Whole seconds, as the download has always said.
    let produced = produced.with_nanosecond(0).unwrap_or(produced);
    let shell = Searchset {
        id: Some(uuid::Uuid::new_v4().to_string()),
        timestamp: Some(produced),
        self_url: &self_url,
        next_url: None,
        total: Some(record.resources().len()),
        last_updated: None,
    };
    searchset(&shell, entries)
}

/// The zip in memory.
pub fn zip_bytes(record: &WholeRecord, produced: DateTime<Utc>) -> Result<Vec<u8>, DownloadError> {
    Ok(write_zip(record, &Documents::default(), produced, Lang::En, Cursor::new(Vec::new()))?.into_inner())
}

/// Writes the zip to `out`: `{Type}.ndjson` for each resource type present (one resource
/// per line, exactly the released JSON, in record order), `documents/{id}.{ext}` (each as
/// its system keeps it, copied from the scratch file), `README.txt`, `withheld-notice.txt`
/// and `summary.html`. Deflate throughout.
pub fn write_zip<W: Write + Seek>(
    record: &WholeRecord,
    documents: &Documents,
    produced: DateTime<Utc>,
    lang: Lang,
    out: W,
) -> Result<W, DownloadError> {
    let mut options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    if let Ok(t) = zip::DateTime::from_date_and_time(
        produced.year().clamp(1980, 2107) as u16,
        produced.month() as u8,
        produced.day() as u8,
        produced.hour() as u8,
        produced.minute() as u8,
        produced.second() as u8,
    ) {
        options = options.last_modified_time(t);
    }
    let mut by_type: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for r in record.resources() {
        by_type.entry(file_type(r)).or_default().push(r);
    }
    let mut zip = ZipWriter::new(out);
    zip.start_file("README.txt", options)?;
    zip.write_all(readme(record, produced, &by_type, documents, lang).as_bytes())?;
    zip.start_file("withheld-notice.txt", options)?;
    zip.write_all(withheld_notice(record, lang).as_bytes())?;
    zip.start_file("summary.html", options)?;
    zip.write_all(super::summary::render(record, produced, lang)?.as_bytes())?;
    for (t, resources) in &by_type {
        zip.start_file(format!("{t}.ndjson"), options)?;
        for r in resources {
            serde_json::to_writer(&mut zip, r)?;
            zip.write_all(b"\n")?;
        }
    }
    for d in &documents.files {
        zip.start_file(d.name.as_str(), options)?;
        std::io::copy(&mut std::fs::File::open(&d.path)?, &mut zip)?;
    }
    Ok(zip.finish()?)
}

/// A resource's file name stem: its type when it is a plain FHIR type name (anything else
/// cannot name a file safely and goes to `Other`).
fn file_type(r: &Value) -> &str {
    match fhir::resource_type(r) {
        Some(t) if !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphabetic()) => t,
        _ => "Other",
    }
}

/// The notices alone (the withheld-notice, and the 42 CFR Part 2 notice when Part 2
/// records are included). For a patient-facing viewer the withheld-notice is there
/// whether or not anything was withheld, so this file is the same either way. The notices
/// are the policy's own text (one text for everyone); only the gateway's line is in `lang`.
pub fn withheld_notice(record: &WholeRecord, lang: Lang) -> String {
    if record.notices().is_empty() {
        return format!("{}\n", text_in(lang, "readme-nothing-withheld", &[]));
    }
    record.notices().iter().map(|n| format!("{}\n", n.diagnostics)).collect::<Vec<_>>().join("\n")
}

/// A heading of the README, underlined.
fn heading(text: &str, mark: char) -> String {
    format!("{text}\n{}\n", mark.to_string().repeat(text.chars().count()))
}

/// `README.txt`: what the zip holds, in `lang` (file names and FHIR type names as they are).
fn readme(
    record: &WholeRecord,
    produced: DateTime<Utc>,
    by_type: &BTreeMap<&str, Vec<&Value>>,
    documents: &Documents,
    lang: Lang,
) -> String {
    let say = |key: &str, args: &[(&str, FluentValue<'_>)]| text_in(lang, key, args);
    let mut text = heading(&say("readme-title", &[]), '=');
    text.push('\n');
    text.push_str(&format!("{}\n", say("readme-record", &[("id", record.patient_id().into())])));
    let when = crate::i18n::long_utc(lang, produced);
    text.push_str(&format!("{}\n\n", say("readme-produced", &[("when", when.into())])));
    text.push_str(&heading(&say("readme-contents", &[]), '-'));
    text.push_str(&format!("{:<29} {}\n", "summary.html", say("readme-summary-file", &[])));
    text.push_str(&format!("{:<29} {}\n", "withheld-notice.txt", say("readme-notice-file", &[])));
    for (t, resources) in by_type {
        let args = [("count", resources.len().into()), ("type", (*t).into())];
        text.push_str(&format!("{:<29} {}\n", format!("{t}.ndjson"), say("readme-type-file", &args)));
    }
    if !documents.files.is_empty() {
        let args = [("count", documents.files.len().into())];
        text.push_str(&format!("{:<29} {}\n", "documents/", say("readme-documents", &args)));
    }
    text.push('\n');
    text.push_str(&say("readme-ndjson", &[]));
    text.push('\n');
    if !documents.left_out.is_empty() {
        text.push('\n');
        text.push_str(&heading(&say("readme-left-out", &[]), '-'));
        for d in &documents.left_out {
            let args = [("id", format!("Binary/{}", d.id).into()), ("reason", say(d.reason, &[]).into())];
            text.push_str(&format!("{}\n", say("readme-left-out-one", &args)));
        }
    }
    if !record.missing().is_empty() {
        text.push('\n');
        text.push_str(&heading(&say("readme-incomplete", &[]), '-'));
        for m in record.missing() {
            let args = [("source", m.display.as_str().into()), ("reason", m.reason.as_str().into())];
            text.push_str(&format!("{}\n", say("summary-missing", &args)));
        }
    }
    if !record.notices().is_empty() {
        text.push('\n');
        text.push_str(&heading(&say("readme-about", &[]), '-'));
        text.push_str(&withheld_notice(record, lang));
    }
    text.push('\n');
    text.push_str(&say("readme-private", &[]));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::MissingSource;
    use crate::fhir::model::codes::IssueType;
    use serde_json::json;
    use std::io::Read;

    fn record() -> WholeRecord {
        WholeRecord::for_test(
            "pt-1",
            vec![
                json!({"resourceType": "Patient", "id": "pt-1", "unknownElement": {"kept": true}}),
                json!({"resourceType": "Observation", "id": "a", "valueString": "line\nbreak"}),
                json!({"resourceType": "Condition", "id": "c"}),
                json!({"resourceType": "Observation", "id": "b"}),
                json!({"resourceType": "../../evil", "id": "x"}),
            ],
            vec![MissingSource { source: "lab".into(), display: "Lab".into(), reason: "timed out".into() }],
            vec![Issue::information(IssueType::Informational, "Some information may not be shown.")],
        )
    }

    #[test]
    fn the_zip_holds_one_ndjson_file_per_type_with_the_released_json_exactly() {
        let r = record();
        let bytes = zip_bytes(&r, Utc::now()).unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "Condition.ndjson",
                "Observation.ndjson",
                "Other.ndjson",
                "Patient.ndjson",
                "README.txt",
                "summary.html",
                "withheld-notice.txt"
            ]
        );
        let mut text = String::new();
        let mut f = zip.by_name("Observation.ndjson").unwrap();
        assert_eq!(f.compression(), CompressionMethod::Deflated);
        f.read_to_string(&mut text).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, vec![r.resources()[1].clone(), r.resources()[3].clone()], "record order, unchanged");
        drop(f);
        let mut text = String::new();
        zip.by_name("Patient.ndjson").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, format!("{}\n", r.resources()[0]), "unknown elements kept, byte for byte");
        let mut text = String::new();
        zip.by_name("withheld-notice.txt").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "Some information may not be shown.\n");
        let mut text = String::new();
        zip.by_name("README.txt").unwrap().read_to_string(&mut text).unwrap();
        assert!(
            text.contains("Results from Lab may be missing") && text.contains("2 FHIR R4 Observation resources"),
            "{text}"
        );
    }

    #[test]
    fn the_readme_is_in_the_language_of_the_download() {
        let r = record();
        let mut by_type: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for x in r.resources() {
            by_type.entry(file_type(x)).or_default().push(x);
        }
        let produced = DateTime::parse_from_rfc3339("2026-12-03T14:05:00Z").unwrap().with_timezone(&Utc);
        let es = readme(&r, produced, &by_type, &Documents::default(), Lang::Es);
        assert!(es.starts_with("Descarga del expediente médico\n==============================\n"), "{es}");
        assert!(es.contains("Preparado: 3 de diciembre de 2026, 14:05 UTC"), "{es}");
        assert!(es.contains(&format!("{:<29} 2 recursos Observation de FHIR R4", "Observation.ndjson")), "{es}");
        assert!(es.contains("Incompleto\n----------\n") && es.contains("Acerca de este expediente"), "{es}");
        assert!(!es.contains("What is in this file") && !es.contains("resources"), "{es}");
        let en = readme(&r, produced, &by_type, &Documents::default(), Lang::En);
        assert!(en.starts_with("Health record download\n======================\n\nRecord: pt-1\n"), "{en}");
        assert!(
            en.contains("Produced: December 3, 2026, 2:05 PM UTC") && en.contains("1 FHIR R4 Patient resource,"),
            "{en}"
        );
    }

    #[test]
    fn the_bundle_is_the_whole_everything_result_with_the_notice_as_an_outcome() {
        let r = record();
        let b = bundle(&r, "http://gw/fhir", Utc::now());
        assert_eq!(b["type"], "searchset");
        assert_eq!(b["total"], 5);
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 6);
        assert_eq!(entries[1]["fullUrl"], "http://gw/fhir/Observation/a");
        assert_eq!(entries[1]["search"]["mode"], "match");
        let outcome = &entries[5];
        assert_eq!(outcome["search"]["mode"], "outcome");
        assert_eq!(outcome["resource"]["issue"][0]["code"], "incomplete");
        assert_eq!(outcome["resource"]["issue"][1]["diagnostics"], "Some information may not be shown.");
        assert!(b.get("link").is_some() && b["link"][1].is_null(), "no next page");
        assert_eq!(file_name("pt-1/../x", "zip"), "health-record-pt-1_.._x.zip");
    }
}
