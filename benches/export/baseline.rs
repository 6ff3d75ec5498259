//! The baseline: reading and writing the same NDJSON with serde_json alone, streamed line by
//! line (parse each resource into a `serde_json::Value`, write it back), in a child process
//! of its own so its peak memory is its own. The child reports its counts and VmHWM as one
//! JSON line on stdout.

use serde_json::Value;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

/// Environment variable that turns the bench binary into the baseline child.
pub const CHILD_ENV: &str = "BENCH_EXPORT_BASELINE_CHILD";

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct BaselineResult {
    pub resources: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub seconds: f64,
    pub peak_kb: u64,
}

/// The child's work: every `*.ndjson` of every source folder under `population` (not the
/// manifest files) into `out`.
pub fn run_child(population: &Path, out: &Path) -> Result<BaselineResult, String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut result = BaselineResult::default();
    let mut folders: Vec<_> = std::fs::read_dir(population)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let mut files: Vec<_> = std::fs::read_dir(&folder)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        files.sort();
        for file in files {
            let name = format!(
                "{}-{}",
                folder.file_name().unwrap().to_string_lossy(),
                file.file_name().unwrap().to_string_lossy()
            );
            let reader = BufReader::new(std::fs::File::open(&file).map_err(|e| e.to_string())?);
            let mut writer = BufWriter::new(std::fs::File::create(out.join(name)).map_err(|e| e.to_string())?);
            for line in reader.lines() {
                let line = line.map_err(|e| e.to_string())?;
                if line.trim().is_empty() {
                    continue;
                }
                result.bytes_read += line.len() as u64 + 1;
                let value: Value = serde_json::from_str(&line).map_err(|e| format!("{}: {e}", file.display()))?;
                let mut text = serde_json::to_vec(&value).expect("serializes");
                text.push(b'\n');
                result.bytes_written += text.len() as u64;
                writer.write_all(&text).map_err(|e| e.to_string())?;
                result.resources += 1;
            }
            writer.flush().map_err(|e| e.to_string())?;
        }
    }
    result.seconds = started.elapsed().as_secs_f64();
    result.peak_kb = super::processes::status_kb("self", "VmHWM").unwrap_or(0);
    let _ = std::fs::remove_dir_all(out);
    Ok(result)
}
