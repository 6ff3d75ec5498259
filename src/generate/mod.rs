//! Scale data: a synthetic population across several source systems, for exports and
//! benchmarks (`portico fixtures generate`). It owns drawing people (with the overlaps,
//! demographic variations and look-alikes the patient index must get right), their
//! clinical content (the same kinds, sensitive content included, as the hand-written
//! fixtures), writing each source as a folder of NDJSON per type that the `files` source
//! and `portico simulate` read, a `portico.toml` serving them, and a manifest saying what was
//! generated so tests can hold the gateway to it. Output is a pure function of the options
//! (one seeded ChaCha stream, no clock, no hash-map order), and it is written as it is
//! drawn, one person at a time, so memory does not grow with the population. It must never
//! write anything outside the output folder, never leave a half-written folder behind, and
//! never produce data that looks real (names, phones, addresses and identifiers are invented).

mod codes;
mod hospital;
mod lab;
mod manifest;
mod output;
mod people;
mod shape;
mod specialty;

#[cfg(test)]
mod tests;

pub use manifest::{Manifest, SourceSummary};

use output::Output;
use people::Population;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The day generated dates are written relative to; sources shift them to today
/// (`shift_dates_from`), like the hand-written fixtures.
pub const ANCHOR: &str = "2026-01-01";

/// Most source systems a population may have.
pub const MAX_SOURCES: usize = 12;

/// Most patients one run may generate.
pub const MAX_PATIENTS: usize = 5_000_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub patients: usize,
    pub sources: usize,
    pub seed: u64,
    /// A folder that does not exist yet (or is empty).
    pub out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("--{name} {value}: {problem}")]
    BadArgument { name: &'static str, value: String, problem: String },
    #[error("{0}: the output folder exists and is not empty; choose a new folder or remove it")]
    OutputNotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GenerateError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
        move |source| GenerateError::Io { path: path.to_path_buf(), source }
    }
}

/// The kind of system a source is, which decides what it holds and how its ids look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The hospital EHR: visits, vitals, problems, medications, allergies, immunizations,
    /// notes, proxies of minors.
    Hospital,
    /// A reference laboratory: reports and results, provenance.
    Lab,
    /// An imaging center: studies, reports, procedures.
    Imaging,
    /// A federally assisted substance use program (42 CFR Part 2).
    Part2Program,
    /// A community clinic: like the EHR, for the people it sees.
    Clinic,
}

/// One source system of the population.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// Source name in the gateway config (and folder name).
    pub name: String,
    pub display: String,
    pub kind: SourceKind,
}

/// The sources of a population of `k`: ehr, lab, imaging, behavioral (Part 2), then
/// community clinics. The names match the shipped policy (`part2_sources = ["behavioral"]`).
pub fn source_plans(k: usize) -> Vec<SourcePlan> {
    (0..k)
        .map(|i| {
            let (name, display) = match i {
                0 => ("ehr".to_string(), "Harbor General Hospital".to_string()),
                1 => ("lab".into(), "Bayview Regional Reference Lab".into()),
                2 => ("imaging".into(), "Harbor Imaging Center".into()),
                3 => ("behavioral".into(), "Harbor Behavioral Health Clinic".into()),
                n => (format!("clinic-{}", n + 1), format!("Harbor Community Clinic {}", n - 3)),
            };
            SourcePlan { name, display, kind: kind_of(i) }
        })
        .collect()
}

/// The kind of the `index`-th source.
pub fn kind_of(index: usize) -> SourceKind {
    match index {
        0 => SourceKind::Hospital,
        1 => SourceKind::Lab,
        2 => SourceKind::Imaging,
        3 => SourceKind::Part2Program,
        _ => SourceKind::Clinic,
    }
}

/// Generates the population into `options.out` (written to a sibling folder first and
/// renamed at the end, so a failure leaves nothing behind) and returns its manifest.
pub fn generate(options: &GenerateOptions) -> Result<Manifest, GenerateError> {
    generate_as(options, Content::Everything)
}

/// Like [`generate`], but each source holds only its Patient records (and its directory):
/// the same people, overlaps and look-alikes, for patient index runs of up to
/// [`MAX_PATIENTS`] people. Streams like [`generate`]; memory does not grow with the
/// population.
pub fn generate_patients_only(options: &GenerateOptions) -> Result<Manifest, GenerateError> {
    generate_as(options, Content::PatientsOnly)
}

/// What each source holds of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Everything,
    PatientsOnly,
}

fn generate_as(options: &GenerateOptions, content: Content) -> Result<Manifest, GenerateError> {
    validate(options)?;
    let out = &options.out;
    if out.exists() {
        let empty = std::fs::read_dir(out).map_err(GenerateError::io(out))?.next().is_none();
        if !empty {
            return Err(GenerateError::OutputNotEmpty(out.clone()));
        }
    }
    let file_name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "population".into());
    let partial = out.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(GenerateError::io(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(GenerateError::io(&partial))?;
    let result = write_population(options, &partial, content);
    match result {
        Ok(manifest) => {
            if out.exists() {
                std::fs::remove_dir(out).map_err(GenerateError::io(out))?;
            }
            std::fs::rename(&partial, out).map_err(GenerateError::io(out))?;
            // The config names the database by absolute path: written once the folder is final.
            manifest::write_config(out, &manifest).map_err(GenerateError::io(out))?;
            Ok(manifest)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

fn validate(options: &GenerateOptions) -> Result<(), GenerateError> {
    if options.patients == 0 || options.patients > MAX_PATIENTS {
        return Err(GenerateError::BadArgument {
            name: "patients",
            value: options.patients.to_string(),
            problem: format!("must be between 1 and {MAX_PATIENTS}"),
        });
    }
    if options.sources == 0 || options.sources > MAX_SOURCES {
        return Err(GenerateError::BadArgument {
            name: "sources",
            value: options.sources.to_string(),
            problem: format!("must be between 1 and {MAX_SOURCES}"),
        });
    }
    Ok(())
}

fn write_population(options: &GenerateOptions, dir: &Path, content: Content) -> Result<Manifest, GenerateError> {
    let plans = source_plans(options.sources);
    let mut output = Output::create(dir, &plans, options.seed)?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let directories = output.write_directories(&mut rng, content == Content::Everything)?;
    let mut population = Population::new(&plans);
    for number in 1..=options.patients {
        let person = population.draw(number, &mut rng, &mut output.ids);
        for record in &person.records {
            let plan = &plans[record.source];
            let mut ctx = shape::Ctx {
                person: &person,
                record,
                source: record.source,
                directory: &directories[record.source],
                out: &mut output,
                rng: &mut rng,
            };
            if content == Content::PatientsOnly {
                ctx.write_patient_updated()?;
                continue;
            }
            match plan.kind {
                SourceKind::Hospital | SourceKind::Clinic => hospital::write(&mut ctx)?,
                SourceKind::Lab => lab::write(&mut ctx)?,
                SourceKind::Imaging => specialty::imaging(&mut ctx)?,
                SourceKind::Part2Program => specialty::part2_program(&mut ctx)?,
            }
        }
        output.person_done(&person)?;
    }
    output.finish(options, &plans)
}
