//! What a generated population is, for people and tests: `manifest.json` (the options, each
//! source's counts by type and size, and the totals the index and the labeller must
//! reproduce), next to the streamed `people.ndjson` (each person: their records and how each
//! links, look-alike relations, traits) and `expected-labels.ndjson` (resources that must
//! carry a label, or none); and the `portico.toml` that serves the population. Never holds
//! the population in memory: the per-person parts are written as they are drawn.

use super::people::{LinkBy, Person, Relation};
use super::{GenerateOptions, ANCHOR};
use crate::sources::files::LoadError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const PEOPLE_FILE: &str = "people.ndjson";
pub const SENSITIVE_FILE: &str = "expected-labels.ndjson";
pub const CONFIG_FILE: &str = "portico.toml";

/// One source of the population.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub display: String,
    /// Folder (relative to the population folder) of `{Type}.ndjson` files.
    pub folder: String,
    /// A 42 CFR Part 2 program (the shipped policy names it in `part2_sources`).
    pub part2: bool,
    pub resources: u64,
    pub bytes: u64,
    pub by_type: BTreeMap<String, u64>,
}

/// Running totals while people are drawn.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub people: u64,
    pub records: u64,
    /// People with records in more than one source (each should be one link).
    pub linked_across_sources: u64,
    pub records_linked_by_identifier: u64,
    pub records_linked_by_demographics: u64,
    pub namesakes: u64,
    pub possible_matches: u64,
    pub siblings: u64,
    pub children_under_12: u64,
    pub adolescents: u64,
    pub with_guardians: u64,
    pub confidential_visits: u64,
    /// Resources that must carry each label.
    pub labelled: BTreeMap<String, u64>,
    /// Ordinary resources that must carry no sensitivity label.
    pub unlabelled: u64,
}

impl Tally {
    pub(super) fn person(&mut self, p: &Person) {
        self.people += 1;
        self.records += p.records.len() as u64;
        if p.records.len() > 1 {
            self.linked_across_sources += 1;
        }
        for r in &p.records {
            match r.link {
                LinkBy::Identifier => self.records_linked_by_identifier += 1,
                LinkBy::Demographics => self.records_linked_by_demographics += 1,
                LinkBy::Anchor => {}
            }
        }
        match p.relation {
            Some(Relation::NamesakeOf(_)) => self.namesakes += 1,
            Some(Relation::PossibleMatchOf(_)) => self.possible_matches += 1,
            Some(Relation::SiblingOf(_)) => self.siblings += 1,
            None => {}
        }
        if p.age < 12 {
            self.children_under_12 += 1;
        } else if p.age < 18 {
            self.adolescents += 1;
        }
        if !p.guardians.is_empty() {
            self.with_guardians += 1;
        }
        if p.traits.confidential_visit {
            self.confidential_visits += 1;
        }
    }

    pub(super) fn expect(&mut self, label: Option<&str>) {
        match label {
            Some(l) => *self.labelled.entry(l.to_string()).or_insert(0) += 1,
            None => self.unlabelled += 1,
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub generator: String,
    pub seed: u64,
    pub patients: u64,
    /// Dates are written as if today were this day; sources shift them.
    pub anchor: String,
    pub sources: Vec<SourceSummary>,
    pub resources: u64,
    pub bytes: u64,
    pub resources_per_patient: f64,
    pub people_file: String,
    pub expected_labels_file: String,
    pub config_file: String,
    pub expected: Tally,
}

impl Manifest {
    pub fn new(options: &GenerateOptions, sources: Vec<SourceSummary>, tally: Tally) -> Manifest {
        let resources: u64 = sources.iter().map(|s| s.resources).sum();
        let bytes = sources.iter().map(|s| s.bytes).sum();
        Manifest {
            generator: format!(
                "portico {} fixtures generate --patients {} --sources {} --seed {}",
                env!("CARGO_PKG_VERSION"),
                options.patients,
                options.sources,
                options.seed
            ),
            seed: options.seed,
            patients: options.patients as u64,
            anchor: ANCHOR.to_string(),
            resources,
            bytes,
            resources_per_patient: (resources as f64 / options.patients as f64 * 10.0).round() / 10.0,
            sources,
            people_file: PEOPLE_FILE.into(),
            expected_labels_file: SENSITIVE_FILE.into(),
            config_file: CONFIG_FILE.into(),
            expected: tally,
        }
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join(MANIFEST_FILE), text + "\n")
    }

    pub fn read(dir: &Path) -> Result<Manifest, LoadError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| LoadError::Unreadable { path: path.display().to_string(), source })?;
        serde_json::from_str(&text).map_err(|source| LoadError::Json { path: path.display().to_string(), source })
    }

    /// `[[sources]]` blocks reading the population's folders as `files` sources.
    pub fn file_sources_toml(&self, dir: &Path) -> String {
        self.sources
            .iter()
            .map(|s| {
                format!(
                    "[[sources]]\nname = {:?}\ndisplay = {:?}\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{}\"\n\n",
                    s.name,
                    s.display,
                    dir.join(&s.folder).display().to_string(),
                    self.anchor
                )
            })
            .collect()
    }
}

/// Writes `portico.toml`: the gateway on 127.0.0.1:8080 serving the population's folders as
/// `files` sources (paths relative to the file), an SQLite file in the folder, the demo's
/// dev tokens (loopback only) and the shipped policy (which names `behavioral` as Part 2).
pub fn write_config(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let absolute = std::fs::canonicalize(dir)?;
    let mut text = format!(
        "# A generated population ({generator}).\n\
         # {patients} patients, {resources} resources in {n} sources; see manifest.json.\n\
         # Serve it: portico serve --config {config}\n\
         # `files` sources hold everything in the gateway's memory. For large populations run\n\
         # `portico simulate --source DIR/<source> --shift-dates-from {anchor} --page-size 1000`\n\
         # per folder and point kind = \"fhir\" sources at them instead.\n\n\
         [server]\nlisten = \"127.0.0.1:8080\"\n\
         dev_token = \"portico-demo-token-loopback-only\"\nutc_offset = \"UTC\"\n\n\
         [[server.dev_tokens]]\ntoken = \"demo-hie-partner-treatment\"\nviewer = \"partner:hie-north:TREAT\"\n\n\
         [database]\nurl = \"sqlite://{db}\"\n\n\
         [export]\ndirectory = \"{exports}\"\n\n\
         [auth]\n# A demo key-encryption key, made on first start (mode 0600).\n\
         key_file = \"{key}\"\ncreate_key_file = true\n\n\
         [aggregate]\ndeadline = \"30s\"\ncache_ttl = \"60s\"\ncache_max_records = 1000\n\n",
        generator = manifest.generator,
        patients = manifest.patients,
        resources = manifest.resources,
        n = manifest.sources.len(),
        config = absolute.join(CONFIG_FILE).display(),
        anchor = manifest.anchor,
        db = absolute.join("portico.db").display(),
        exports = absolute.join("exports").display(),
        key = absolute.join("portico.key").display(),
    );
    for s in &manifest.sources {
        text.push_str(&format!(
            "[[sources]]\nname = {:?}\ndisplay = {:?}\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{}\"\n\n",
            s.name, s.display, s.folder, manifest.anchor
        ));
    }
    std::fs::write(dir.join(CONFIG_FILE), text)
}
