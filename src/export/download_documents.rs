//! The documents of a whole-record zip: the content of every attachment the reader released
//! with the record ([`WholeRecord::documents`]), fetched through the reader and streamed to
//! files in a scratch folder (bounded memory), then copied into the zip as
//! `documents/{gateway id}.{ext}` beside the NDJSON. A document that cannot be fetched, or
//! that would take the download past its size bound, is left out and named (by its gateway
//! URL only) in the README. The scratch folder goes when the value is dropped. It never
//! fetches anything the record's released resources do not point at, and never logs
//! patient data.

use super::download::DownloadError;
use crate::read::{ReadError, Reader, WholeRecord};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The most bytes of documents one download holds.
const MAX_DOCUMENT_BYTES: u64 = 512 * 1024 * 1024;

/// One fetched document, ready to go into the zip.
#[derive(Debug)]
pub struct DocumentFile {
    /// `documents/{id}.{ext}`
    pub name: String,
    pub path: PathBuf,
}

/// A document left out of the download, and why (no data: the gateway id and a reason).
#[derive(Debug, Clone)]
pub struct LeftOut {
    pub id: String,
    /// Why, as the catalogue key of the README's words.
    pub reason: &'static str,
}

/// The documents of one download, in a scratch folder removed on drop.
#[derive(Debug, Default)]
pub struct Documents {
    dir: Option<PathBuf>,
    pub files: Vec<DocumentFile>,
    pub left_out: Vec<LeftOut>,
}

impl Drop for Documents {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The file extension for a content type.
fn extension(content_type: &str) -> &'static str {
    match content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "application/xml" | "text/xml" | "application/cda+xml" | "application/hl7-cda+xml" => "xml",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/rtf" | "application/rtf" => "rtf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/dicom" => "dcm",
        "application/json" | "application/fhir+json" => "json",
        _ => "bin",
    }
}

/// Fetches the record's documents into a new folder under `scratch`.
pub async fn fetch(reader: &Reader, record: &WholeRecord, scratch: &Path) -> Result<Documents, DownloadError> {
    let mut out = Documents::default();
    if record.documents().is_empty() {
        return Ok(out);
    }
    let dir = scratch.join(format!(".documents-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::create_dir_all(&dir).await?;
    out.dir = Some(dir.clone());
    let mut total = 0u64;
    for d in record.documents() {
        let content = match reader.open_attachment(d).await {
            Ok(c) => c,
            Err(ReadError::NotFound) => {
                out.left_out.push(LeftOut { id: d.id().to_string(), reason: "readme-document-gone" });
                continue;
            }
            Err(_) => {
                out.left_out.push(LeftOut { id: d.id().to_string(), reason: "readme-document-no-answer" });
                continue;
            }
        };
        if content.length().is_some_and(|n| total + n > MAX_DOCUMENT_BYTES) {
            out.left_out.push(LeftOut { id: d.id().to_string(), reason: "readme-document-too-large" });
            continue;
        }
        let name = format!("documents/{}.{}", d.id(), extension(content.content_type()));
        let path = dir.join(d.id());
        let mut file = tokio::fs::File::create(&path).await?;
        let mut stream = content.into_stream();
        let mut written = 0u64;
        let mut failed: Option<&'static str> = None;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                failed = Some("readme-document-no-answer");
                break;
            };
            written += chunk.len() as u64;
            if total + written > MAX_DOCUMENT_BYTES {
                failed = Some("readme-document-too-large");
                break;
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        match failed {
            Some(reason) => {
                let _ = tokio::fs::remove_file(&path).await;
                out.left_out.push(LeftOut { id: d.id().to_string(), reason });
            }
            None => {
                total += written;
                out.files.push(DocumentFile { name, path });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_follow_the_content_type() {
        assert_eq!(extension("application/pdf"), "pdf");
        assert_eq!(extension("application/xml; charset=utf-8"), "xml");
        assert_eq!(extension("weird/type"), "bin");
    }
}
