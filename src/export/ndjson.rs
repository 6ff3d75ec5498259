//! The NDJSON pieces one work unit writes: per resource type, one or more objects
//! (`{job}/{unit}/{attempt}/{Type}.{n}.ndjson`), each line one resource, each cut before it
//! would pass the job's per-file limits. An attempt writes under its own name, and a piece
//! appears only when complete, so a unit cut off half-way, or redone by another worker,
//! leaves nothing a finished unit points at; which pieces count is what the unit's row
//! records when it completes. Memory holds one resource at a time plus the storage's
//! upload buffer, never a file. It writes what it is given and decides nothing about
//! content.

use super::files::{Files, Writer};
use serde_json::Value;
use std::collections::BTreeMap;

/// How large a served file may grow (and so a piece).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub resources: u64,
    pub bytes: u64,
}

/// One type's piece being written.
struct Open {
    writer: Writer,
    file: String,
    count: u64,
    bytes: u64,
}

/// A unit's pieces.
pub struct UnitFiles {
    files: Files,
    job: String,
    /// `{unit}/{attempt}`: this attempt's folder in the job.
    folder: String,
    limits: Limits,
    open: BTreeMap<String, Open>,
    pieces: BTreeMap<String, u32>,
    done: Vec<Written>,
    line: Vec<u8>,
}

/// A finished piece: its type, key within the job, line count and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub resource_type: String,
    pub file: String,
    pub count: u64,
    pub bytes: u64,
}

/// The name a served file of one type has in the manifest (`{Type}.{n}.ndjson`, from 1).
pub fn file_name(resource_type: &str, n: usize) -> String {
    format!("{resource_type}.{n}.ndjson")
}

/// True for a name [`file_name`] makes (what a client may ask for).
pub fn is_part_name(name: &str) -> bool {
    let mut parts = name.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(t), Some(n), Some("ndjson"), None)
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()) && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
    )
}

impl UnitFiles {
    /// Starts unit `seq` of `job`, attempt `attempt` (any text; made safe for a key).
    pub fn start(files: &Files, job: &str, seq: i64, attempt: &str, limits: Limits) -> UnitFiles {
        let attempt: String = attempt.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        UnitFiles {
            files: files.clone(),
            job: job.to_string(),
            folder: format!("{seq}/{attempt}"),
            limits,
            open: BTreeMap::new(),
            pieces: BTreeMap::new(),
            done: Vec::new(),
            line: Vec::with_capacity(16 * 1024),
        }
    }

    /// Appends one resource to its type's piece, starting a new piece first when this line
    /// would pass a limit.
    pub async fn write(&mut self, resource_type: &str, resource: &Value) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, resource).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        let full = self
            .open
            .get(resource_type)
            .is_some_and(|o| o.count > 0 && (o.count + 1 > self.limits.resources || o.bytes + len > self.limits.bytes));
        if full {
            if let Some(o) = self.open.remove(resource_type) {
                self.close(resource_type, o).await?;
            }
        }
        if !self.open.contains_key(resource_type) {
            let n = self.pieces.entry(resource_type.to_string()).or_insert(0);
            *n += 1;
            let file = format!("{}/{}", self.folder, file_name(resource_type, *n as usize));
            let writer = self.files.writer(&format!("{}/{file}", self.job));
            self.open.insert(resource_type.to_string(), Open { writer, file, count: 0, bytes: 0 });
        }
        if let Some(o) = self.open.get_mut(resource_type) {
            o.writer.write(&self.line).await?;
            o.count += 1;
            o.bytes += len;
        }
        Ok(())
    }

    async fn close(&mut self, resource_type: &str, o: Open) -> std::io::Result<()> {
        o.writer.finish().await?;
        self.done.push(Written {
            resource_type: resource_type.to_string(),
            file: o.file,
            count: o.count,
            bytes: o.bytes,
        });
        Ok(())
    }

    /// Completes every piece; all of them, by type and then in order.
    pub async fn finish(mut self) -> std::io::Result<Vec<Written>> {
        for (t, o) in std::mem::take(&mut self.open) {
            self.close(&t, o).await?;
        }
        let mut done = std::mem::take(&mut self.done);
        done.sort_by(|a, b| (&a.resource_type, a.file.len(), &a.file).cmp(&(&b.resource_type, b.file.len(), &b.file)));
        Ok(done)
    }

    /// Drops what was written (the unit will be redone, or its job is gone).
    pub async fn abandon(mut self) {
        for (_, o) in std::mem::take(&mut self.open) {
            o.writer.abort().await;
        }
        let keys: Vec<String> = self.done.iter().map(|w| format!("{}/{}", self.job, w.file)).collect();
        let _ = self.files.remove(&keys).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JOB: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn pieces_are_cut_at_the_limits_and_appear_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path(), None).unwrap();
        let limits = Limits { resources: 2, bytes: 1_000_000 };
        let mut unit = UnitFiles::start(&files, JOB, 3, "gw-1/w0-1", limits);
        for i in 0..5 {
            unit.write("Observation", &json!({"resourceType": "Observation", "id": format!("o{i}")})).await.unwrap();
        }
        unit.write("Patient", &json!({"resourceType": "Patient", "id": "p"})).await.unwrap();
        let before = files.keys(JOB).await.unwrap();
        assert_eq!(before.len(), 2, "only the two full Observation pieces so far: {before:?}");
        let written = unit.finish().await.unwrap();
        let counts: Vec<(&str, u64)> = written.iter().map(|w| (w.resource_type.as_str(), w.count)).collect();
        assert_eq!(counts, vec![("Observation", 2), ("Observation", 2), ("Observation", 1), ("Patient", 1)]);
        assert_eq!(written[0].file, "3/gw-1-w0-1/Observation.1.ndjson");
        for w in &written {
            let size = files.size(&format!("{JOB}/{}", w.file)).await.unwrap().unwrap();
            assert_eq!(size, w.bytes);
        }
        assert!(is_part_name("Observation.3.ndjson") && is_part_name("OperationOutcome.12.ndjson"));
        assert!(!is_part_name("../x.3.ndjson") && !is_part_name("Observation.3.ndjson.a.tmp"));

        // By bytes: each line is ~45 bytes, so a 100-byte limit holds two.
        let mut small = UnitFiles::start(&files, JOB, 4, "a", Limits { resources: 100, bytes: 100 });
        for i in 0..3 {
            small.write("Patient", &json!({"resourceType": "Patient", "id": format!("p{i}")})).await.unwrap();
        }
        let written = small.finish().await.unwrap();
        assert_eq!(written.iter().map(|w| w.count).collect::<Vec<_>>(), vec![2, 1]);

        // An abandoned attempt leaves nothing.
        let mut cut = UnitFiles::start(&files, JOB, 5, "b", limits);
        for i in 0..3 {
            cut.write("Patient", &json!({"resourceType": "Patient", "id": format!("p{i}")})).await.unwrap();
        }
        cut.abandon().await;
        assert!(files.keys(&format!("{JOB}/5")).await.unwrap().is_empty());
    }
}
