//! What the gateway asks of a source that offers Bulk Data `$export` (IG 2.0) and what it
//! gets back: the kick-off's parameters ([`BulkAsk`]), a poll's answer ([`BulkPoll`], the
//! [`BulkManifest`] once done) and an output file read one resource at a time
//! ([`NdjsonLines`], so a file of any size costs one line of memory). The REST adapter
//! speaks it (`rest/bulk.rs`); other kinds of source do not offer it. It knows nothing of
//! gateway ids, jobs or policy, and never logs a resource.

use super::SourceError;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// A source export to kick off: system level, or `Group/{id}/` level; the types wanted
/// (`_type`) and, for an incremental export, `_since` as the partner gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkAsk {
    pub group: Option<String>,
    pub types: Vec<String>,
    pub since: Option<String>,
}

/// One entry of a manifest's `output` or `error`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BulkOutput {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub url: String,
    #[serde(default)]
    pub count: Option<u64>,
}

/// A finished source export's manifest (the fields the gateway uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkManifest {
    pub transaction_time: String,
    #[serde(default)]
    pub requires_access_token: bool,
    #[serde(default)]
    pub output: Vec<BulkOutput>,
    #[serde(default)]
    pub error: Vec<BulkOutput>,
}

/// What polling a source export's status found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkPoll {
    /// Still running; poll again after `retry_after` when the source said.
    Running {
        retry_after: Option<Duration>,
    },
    Done(BulkManifest),
}

/// An NDJSON output file, one resource at a time.
#[async_trait]
pub trait NdjsonLines: Send {
    /// The next resource, or `None` at the end of the file.
    async fn next(&mut self) -> Result<Option<Value>, SourceError>;
}

/// The error a source without Bulk Data answers with.
pub(super) fn not_offered(source_name: &str) -> SourceError {
    SourceError::BadResponse {
        source_name: source_name.to_string(),
        message: "does not offer Bulk Data $export".into(),
    }
}

/// Splits a byte stream into NDJSON lines: blank lines are skipped; a line longer than
/// `max_line` is refused (memory stays bounded whatever the source sends).
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    buffer: Vec<u8>,
    /// Where the next line starts in `buffer`.
    start: usize,
}

impl LineSplitter {
    pub(super) fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete line (without its newline), if one is buffered.
    pub(super) fn line(&mut self) -> Option<&[u8]> {
        loop {
            let end = self.buffer[self.start..].iter().position(|b| *b == b'\n')?;
            let (a, b) = (self.start, self.start + end);
            self.start = b + 1;
            if !trim(&self.buffer[a..b]).is_empty() {
                return Some(trim(&self.buffer[a..b]));
            }
        }
    }

    /// What is left at the end of the stream (a last line without a newline).
    pub(super) fn rest(&mut self) -> Option<&[u8]> {
        let from = self.start;
        self.start = self.buffer.len();
        let line = trim(&self.buffer[from..]);
        (!line.is_empty()).then_some(line)
    }

    /// Bytes buffered of a line not yet complete.
    pub(super) fn pending(&self) -> usize {
        self.buffer.len() - self.start
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let start = line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(line.len());
    &line[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_blank_lines_are_skipped() {
        let mut s = LineSplitter::default();
        s.push(b"{\"a\":1}\n\n{\"b\"");
        assert_eq!(s.line(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(s.line(), None, "the second line is not complete");
        assert_eq!(s.pending(), 4);
        s.push(b":2}\r\n{\"c\":3}");
        assert_eq!(s.line(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(s.line(), None);
        assert_eq!(s.rest(), Some(&b"{\"c\":3}"[..]));
        assert_eq!(s.rest(), None);
    }

    #[test]
    fn a_manifest_reads_with_and_without_counts() {
        let m: BulkManifest = serde_json::from_value(serde_json::json!({
            "transactionTime": "2026-01-01T00:00:00Z", "request": "x", "requiresAccessToken": true,
            "output": [{"type": "Patient", "url": "http://s/f/Patient.ndjson", "count": 2},
                       {"type": "Observation", "url": "http://s/f/Observation.ndjson"}],
            "error": []
        }))
        .unwrap();
        assert!(m.requires_access_token);
        assert_eq!(m.output[0].count, Some(2));
        assert_eq!(m.output[1].count, None);
    }
}
