//! Where generated resources go: one NDJSON file per source and type (opened on first use,
//! buffered, one compact resource per line), the ids each source gives its resources (in
//! that source's own style), each source's directory of clinicians and sites, and the
//! streamed parts of the manifest (`people.ndjson`, `sensitive.ndjson`). Counts what it
//! wrote; holds no resource after writing it.

use super::manifest::{self, Manifest, SourceSummary};
use super::people::Person;
use super::shape::{self, Directory};
use super::{GenerateError, GenerateOptions, SourceKind, SourcePlan};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The ids of one population, per source.
pub(super) struct IdBook {
    seed: u64,
    kinds: Vec<SourceKind>,
    counters: Vec<BTreeMap<&'static str, u64>>,
    identifiers: Vec<u64>,
}

impl IdBook {
    fn new(plans: &[SourcePlan], seed: u64) -> IdBook {
        IdBook {
            seed,
            kinds: plans.iter().map(|p| p.kind).collect(),
            counters: vec![BTreeMap::new(); plans.len()],
            identifiers: vec![0; plans.len()],
        }
    }

    /// The next id of `resource_type` in `source`, in the source's style.
    pub fn next(&mut self, source: usize, resource_type: &'static str) -> String {
        let kind = self.kinds[source];
        // The Part 2 program numbers everything from one counter, like the fixtures.
        let counter_key = if kind == SourceKind::Part2Program { "*" } else { resource_type };
        let n = self.counters[source].entry(counter_key).or_insert(0);
        *n += 1;
        let n = *n;
        match kind {
            SourceKind::Hospital | SourceKind::Clinic => format!("{}-{n:07}", hospital_prefix(resource_type)),
            SourceKind::Imaging => format!("IMG.{}.{n:07}", imaging_prefix(resource_type)),
            SourceKind::Part2Program => format!("73{n:08}"),
            SourceKind::Lab => {
                let digest = Sha256::digest(format!("{}|{source}|{resource_type}|{n}", self.seed).as_bytes());
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&digest[..16]);
                uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
            }
        }
    }

    /// The next local patient identifier value of `source` (MRN, client id …).
    pub fn next_identifier(&mut self, source: usize) -> String {
        self.identifiers[source] += 1;
        let n = self.identifiers[source];
        match self.kinds[source] {
            SourceKind::Hospital => format!("HG{n:07}"),
            SourceKind::Lab => format!("BRL-{n:07}"),
            SourceKind::Imaging => format!("HIC-{n:06}"),
            SourceKind::Part2Program => format!("HBH-C{n:05}"),
            SourceKind::Clinic => format!("C{source}-{n:06}"),
        }
    }
}

fn hospital_prefix(t: &str) -> &'static str {
    match t {
        "Patient" => "pt",
        "Encounter" => "enc",
        "Observation" => "obs",
        "Condition" => "cond",
        "MedicationRequest" => "mrx",
        "AllergyIntolerance" => "alg",
        "Immunization" => "imm",
        "DocumentReference" => "doc",
        "Procedure" => "proc",
        "RelatedPerson" => "rp",
        "CarePlan" => "cp",
        "CareTeam" => "ct",
        "Goal" => "goal",
        "Practitioner" => "prac",
        "Organization" => "org",
        "Location" => "loc",
        "DiagnosticReport" => "dr",
        _ => "res",
    }
}

fn imaging_prefix(t: &str) -> &'static str {
    match t {
        "Patient" => "PT",
        "Encounter" => "EN",
        "DiagnosticReport" => "DR",
        "Procedure" => "PR",
        "Practitioner" => "PRA",
        "Organization" => "ORG",
        "Location" => "LOC",
        _ => "RES",
    }
}

struct SourceFiles {
    dir: PathBuf,
    files: BTreeMap<String, BufWriter<File>>,
    counts: BTreeMap<String, u64>,
    bytes: u64,
}

/// Everything being written.
pub(super) struct Output {
    root: PathBuf,
    pub ids: IdBook,
    sources: Vec<SourceFiles>,
    people: BufWriter<File>,
    sensitive: BufWriter<File>,
    line: Vec<u8>,
    pub(super) tally: manifest::Tally,
}

fn create(path: &Path) -> Result<BufWriter<File>, GenerateError> {
    Ok(BufWriter::with_capacity(256 * 1024, File::create(path).map_err(GenerateError::io(path))?))
}

impl Output {
    pub fn create(root: &Path, plans: &[SourcePlan], seed: u64) -> Result<Output, GenerateError> {
        let mut sources = Vec::new();
        for plan in plans {
            let dir = root.join(&plan.name);
            std::fs::create_dir_all(&dir).map_err(GenerateError::io(&dir))?;
            sources.push(SourceFiles { dir, files: BTreeMap::new(), counts: BTreeMap::new(), bytes: 0 });
        }
        Ok(Output {
            root: root.to_path_buf(),
            ids: IdBook::new(plans, seed),
            sources,
            people: create(&root.join(manifest::PEOPLE_FILE))?,
            sensitive: create(&root.join(manifest::SENSITIVE_FILE))?,
            line: Vec::with_capacity(4096),
            tally: manifest::Tally::default(),
        })
    }

    /// Writes one resource to its source's file of its type.
    pub fn put(&mut self, source: usize, resource: &Value) -> Result<(), GenerateError> {
        let t = resource["resourceType"].as_str().unwrap_or("Unknown").to_string();
        let files = &mut self.sources[source];
        self.line.clear();
        serde_json::to_writer(&mut self.line, resource).map_err(|e| GenerateError::io(&files.dir)(e.into()))?;
        self.line.push(b'\n');
        let file = match files.files.entry(t.clone()) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(create(&files.dir.join(format!("{t}.ndjson")))?),
        };
        file.write_all(&self.line).map_err(GenerateError::io(&files.dir))?;
        files.bytes += self.line.len() as u64;
        *files.counts.entry(t).or_insert(0) += 1;
        Ok(())
    }

    /// Records what the labeller must make of a resource: carry `label`, or (None) no
    /// sensitivity label at all.
    pub fn expect(
        &mut self,
        person: &Person,
        source: &str,
        resource: &str,
        label: Option<&str>,
        what: &str,
    ) -> Result<(), GenerateError> {
        let line = serde_json::json!({"person": person.key, "source": source, "resource": resource, "label": label, "what": what});
        self.tally.expect(label);
        writeln!(self.sensitive, "{line}").map_err(GenerateError::io(&self.root))
    }

    /// Each source's clinicians, organization and sites, written before any patient (drawn
    /// but not written when `write` is false: a Patient-only population).
    pub fn write_directories(&mut self, rng: &mut ChaCha8Rng, write: bool) -> Result<Vec<Directory>, GenerateError> {
        let mut directories = Vec::new();
        for source in 0..self.sources.len() {
            let kind = self.ids.kinds[source];
            let (resources, directory) = shape::directory(source, kind, &mut self.ids, rng);
            for r in resources.iter().filter(|_| write) {
                self.put(source, r)?;
            }
            directories.push(directory);
        }
        Ok(directories)
    }

    pub fn person_done(&mut self, person: &Person) -> Result<(), GenerateError> {
        self.tally.person(person);
        let line = person.manifest_line();
        writeln!(self.people, "{line}").map_err(GenerateError::io(&self.root))
    }

    /// Flushes every file and writes the manifest.
    pub fn finish(mut self, options: &GenerateOptions, plans: &[SourcePlan]) -> Result<Manifest, GenerateError> {
        let mut summaries = Vec::new();
        for (plan, files) in plans.iter().zip(self.sources.iter_mut()) {
            for file in files.files.values_mut() {
                file.flush().map_err(GenerateError::io(&files.dir))?;
            }
            summaries.push(SourceSummary {
                name: plan.name.clone(),
                display: plan.display.clone(),
                folder: plan.name.clone(),
                part2: plan.kind == SourceKind::Part2Program,
                resources: files.counts.values().sum(),
                bytes: files.bytes,
                by_type: files.counts.clone(),
            });
        }
        self.people.flush().map_err(GenerateError::io(&self.root))?;
        self.sensitive.flush().map_err(GenerateError::io(&self.root))?;
        let manifest = Manifest::new(options, summaries, std::mem::take(&mut self.tally));
        manifest.write(&self.root).map_err(GenerateError::io(&self.root))?;
        Ok(manifest)
    }
}
