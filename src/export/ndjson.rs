//! The NDJSON part files of one work unit: one file per resource type
//! (`{Type}.{unit}.ndjson`), each line one resource, written through a buffered writer to a
//! temporary name and renamed into place only when the whole unit is written, so a unit
//! cut off half-way leaves nothing a manifest points at. Memory holds one resource at a
//! time, never a file. It writes what it is given and decides nothing about content.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::fs::File;
use tokio::io::{AsyncWriteExt, BufWriter};

/// One type's file being written.
struct Part {
    tmp: PathBuf,
    name: String,
    out: BufWriter<File>,
    count: u64,
}

/// A unit's files of one job folder.
pub struct UnitFiles {
    dir: PathBuf,
    seq: i64,
    /// Distinguishes this attempt's temporary files from another's.
    attempt: String,
    parts: BTreeMap<String, Part>,
    line: Vec<u8>,
    /// Bytes written so far.
    pub bytes: u64,
}

/// A finished file: its type, file name (in the job folder) and line count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub resource_type: String,
    pub file: String,
    pub count: u64,
}

/// The final name of a unit's file of one type.
pub fn file_name(resource_type: &str, seq: i64) -> String {
    format!("{resource_type}.{seq}.ndjson")
}

/// True for a name this module writes (what may be served from a job folder).
pub fn is_part_name(name: &str) -> bool {
    let mut parts = name.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(t), Some(n), Some("ndjson"), None)
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()) && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
    )
}

impl UnitFiles {
    /// Starts unit `seq` in `dir` (created if missing), removing temporary files an earlier,
    /// cut-off attempt at the same unit left behind.
    pub async fn start(dir: &Path, seq: i64, attempt: &str) -> std::io::Result<UnitFiles> {
        tokio::fs::create_dir_all(dir).await?;
        let stale = format!(".{seq}.ndjson.");
        let mut entries = tokio::fs::read_dir(dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let name = e.file_name().to_string_lossy().to_string();
            if name.contains(&stale) && name.ends_with(".tmp") {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
        Ok(UnitFiles {
            dir: dir.to_path_buf(),
            seq,
            attempt: attempt.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            parts: BTreeMap::new(),
            line: Vec::with_capacity(16 * 1024),
            bytes: 0,
        })
    }

    /// Appends one resource to its type's file.
    pub async fn write(&mut self, resource_type: &str, resource: &Value) -> std::io::Result<()> {
        let part = match self.parts.entry(resource_type.to_string()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let name = file_name(resource_type, self.seq);
                let tmp = self.dir.join(format!("{name}.{}.tmp", self.attempt));
                let out = BufWriter::with_capacity(64 * 1024, File::create(&tmp).await?);
                e.insert(Part { tmp, name, out, count: 0 })
            }
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, resource).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        part.out.write_all(&self.line).await?;
        part.count += 1;
        self.bytes += self.line.len() as u64;
        Ok(())
    }

    /// Flushes every file to disk and renames it into place.
    pub async fn finish(mut self) -> std::io::Result<Vec<Written>> {
        let mut written = Vec::new();
        for (t, mut part) in std::mem::take(&mut self.parts) {
            part.out.flush().await?;
            part.out.get_ref().sync_all().await?;
            drop(part.out);
            tokio::fs::rename(&part.tmp, self.dir.join(&part.name)).await?;
            written.push(Written { resource_type: t, file: part.name, count: part.count });
        }
        Ok(written)
    }

    /// Drops what was written (the unit will be redone, or its job is gone).
    pub async fn abandon(mut self) {
        for (_, part) in std::mem::take(&mut self.parts) {
            drop(part.out);
            let _ = tokio::fs::remove_file(&part.tmp).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn files_appear_only_when_the_unit_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        let mut unit = UnitFiles::start(&job, 3, "gw-1/w0").await.unwrap();
        for i in 0..3 {
            unit.write("Observation", &json!({"resourceType": "Observation", "id": format!("o{i}")})).await.unwrap();
        }
        unit.write("Patient", &json!({"resourceType": "Patient", "id": "p"})).await.unwrap();
        assert!(!job.join("Observation.3.ndjson").exists(), "not before the unit is done");
        let written = unit.finish().await.unwrap();
        assert_eq!(written.len(), 2);
        let text = std::fs::read_to_string(job.join("Observation.3.ndjson")).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
        assert!(is_part_name("Observation.3.ndjson") && is_part_name("OperationOutcome.12.ndjson"));
        assert!(!is_part_name("../x.3.ndjson") && !is_part_name("Observation.3.ndjson.a.tmp"));

        // A cut-off attempt's temporary files are cleared by the next attempt.
        let mut cut = UnitFiles::start(&job, 4, "a").await.unwrap();
        cut.write("Patient", &json!({"resourceType": "Patient", "id": "p"})).await.unwrap();
        cut.line.clear();
        std::mem::forget(cut);
        let again = UnitFiles::start(&job, 4, "b").await.unwrap();
        let left: Vec<_> = std::fs::read_dir(&job).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().contains(".4.ndjson.")), "{left:?}");
        again.abandon().await;
    }
}
