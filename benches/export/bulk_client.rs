//! A Bulk Data Access IG 2.0 client for the benchmark, written to the specification (not to
//! Portico's code): system-level kick-off with `Prefer: respond-async`, polling the status
//! URL (honouring `Retry-After`, reporting `X-Progress`), the completion manifest, streamed
//! downloads of every output file, four at a time (counted, never held in memory), and DELETE of the job.

use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Output files downloaded in parallel.
const DOWNLOADS_AT_ONCE: usize = 4;

#[derive(Debug, Default, Clone)]
pub struct ExportResult {
    pub files: usize,
    pub resources: u64,
    pub bytes: u64,
    /// Kick-off to the completion manifest.
    pub export_seconds: f64,
    /// Kick-off to the last byte of the last file.
    pub total_seconds: f64,
    /// The output files' download alone (manifest to the last byte of the last output
    /// file; `bytes` over this is the download rate).
    pub download_seconds: f64,
    pub errors: u64,
    pub by_type: std::collections::BTreeMap<String, u64>,
    /// Each output file's type, bytes, seconds to its first byte and seconds in all (for
    /// telling the server's time to answer from its streaming rate).
    pub file_times: Vec<(String, u64, f64, f64)>,
}

pub struct BulkClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl BulkClient {
    pub fn new(base: &str, token: &str) -> BulkClient {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(3600)).build().expect("http client");
        BulkClient { http, base: base.trim_end_matches('/').to_string(), token: token.to_string() }
    }

    /// `GET [base]/$export` (system level), then poll, then download everything.
    pub async fn export_all(&self, on_progress: impl Fn(&str)) -> Result<ExportResult, String> {
        let started = Instant::now();
        let kick_off = self
            .http
            .get(format!("{}/$export", self.base))
            .header("Accept", "application/fhir+json")
            .header("Prefer", "respond-async")
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("kick-off: {e}"))?;
        let status = kick_off.status();
        if status.as_u16() != 202 {
            let body = kick_off.text().await.unwrap_or_default();
            return Err(format!("kick-off answered {status} (202 expected): {body}"));
        }
        let poll_url = kick_off
            .headers()
            .get("content-location")
            .and_then(|v| v.to_str().ok())
            .ok_or("kick-off answered 202 without Content-Location")?
            .to_string();
        let manifest = self.poll(&poll_url, &on_progress).await?;
        let export_seconds = started.elapsed().as_secs_f64();
        let requires_token = manifest["requiresAccessToken"].as_bool().unwrap_or(true);
        let mut result = ExportResult { export_seconds, ..Default::default() };
        let outputs: Vec<&Value> = manifest["output"].as_array().into_iter().flatten().collect();
        // A few files at a time, as bulk clients do.
        let downloading = Instant::now();
        let downloads: Vec<Result<(u64, u64, f64, f64), String>> =
            futures::stream::iter(outputs.iter().map(|o| async move {
                let url = o["url"].as_str().ok_or("an output without url")?;
                let asked = Instant::now();
                let (lines, bytes, first_byte) = self.download(url, requires_token).await?;
                Ok((lines, bytes, first_byte, asked.elapsed().as_secs_f64()))
            }))
            .buffered(DOWNLOADS_AT_ONCE)
            .collect()
            .await;
        result.download_seconds = downloading.elapsed().as_secs_f64();
        for (output, downloaded) in outputs.iter().zip(downloads) {
            let url = output["url"].as_str().unwrap_or("?");
            let (lines, bytes, first_byte, seconds) = downloaded?;
            let kind = output["type"].as_str().unwrap_or("?").to_string();
            result.file_times.push((kind, bytes, first_byte, seconds));
            result.files += 1;
            result.resources += lines;
            result.bytes += bytes;
            *result.by_type.entry(output["type"].as_str().unwrap_or("?").to_string()).or_insert(0) += lines;
            if let Some(count) = output["count"].as_u64() {
                if count != lines {
                    return Err(format!("{url}: the manifest says {count} resources, the file holds {lines}"));
                }
            }
        }
        for error in manifest["error"].as_array().into_iter().flatten() {
            if let Some(url) = error["url"].as_str() {
                result.errors += self.download(url, requires_token).await?.0;
            }
        }
        result.total_seconds = started.elapsed().as_secs_f64();
        // Clean up: the server deletes the job's files.
        let _ = self.http.delete(&poll_url).bearer_auth(&self.token).send().await;
        Ok(result)
    }

    async fn poll(&self, url: &str, on_progress: &impl Fn(&str)) -> Result<Value, String> {
        let mut last_progress = String::new();
        loop {
            let resp = self
                .http
                .get(url)
                .header("Accept", "application/json")
                .bearer_auth(&self.token)
                .send()
                .await
                .map_err(|e| format!("status: {e}"))?;
            match resp.status().as_u16() {
                200 => return resp.json::<Value>().await.map_err(|e| format!("completion manifest: {e}")),
                202 => {
                    let progress = resp.headers().get("x-progress").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if progress != last_progress {
                        on_progress(progress);
                        last_progress = progress.to_string();
                    }
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1);
                    // Honour Retry-After, but poll at least every 2 s so the timing stays fine-grained.
                    tokio::time::sleep(Duration::from_secs(retry_after.clamp(1, 2))).await;
                }
                429 => tokio::time::sleep(Duration::from_secs(2)).await,
                other => {
                    let body = resp.text().await.unwrap_or_default();
                    return Err(format!("status answered {other}: {body}"));
                }
            }
        }
    }

    /// Streams one file: (lines, bytes, seconds to the first byte of the body).
    async fn download(&self, url: &str, with_token: bool) -> Result<(u64, u64, f64), String> {
        let asked = Instant::now();
        let mut req = self.http.get(url).header("Accept", "application/fhir+ndjson");
        if with_token {
            req = req.bearer_auth(&self.token);
        }
        let mut resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: {}", resp.status()));
        }
        let (mut lines, mut bytes, mut last) = (0u64, 0u64, b'\n');
        let mut first_byte = None;
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            first_byte.get_or_insert_with(|| asked.elapsed().as_secs_f64());
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            if let Some(b) = chunk.last() {
                last = *b;
            }
        }
        if last != b'\n' {
            lines += 1;
        }
        Ok((lines, bytes, first_byte.unwrap_or_default()))
    }
}
