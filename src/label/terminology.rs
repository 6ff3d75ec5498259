//! Licensed terminologies, imported for exact hierarchy. A hospital that holds a SNOMED CT
//! RF2 release and an RxNorm RRF release runs `portico terminology import`; this module reads
//! them (SNOMED CT: the Snapshot concept, relationship and optional description files;
//! RxNorm: RXNCONSO.RRF and RXNREL.RRF), computes for each label rule of `labels.toml` every
//! active descendant of its SNOMED CT concepts (transitive is-a closure) and every current
//! RxNorm concept containing one of its ingredients (listed RxCUIs of TTY IN/PIN/MIN, or
//! `ingredients` names), and writes them, sorted and with their names, as an expansions file
//! (`[[label_expansions]]`, see [`render`]). At start-up it merges the expansion files that
//! `labels.toml` names under `imports` into the rules with the same id ([`merge_imports`]).
//!
//! It must never: go to the network; edit `labels.toml` or a release; leave a half-written
//! expansions file (it writes a temporary file and renames it); add a code a rule did not ask
//! for (only descendants of listed concepts and products of listed ingredients); touch a
//! resource or decide anything — matching stays with the rules module, decisions with the
//! policy.

use super::codes;
use super::LabelRuleConfig;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// SNOMED CT `116680003 |Is a (attribute)|`.
pub const IS_A: &str = "116680003";
/// SNOMED CT `900000000000003001 |Fully specified name|`.
const FSN: &str = "900000000000003001";

/// What went wrong, with the file (and line, or key) it is in.
#[derive(Debug, thiserror::Error)]
pub enum TerminologyError {
    #[error("{file}: cannot read: {message}")]
    Unreadable { file: String, message: String },
    /// A row of a release file that is not in its format.
    #[error("{file}:{line}: {message}")]
    Malformed { file: String, line: usize, message: String },
    /// A TOML file (labels.toml, an expansions file) with a wrong key or value.
    #[error("{file}: {key}: {message}")]
    Invalid { file: String, key: String, message: String },
    /// A release folder without the files it needs (or with several of one kind).
    #[error("{dir}: {message}")]
    Release { dir: String, message: String },
    #[error("{file}: cannot write: {message}")]
    Unwritable { file: String, message: String },
    #[error("{0}")]
    Usage(String),
}

impl TerminologyError {
    /// The file, the key (or line) and the message, for errors reported as "file: key: message".
    pub fn located(self) -> (String, String, String) {
        match self {
            TerminologyError::Invalid { file, key, message } => (file, key, message),
            TerminologyError::Malformed { file, line, message } => (file, format!("line {line}"), message),
            TerminologyError::Unreadable { file, message } => {
                (file, "(file)".into(), format!("cannot read: {message}"))
            }
            TerminologyError::Release { dir, message } => (dir, "(release)".into(), message),
            TerminologyError::Unwritable { file, message } => {
                (file, "(file)".into(), format!("cannot write: {message}"))
            }
            TerminologyError::Usage(message) => ("(command line)".into(), "(arguments)".into(), message),
        }
    }
}

type Result<T, E = TerminologyError> = std::result::Result<T, E>;

// ---------------------------------------------------------------- release files

/// The one file under `dir` (searched a few folders deep) whose name starts with `prefix`
/// and ends with `suffix`.
fn missing_file(dir: &Path, prefix: &str, suffix: &str, option: &str) -> TerminologyError {
    TerminologyError::Release {
        dir: dir.display().to_string(),
        message: format!("no {prefix}*{suffix} in this folder or below it: point {option} at a release folder"),
    }
}

/// [`release_file`] of a file the release must have.
fn required_file(dir: &Path, prefix: &str, suffix: &str, option: &str) -> Result<PathBuf> {
    release_file(dir, prefix, suffix, option, true)?.ok_or_else(|| missing_file(dir, prefix, suffix, option))
}

fn release_file(dir: &Path, prefix: &str, suffix: &str, option: &str, required: bool) -> Result<Option<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((folder, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| TerminologyError::Unreadable { file: folder.display().to_string(), message: e.to_string() })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && depth < 4 {
                stack.push((path, depth + 1));
            } else if name.starts_with(prefix) && name.ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    match found.len() {
        0 if required => Err(missing_file(dir, prefix, suffix, option)),
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(TerminologyError::Release {
            dir: dir.display().to_string(),
            message: format!(
                "several {prefix}*{suffix} files ({}): point {option} at the folder of one release",
                found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Calls `row` with each non-empty line (1-based number, text without its line ending or a
/// leading byte-order mark). `row` returns the problem with a line; the error names the file
/// and the line.
fn each_line(path: &Path, mut row: impl FnMut(usize, &str) -> Result<(), String>) -> Result<()> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path)
        .map_err(|e| TerminologyError::Unreadable { file: file.clone(), message: e.to_string() })?;
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line =
            line.map_err(|e| TerminologyError::Malformed { file: file.clone(), line: n + 1, message: e.to_string() })?;
        let line = line.trim_end_matches(['\r', '\n']);
        let line = if n == 0 { line.trim_start_matches('\u{feff}') } else { line };
        if line.is_empty() {
            continue;
        }
        row(n + 1, line).map_err(|message| TerminologyError::Malformed { file: file.clone(), line: n + 1, message })?;
    }
    Ok(())
}

/// Calls `row` with the tab-separated fields of every line of an RF2 file after its header,
/// which must be `header`.
fn each_rf2_row(path: &Path, header: &[&str], mut row: impl FnMut(&[&str]) -> Result<(), String>) -> Result<()> {
    let mut empty = true;
    each_line(path, |n, line| {
        empty = false;
        let fields: Vec<&str> = line.split('\t').collect();
        if n == 1 {
            return if fields == header {
                Ok(())
            } else {
                Err(format!("the header is `{}`, expected the RF2 header `{}`", fields.join(" "), header.join(" ")))
            };
        }
        if fields.len() != header.len() {
            return Err(format!("{} tab-separated fields, expected {}", fields.len(), header.len()));
        }
        row(&fields)
    })?;
    if empty {
        return Err(TerminologyError::Malformed {
            file: path.display().to_string(),
            line: 1,
            message: format!("the file is empty, expected the RF2 header `{}`", header.join(" ")),
        });
    }
    Ok(())
}

fn sctid(text: &str, column: &str) -> Result<u64, String> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{column} `{text}` is not a SNOMED CT identifier"));
    }
    text.parse().map_err(|_| format!("{column} `{text}` is not a SNOMED CT identifier"))
}

fn rf2_active(text: &str) -> Result<bool, String> {
    match text {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(format!("active `{other}` must be 0 or 1")),
    }
}

// ---------------------------------------------------------------- SNOMED CT

/// What a SNOMED CT snapshot says of a concept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    /// Retired (inactive in this release).
    Inactive,
    Absent,
}

/// The is-a hierarchy of a SNOMED CT RF2 Snapshot.
#[derive(Debug, Default)]
pub struct SnomedRelease {
    /// Every concept of the concept file, with its `active` flag.
    concepts: HashMap<u64, bool>,
    /// Parent → its children by an active is-a relationship.
    children: HashMap<u64, Vec<u64>>,
    /// Fully specified names (else another active description) of the description file.
    names: HashMap<u64, String>,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// The latest effectiveTime of the concept file (the release date, YYYYMMDD).
    pub effective_time: String,
}

impl SnomedRelease {
    /// Reads `sct2_Concept_Snapshot_*.txt`, `sct2_Relationship_Snapshot_*.txt` and, when
    /// present, `sct2_Description_Snapshot*.txt` under `dir`. Only active relationships of
    /// type is-a (116680003, whatever their characteristic type) between concepts count.
    pub fn load(dir: &Path) -> Result<SnomedRelease> {
        const OPT: &str = "--snomed-rf2";
        let concept_file = required_file(dir, "sct2_Concept_Snapshot", ".txt", OPT)?;
        let relationship_file = required_file(dir, "sct2_Relationship_Snapshot", ".txt", OPT)?;
        let description_file = release_file(dir, "sct2_Description_Snapshot", ".txt", OPT, false)?;
        let mut release = SnomedRelease::default();

        each_rf2_row(&concept_file, &["id", "effectiveTime", "active", "moduleId", "definitionStatusId"], |f| {
            let id = sctid(f[0], "id")?;
            let active = rf2_active(f[2])?;
            if f[1].len() != 8 || !f[1].bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("effectiveTime `{}` is not YYYYMMDD", f[1]));
            }
            if release.concepts.insert(id, active).is_some() {
                return Err(format!("concept {id} is listed twice (a snapshot lists each concept once)"));
            }
            if f[1] > release.effective_time.as_str() {
                release.effective_time = f[1].to_string();
            }
            Ok(())
        })?;

        let header = [
            "id",
            "effectiveTime",
            "active",
            "moduleId",
            "sourceId",
            "destinationId",
            "relationshipGroup",
            "typeId",
            "characteristicTypeId",
            "modifierId",
        ];
        each_rf2_row(&relationship_file, &header, |f| {
            sctid(f[0], "id")?;
            let active = rf2_active(f[2])?;
            let source = sctid(f[4], "sourceId")?;
            let destination = sctid(f[5], "destinationId")?;
            sctid(f[7], "typeId")?;
            if active && f[7] == IS_A {
                release.children.entry(destination).or_default().push(source);
            }
            Ok(())
        })?;

        if let Some(file) = &description_file {
            let header = [
                "id",
                "effectiveTime",
                "active",
                "moduleId",
                "conceptId",
                "languageCode",
                "typeId",
                "term",
                "caseSignificanceId",
            ];
            let mut fsn: HashSet<u64> = HashSet::new();
            each_rf2_row(file, &header, |f| {
                let concept = sctid(f[4], "conceptId")?;
                if !rf2_active(f[2])? {
                    return Ok(());
                }
                let is_fsn = f[6] == FSN;
                if is_fsn || !release.names.contains_key(&concept) && !fsn.contains(&concept) {
                    release.names.insert(concept, f[7].to_string());
                }
                if is_fsn {
                    fsn.insert(concept);
                }
                Ok(())
            })?;
        }
        release.files = [Some(concept_file), Some(relationship_file), description_file].into_iter().flatten().collect();
        Ok(release)
    }

    pub fn status(&self, id: u64) -> Status {
        match self.concepts.get(&id) {
            Some(true) => Status::Active,
            Some(false) => Status::Inactive,
            None => Status::Absent,
        }
    }

    /// Every active concept below `id` by active is-a relationships (not `id` itself). A
    /// retired concept is left out, and so is what lies below only through it.
    pub fn descendants(&self, id: u64) -> BTreeSet<u64> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![id];
        while let Some(parent) = todo.pop() {
            for &child in self.children.get(&parent).into_iter().flatten() {
                if child != id && self.status(child) == Status::Active && seen.insert(child) {
                    todo.push(child);
                }
            }
        }
        seen
    }

    pub fn name(&self, id: u64) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }
}

// ---------------------------------------------------------------- RxNorm

/// Relationship attributes (RELA) that lead from a concept to what it is made of, as RxNorm
/// reads them: a row of RXNREL.RRF says "RXCUI2 RELA RXCUI1". `true`: RXCUI2 is the product
/// and RXCUI1 its part (SCD consists_of SCDC); `false`: the inverse attribute, RXCUI2 is the
/// part (SCDC constitutes SCD). Both directions are listed, so a release that holds only
/// one of each pair reads the same.
pub const PRODUCT_RELATIONS: &[(&str, bool)] = &[
    ("has_ingredient", true), // SCDC, SCDF, SBD… → IN (or BN, which is not followed)
    ("ingredient_of", false),
    ("has_ingredients", true), // SCD, SBD → MIN
    ("ingredients_of", false),
    ("has_precise_ingredient", true), // SCDC, SBDC → PIN
    ("precise_ingredient_of", false),
    ("consists_of", true), // SCD → SCDC, SBD → SBDC
    ("constitutes", false),
    ("tradename_of", true), // SBD → SCD, SBDC → SCDC, SBDF → SCDF, BPCK → GPCK
    ("has_tradename", false),
    ("contains", true), // GPCK, BPCK → SCD, SBD
    ("contained_in", false),
    ("isa", true), // SCD → SCDF, SBD → SBDF, SCDF → SCDG …
    ("inverse_isa", false),
    ("form_of", true), // PIN → IN
    ("has_form", false),
    ("has_part", true), // MIN → IN
    ("part_of", false),
];

/// Term types of RxNorm ingredients: a rule's `rxnorm` code of one of these is expanded.
pub const INGREDIENT_TTYS: &[&str] = &["IN", "PIN", "MIN"];
/// Term types never added (a brand name or a dose form contains no ingredient).
const NOT_PRODUCT_TTYS: &[&str] = &["BN", "DF", "DFG"];
/// Term types of atoms that are not a concept's own name.
const SYNONYM_TTYS: &[&str] = &["SY", "TMSY", "PSN", "ET"];

/// True for a SUPPRESS value of a current row: N (or empty). O (obsolete), Y (suppressed
/// by NLM) and E (suppressible by editorial decision) do not count.
fn current(suppress: &str) -> bool {
    matches!(suppress, "N" | "")
}

/// The current concepts of an RxNorm release and how they are made of each other.
#[derive(Debug, Default)]
pub struct RxNormRelease {
    /// Current concepts (with a current SAB=RXNORM atom) and the term types of those atoms.
    ttys: HashMap<u64, BTreeSet<String>>,
    names: HashMap<u64, String>,
    /// Lower-case names of IN/PIN/MIN atoms → their concepts.
    ingredients: HashMap<String, BTreeSet<u64>>,
    /// Part → the concepts directly made of it.
    users: HashMap<u64, Vec<u64>>,
    pub files: Vec<PathBuf>,
}

fn rxcui(text: &str, column: &str) -> Result<u64, String> {
    codes::checked_code(codes::RXNORM, text)
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{column} `{text}` is not an RxCUI"))
}

/// The `|`-separated fields of an RRF row of `n` columns (each row ends with a `|`).
fn rrf_fields<'a>(line: &'a str, n: usize, columns: &str) -> Result<Vec<&'a str>, String> {
    let mut fields: Vec<&str> = line.split('|').collect();
    if fields.len() == n + 1 && fields[n].is_empty() {
        fields.pop();
    }
    if fields.len() != n {
        return Err(format!("{} |-separated fields, expected {n} ({columns})", fields.len()));
    }
    Ok(fields)
}

impl RxNormRelease {
    /// Reads RXNCONSO.RRF and RXNREL.RRF under `dir` (e.g. the `rrf` folder of a full
    /// release). Only SAB=RXNORM rows whose SUPPRESS is N count.
    pub fn load(dir: &Path) -> Result<RxNormRelease> {
        const OPT: &str = "--rxnorm-rrf";
        let conso_file = required_file(dir, "RXNCONSO", ".RRF", OPT)?;
        let rel_file = required_file(dir, "RXNREL", ".RRF", OPT)?;
        let mut release = RxNormRelease::default();
        let mut name_is_own: HashSet<u64> = HashSet::new();
        each_line(&conso_file, |_, line| {
            const COLUMNS: &str =
                "RXCUI|LAT|TS|LUI|STT|SUI|ISPREF|RXAUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF";
            let f = rrf_fields(line, 18, COLUMNS)?;
            let cui = rxcui(f[0], "RXCUI")?;
            let (sab, tty, name, suppress) = (f[11], f[12], f[14], f[16]);
            if sab != "RXNORM" || !current(suppress) {
                return Ok(());
            }
            if tty.is_empty() {
                return Err("an RXNORM row without a TTY".into());
            }
            release.ttys.entry(cui).or_default().insert(tty.to_string());
            let own = !SYNONYM_TTYS.contains(&tty);
            if own && name_is_own.insert(cui) || !release.names.contains_key(&cui) {
                release.names.insert(cui, name.to_string());
            }
            if INGREDIENT_TTYS.contains(&tty) {
                release.ingredients.entry(name.trim().to_lowercase()).or_default().insert(cui);
            }
            Ok(())
        })?;
        each_line(&rel_file, |_, line| {
            const COLUMNS: &str =
                "RXCUI1|RXAUI1|STYPE1|REL|RXCUI2|RXAUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|DIR|RG|SUPPRESS|CVF";
            let f = rrf_fields(line, 16, COLUMNS)?;
            let (rela, sab, suppress) = (f[7], f[10], f[14]);
            if sab != "RXNORM" || !current(suppress) || f[0].is_empty() || f[4].is_empty() {
                return Ok(());
            }
            let (first, second) = (rxcui(f[0], "RXCUI1")?, rxcui(f[4], "RXCUI2")?);
            let Some(&(_, product_second)) = PRODUCT_RELATIONS.iter().find(|(r, _)| *r == rela) else { return Ok(()) };
            let (product, part) = if product_second { (second, first) } else { (first, second) };
            let users = release.users.entry(part).or_default();
            if !users.contains(&product) {
                users.push(product);
            }
            Ok(())
        })?;
        release.files = vec![conso_file, rel_file];
        Ok(release)
    }

    /// True when the release has `cui` as a current concept.
    pub fn is_current(&self, cui: u64) -> bool {
        self.ttys.contains_key(&cui)
    }

    pub fn is_ingredient(&self, cui: u64) -> bool {
        self.ttys.get(&cui).is_some_and(|t| t.iter().any(|t| INGREDIENT_TTYS.contains(&t.as_str())))
    }

    /// The current IN/PIN/MIN concepts named `name` (case-insensitive).
    pub fn ingredients_named(&self, name: &str) -> BTreeSet<u64> {
        self.ingredients.get(&name.trim().to_lowercase()).cloned().unwrap_or_default()
    }

    /// Every current concept made of `ingredient`, directly or through its parts (SCDC → SCD
    /// → SBD → BPCK …), with the precise ingredients (PIN) and multiple-ingredient concepts
    /// (MIN) of it; never a brand name or dose form, never `ingredient` itself.
    pub fn products_of(&self, ingredient: u64) -> BTreeSet<u64> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![ingredient];
        while let Some(part) = todo.pop() {
            for &user in self.users.get(&part).into_iter().flatten() {
                let Some(ttys) = self.ttys.get(&user) else { continue };
                if user == ingredient || ttys.iter().all(|t| NOT_PRODUCT_TTYS.contains(&t.as_str())) {
                    continue;
                }
                if seen.insert(user) {
                    todo.push(user);
                }
            }
        }
        seen
    }

    /// The concept's name and its main term type ("SBD").
    pub fn describe(&self, cui: u64) -> Option<String> {
        let name = self.names.get(&cui)?;
        let tty = self.ttys.get(&cui)?.iter().find(|t| !SYNONYM_TTYS.contains(&t.as_str()));
        Some(match tty {
            Some(t) => format!("{name} ({t})"),
            None => name.clone(),
        })
    }
}

// ---------------------------------------------------------------- import

/// The parts of a label rule the import reads: its id, SNOMED CT concepts, RxNorm codes and
/// ingredient names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleCodes {
    pub id: String,
    pub snomed: Vec<String>,
    pub rxnorm: Vec<String>,
    pub ingredients: Vec<String>,
}

/// Reads the rules of a `labels.toml` for the import (only `id`, `snomed`, `rxnorm` and
/// `ingredients`; `portico policy check` validates the rest).
pub fn read_rule_codes(path: &Path) -> Result<Vec<RuleCodes>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TerminologyError::Unreadable { file: file.clone(), message: e.to_string() })?;
    let invalid = |key: String, message: String| TerminologyError::Invalid { file: file.clone(), key, message };
    let value: toml::Value = toml::from_str(&text).map_err(|e| invalid("(syntax)".into(), e.message().to_string()))?;
    let Some(rules) = value.get("label_rules") else { return Ok(Vec::new()) };
    let rules =
        rules.as_array().ok_or_else(|| invalid("label_rules".into(), "must be [[label_rules]] tables".into()))?;
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let list = |name: &str| -> Result<Vec<String>> {
            match rule.get(name) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| invalid(format!("label_rules[{i}].{name}"), "must be a list of strings".into())),
            }
        };
        let id = rule
            .get("id")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| invalid(format!("label_rules[{i}].id"), "missing (every rule has an id)".into()))?;
        out.push(RuleCodes {
            id: id.to_string(),
            snomed: list("snomed")?,
            rxnorm: list("rxnorm")?,
            ingredients: list("ingredients")?,
        });
    }
    Ok(out)
}

/// The codes an import adds to one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub rule: String,
    pub snomed: BTreeSet<u64>,
    pub rxnorm: BTreeSet<u64>,
}

/// For every rule: the active descendants of its SNOMED CT concepts and the products of its
/// RxNorm ingredients (listed RxCUIs of TTY IN/PIN/MIN, and the ingredients its
/// `ingredients` name, which are added themselves too), minus the codes it lists already.
/// Rules that gain nothing are left out. Also returns a warning for every listed code the
/// release does not have (absent, retired or obsolete) and every unknown ingredient name.
pub fn expand(
    rules: &[RuleCodes],
    snomed: Option<&SnomedRelease>,
    rxnorm: Option<&RxNormRelease>,
) -> (Vec<Expansion>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    for rule in rules {
        let mut e = Expansion { rule: rule.id.clone(), ..Expansion::default() };
        let id = &rule.id;
        if let Some(release) = snomed {
            let listed: BTreeSet<u64> = rule.snomed.iter().filter_map(|c| c.trim().parse().ok()).collect();
            for code in &rule.snomed {
                let Ok(concept) = code.trim().parse::<u64>() else {
                    warnings.push(format!("rule `{id}`: snomed `{code}` is not a SNOMED CT identifier; skipped"));
                    continue;
                };
                match release.status(concept) {
                    Status::Active => e.snomed.extend(release.descendants(concept)),
                    Status::Inactive => warnings.push(format!(
                        "rule `{id}`: SNOMED CT {concept} is inactive (retired) in the release; nothing added for it"
                    )),
                    Status::Absent => warnings
                        .push(format!("rule `{id}`: SNOMED CT {concept} is not in the release; nothing added for it")),
                }
            }
            e.snomed.retain(|c| !listed.contains(c));
        }
        if let Some(release) = rxnorm {
            let listed: BTreeSet<u64> = rule.rxnorm.iter().filter_map(|c| c.trim().parse().ok()).collect();
            for code in &rule.rxnorm {
                let Ok(cui) = code.trim().parse::<u64>() else {
                    warnings.push(format!("rule `{id}`: rxnorm `{code}` is not an RxCUI; skipped"));
                    continue;
                };
                if !release.is_current(cui) {
                    warnings.push(format!(
                        "rule `{id}`: RxNorm {cui} is not a current concept of the release (absent, obsolete or suppressed); nothing added for it"
                    ));
                } else if release.is_ingredient(cui) {
                    e.rxnorm.extend(release.products_of(cui));
                }
            }
            for name in &rule.ingredients {
                let found = release.ingredients_named(name);
                if found.is_empty() {
                    warnings.push(format!(
                        "rule `{id}`: ingredient `{name}` is not the name of a current RxNorm ingredient (IN, PIN or MIN) in the release"
                    ));
                }
                for cui in found {
                    e.rxnorm.insert(cui);
                    e.rxnorm.extend(release.products_of(cui));
                }
            }
            e.rxnorm.retain(|c| !listed.contains(c));
        }
        if !e.snomed.is_empty() || !e.rxnorm.is_empty() {
            out.push(e);
        }
    }
    (out, warnings)
}

/// What `portico terminology import` is given.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub labels: PathBuf,
    pub snomed_rf2: Option<PathBuf>,
    pub rxnorm_rrf: Option<PathBuf>,
    pub out: PathBuf,
}

/// What an import wrote.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub rules: usize,
    pub snomed: usize,
    pub rxnorm: usize,
    pub warnings: Vec<String>,
}

/// Reads the rules and the releases, computes the expansions and writes them to
/// `options.out` (atomically). Nothing is written when any input is unreadable or malformed.
pub fn import(options: &ImportOptions) -> Result<ImportReport> {
    if options.snomed_rf2.is_none() && options.rxnorm_rrf.is_none() {
        return Err(TerminologyError::Usage("give --snomed-rf2 DIR, --rxnorm-rrf DIR or both".into()));
    }
    let rules = read_rule_codes(&options.labels)?;
    let snomed = options.snomed_rf2.as_deref().map(SnomedRelease::load).transpose()?;
    let rxnorm = options.rxnorm_rrf.as_deref().map(RxNormRelease::load).transpose()?;
    let (expansions, warnings) = expand(&rules, snomed.as_ref(), rxnorm.as_ref());
    let mut sources = vec![format!("label rules: {}", options.labels.display())];
    if let Some(s) = &snomed {
        sources.push(format!("SNOMED CT RF2 snapshot, effective {}:", s.effective_time));
        sources.extend(s.files.iter().map(|f| format!("  {}", f.display())));
    }
    if let Some(r) = &rxnorm {
        sources.push("RxNorm RRF:".into());
        sources.extend(r.files.iter().map(|f| format!("  {}", f.display())));
    }
    let text = render(&expansions, &sources, chrono::Utc::now(), snomed.as_ref(), rxnorm.as_ref());
    write_atomically(&options.out, &text)?;
    Ok(ImportReport {
        rules: expansions.len(),
        snomed: expansions.iter().map(|e| e.snomed.len()).sum(),
        rxnorm: expansions.iter().map(|e| e.rxnorm.len()).sum(),
        warnings,
    })
}

/// The expansions file: a header comment (what it came from, when), then one
/// `[[label_expansions]]` table per rule with `rule`, `snomed` and `rxnorm` (codes as strings,
/// in numeric order, each with its name as a comment).
pub fn render(
    expansions: &[Expansion],
    sources: &[String],
    at: chrono::DateTime<chrono::Utc>,
    snomed: Option<&SnomedRelease>,
    rxnorm: Option<&RxNormRelease>,
) -> String {
    let comment = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    let mut out = String::new();
    out += "# Label rule expansions, written by `portico terminology import` — do not edit by hand;\n";
    out += "# run the import again after a new release. labels.toml names this file under `imports`;\n";
    out += "# loading adds each list to the rule with the same id.\n";
    out += &format!("# Written {}\n", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    for s in sources {
        out += &format!("# {}\n", comment(s));
    }
    out += "# snomed: every active descendant (transitive is-a, 116680003) of the rule's SNOMED CT concepts.\n";
    out += "# rxnorm: every current RxNorm concept containing one of the rule's ingredients (its IN, PIN\n";
    out += "# or MIN RxCUIs and its `ingredients` names): SCDC, SCD, SBD, packs, forms …\n";
    for e in expansions {
        out += &format!("\n[[label_expansions]]\nrule = {}\n", toml::Value::String(e.rule.clone()));
        for (key, codes) in [("snomed", &e.snomed), ("rxnorm", &e.rxnorm)] {
            if codes.is_empty() {
                continue;
            }
            out += &format!("{key} = [\n");
            for &code in codes {
                let name = if key == "snomed" {
                    snomed.and_then(|r| r.name(code)).map(str::to_string)
                } else {
                    rxnorm.and_then(|r| r.describe(code))
                };
                match name {
                    Some(n) => out += &format!("  \"{code}\", # {}\n", comment(&n)),
                    None => out += &format!("  \"{code}\",\n"),
                }
            }
            out += "]\n";
        }
    }
    out
}

/// Writes `text` to a temporary file beside `path`, flushes it to disk and renames it over
/// `path`: readers see the old file or the new one, never a part.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let file = path.display().to_string();
    let fail = |e: std::io::Error| TerminologyError::Unwritable { file: file.clone(), message: e.to_string() };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "expansions.toml".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

// ---------------------------------------------------------------- loading

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpansionsFile {
    #[serde(default)]
    label_expansions: Vec<ExpansionConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpansionConfig {
    rule: String,
    #[serde(default)]
    snomed: Vec<String>,
    #[serde(default)]
    rxnorm: Vec<String>,
}

/// Merges the expansion files `imports` (relative to the folder of `labels_file`) into
/// `rules`: each `[[label_expansions]]` adds its codes to the rule with its id (codes the
/// rule has already are not repeated). Returns how many codes were added. Errors name the
/// file and key: an import that cannot be read (`imports[i]` of labels.toml), an unknown
/// rule id, a code with a wrong check digit, an unknown key.
pub fn merge_imports(rules: &mut [LabelRuleConfig], imports: &[PathBuf], labels_file: &Path) -> Result<usize> {
    let base = labels_file.parent().unwrap_or(Path::new("."));
    let mut added = 0;
    for (i, import) in imports.iter().enumerate() {
        let path = base.join(import);
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| TerminologyError::Invalid {
            file: labels_file.display().to_string(),
            key: format!("imports[{i}]"),
            message: format!("cannot read {file}: {e} (write it with `portico terminology import`)"),
        })?;
        let invalid = |key: String, message: String| TerminologyError::Invalid { file: file.clone(), key, message };
        let value: toml::Value =
            toml::from_str(&text).map_err(|e| invalid("(syntax)".into(), e.message().to_string()))?;
        let parsed: ExpansionsFile = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            invalid(if key == "." { "(top level)".into() } else { key }, e.into_inner().message().to_string())
        })?;
        let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
        for (n, r) in rules.iter().enumerate() {
            by_id.entry(r.id.clone()).or_insert(n);
        }
        for (j, expansion) in parsed.label_expansions.into_iter().enumerate() {
            let Some(&n) = by_id.get(expansion.rule.as_str()) else {
                return Err(invalid(
                    format!("label_expansions[{j}].rule"),
                    format!("`{}` is not the id of a label rule in {}", expansion.rule, labels_file.display()),
                ));
            };
            let rule = &mut rules[n];
            for (key, system, new, list) in [
                ("snomed", codes::SNOMED, expansion.snomed, &mut rule.snomed),
                ("rxnorm", codes::RXNORM, expansion.rxnorm, &mut rule.rxnorm),
            ] {
                let mut have: HashSet<String> = list.iter().map(|c| c.trim().to_string()).collect();
                for code in new {
                    let code = codes::checked_code(system, &code)
                        .map_err(|m| invalid(format!("label_expansions[{j}].{key}"), m))?;
                    if have.insert(code.clone()) {
                        list.push(code);
                        added += 1;
                    }
                }
            }
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/terminology").join(path)
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn snomed_closure_follows_active_is_a_only() {
        let sct = SnomedRelease::load(&data("snomed")).unwrap();
        assert_eq!(sct.effective_time, "20250301");
        assert_eq!(sct.files.len(), 3, "concepts, relationships, descriptions");
        // Three levels below HIV infection, 990004003 under two parents; not the concept
        // with only an inactive is-a (990006001), not the retired concept or what is below
        // it only through it (990007005, 990008000), not a finding-site target (990009008).
        assert_eq!(sct.descendants(86406008), set(&[990001006, 990002004, 990003009, 990004003, 990005002]));
        assert_eq!(sct.descendants(990003009), set(&[990005002]));
        assert_eq!(sct.descendants(990005002), set(&[]));
        assert!(sct.descendants(404684003).contains(&990006001), "still a finding by its active is-a");
        assert_eq!(sct.status(990007005), Status::Inactive);
        assert_eq!(sct.status(165816005), Status::Absent);
        assert_eq!(
            sct.name(990001006),
            Some("Synthetic HIV infection, stage 1 (disorder)"),
            "the FSN, not the old synonym"
        );
    }

    #[test]
    fn rxnorm_products_are_found_from_product_to_ingredient() {
        let rx = RxNormRelease::load(&data("rxnorm")).unwrap();
        assert!(rx.is_ingredient(900001) && rx.is_ingredient(900200) && !rx.is_ingredient(900020));
        assert!(!rx.is_current(900070), "SUPPRESS=O is obsolete");
        // SCDC, SCD, SBD (tradename_of), SBDC (from the has_tradename row alone), GPCK (from
        // the contains row alone), BPCK, SCDF (SCD isa SCDF), PIN (form_of), MIN (has_part)
        // and the SCD of the MIN; not the brand name, the dose form, the obsolete SCD, the
        // SCD linked by suppressed rows or by another source, nor otherol's products.
        assert_eq!(
            rx.products_of(900001),
            set(&[900002, 900010, 900020, 900040, 900045, 900050, 900055, 900060, 900200, 900210])
        );
        assert_eq!(rx.products_of(900100), set(&[900105, 900110, 900200, 900210]));
        assert_eq!(rx.ingredients_named(" Otherol "), set(&[900100]));
        assert_eq!(rx.ingredients_named("examplex"), set(&[]), "a brand name is not an ingredient");
        assert_eq!(rx.describe(900020).as_deref(), Some("examplavir 50 MG Oral Tablet (SCD)"));
    }

    #[test]
    fn expansions_per_rule_with_warnings_for_what_the_release_lacks() {
        let rules = read_rule_codes(&data("labels.toml")).unwrap();
        assert_eq!(rules[2].ingredients, ["otherol", "nosuchdrug"]);
        let sct = SnomedRelease::load(&data("snomed")).unwrap();
        let rx = RxNormRelease::load(&data("rxnorm")).unwrap();
        let (expansions, warnings) = expand(&rules, Some(&sct), Some(&rx));
        let by_rule: BTreeMap<&str, &Expansion> = expansions.iter().map(|e| (e.rule.as_str(), e)).collect();
        assert_eq!(by_rule["hiv"].snomed, set(&[990001006, 990002004, 990003009, 990004003, 990005002]));
        assert!(by_rule["hiv"].rxnorm.contains(&900040) && !by_rule["hiv"].rxnorm.contains(&900001), "listed already");
        assert_eq!(by_rule["mh"].snomed, set(&[990011004]));
        assert_eq!(by_rule["sud"].rxnorm, set(&[900100, 900105, 900110, 900200, 900210]), "the named ingredient too");
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("rule `hiv`: SNOMED CT 165816005 is not in the release"), "{warnings:?}");
        assert!(warnings[1].contains("rule `mh`: SNOMED CT 990007005 is inactive (retired)"), "{warnings:?}");
        assert!(warnings[2].contains("rule `sud`: ingredient `nosuchdrug`"), "{warnings:?}");
        // Only one release: the other system's lists are left alone.
        let (only_rx, _) = expand(&rules, None, Some(&rx));
        assert!(only_rx.iter().all(|e| e.snomed.is_empty()) && only_rx.len() == 2);
    }

    /// The folder of labels.toml copied to a temporary folder.
    fn labels_copy() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels.toml");
        std::fs::copy(data("labels.toml"), &labels).unwrap();
        (dir, labels)
    }

    fn rules_of(labels: &Path) -> (Vec<LabelRuleConfig>, Vec<PathBuf>) {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            imports: Vec<PathBuf>,
            label_rules: Vec<LabelRuleConfig>,
        }
        let f: File = toml::from_str(&std::fs::read_to_string(labels).unwrap()).unwrap();
        (f.label_rules, f.imports)
    }

    #[test]
    fn imported_expansions_merge_into_rules_and_label_descendants_and_brands() {
        let (dir, labels) = labels_copy();
        let out = dir.path().join("terminology/expansions.toml");
        let options = ImportOptions {
            labels: labels.clone(),
            snomed_rf2: Some(data("snomed")),
            rxnorm_rrf: Some(data("rxnorm")),
            out: out.clone(),
        };
        let report = import(&options).unwrap();
        assert_eq!((report.rules, report.snomed, report.warnings.len()), (3, 6, 3));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("# Label rule expansions"), "{text}");
        assert!(text.contains("sct2_Relationship_Snapshot_INT_20250301.txt") && text.contains("effective 20250301"));
        assert!(text.contains("  \"990005002\", # Synthetic HIV stage 1 with recurrent oral candidiasis (disorder)\n"));
        assert!(text.contains("  \"900040\", # examplavir 50 MG Oral Tablet [Examplex] (SBD)\n"));
        let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap()).unwrap().flatten().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");

        let (mut rules, imports) = rules_of(&labels);
        let added = merge_imports(&mut rules, &imports, &labels).unwrap();
        assert_eq!(added, report.snomed + report.rxnorm);
        assert_eq!(merge_imports(&mut rules, &imports, &labels).unwrap(), 0, "codes are not repeated");
        let labeler = super::super::Labeler::new(&rules).unwrap();
        let mut record = vec![
            json!({"resourceType": "Condition", "id": "c1",
                   "code": {"coding": [{"system": codes::SNOMED, "code": "990005002"}]}}),
            json!({"resourceType": "MedicationRequest", "id": "m1",
                   "medicationCodeableConcept": {"coding": [{"system": codes::RXNORM, "code": "900040"}]}}),
            json!({"resourceType": "MedicationRequest", "id": "m2",
                   "medicationCodeableConcept": {"coding": [{"system": codes::RXNORM, "code": "900110"}]}}),
            json!({"resourceType": "Condition", "id": "c2",
                   "code": {"coding": [{"system": codes::SNOMED, "code": "990008000"}]}}),
        ];
        let why = labeler.label_record(&mut record, &HashSet::new());
        assert_eq!(why["Condition/c1"], ["hiv"], "a descendant SNOMED CT concept");
        assert_eq!(why["MedicationRequest/m1"], ["hiv"], "a branded product of the ingredient");
        assert_eq!(why["MedicationRequest/m2"], ["sud"], "a product of a named ingredient");
        assert!(!why.contains_key("Condition/c2"), "below a retired concept only");
        assert!(super::super::labels_of(&record[0]).contains("HIV"));
    }

    #[test]
    fn merge_names_the_file_and_key_of_what_is_wrong() {
        let (dir, labels) = labels_copy();
        let (rules, _) = rules_of(&labels);
        let import = dir.path().join("x.toml");
        let cases = [
            (
                "[[label_expansions]]\nrule = \"nope\"\nsnomed = [\"990001006\"]\n",
                "label_expansions[0].rule",
                "`nope` is not the id of a label rule",
            ),
            (
                "[[label_expansions]]\nrule = \"hiv\"\nsnomed = [\"990001007\"]\n",
                "label_expansions[0].snomed",
                "check digit",
            ),
            (
                "[[label_expansions]]\nrule = \"hiv\"\nloinc = [\"1-8\"]\n",
                "label_expansions[0]",
                "unknown field `loinc`",
            ),
        ];
        for (text, key, wanted) in cases {
            std::fs::write(&import, text).unwrap();
            let err = merge_imports(&mut rules.clone(), &[PathBuf::from("x.toml")], &labels).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{}: {key}", import.display())), "{err}");
            assert!(err.contains(wanted), "{err}");
        }
        let err = merge_imports(&mut rules.clone(), &[PathBuf::from("absent.toml")], &labels).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: imports[0]: cannot read", labels.display())), "{err}");
        assert!(err.contains("absent.toml"), "{err}");
    }

    #[test]
    fn malformed_releases_name_file_and_line_and_write_nothing() {
        let copy = |from: &Path, to: &Path| {
            for entry in std::fs::read_dir(from).unwrap().flatten() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        };
        let (dir, labels) = labels_copy();
        let rf2 = dir.path().join("rf2");
        let rrf = dir.path().join("rrf");
        std::fs::create_dir_all(&rf2).unwrap();
        std::fs::create_dir_all(&rrf).unwrap();
        copy(&data("snomed/SnomedCT_SyntheticRF2_20250301/Snapshot/Terminology"), &rf2);
        copy(&data("rxnorm/rrf"), &rrf);
        let out = dir.path().join("out/expansions.toml");
        let run = |snomed: bool, rxnorm: bool| {
            import(&ImportOptions {
                labels: labels.clone(),
                snomed_rf2: snomed.then(|| rf2.clone()),
                rxnorm_rrf: rxnorm.then(|| rrf.clone()),
                out: out.clone(),
            })
        };
        let edit = |path: PathBuf, line: usize, new: &str| {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines[line - 1] = new.to_string();
            std::fs::write(&path, lines.join("\n")).unwrap();
            path
        };
        let rel = rf2.join("sct2_Relationship_Snapshot_INT_20250301.txt");
        let original_rel = std::fs::read_to_string(&rel).unwrap();
        edit(rel.clone(), 4, "880003023\t20250301\t1\t900000000000207008\t990001006");
        let err = run(true, false).unwrap_err().to_string();
        assert_eq!(err, format!("{}:4: 5 tab-separated fields, expected 10", rel.display()));
        edit(rel.clone(), 1, "id\teffectiveTime\tactive");
        assert!(run(true, false).unwrap_err().to_string().contains(":1: the header is `id effectiveTime active`"));
        std::fs::write(&rel, &original_rel).unwrap();
        let concepts = rf2.join("sct2_Concept_Snapshot_INT_20250301.txt");
        edit(concepts.clone(), 3, "404684003\t20020131\tyes\t900000000000207008\t900000000000074008");
        assert!(run(true, false).unwrap_err().to_string().ends_with(":3: active `yes` must be 0 or 1"));
        let conso = edit(rrf.join("RXNCONSO.RRF"), 2, "900002|ENG|PIN|examplavir sodium|");
        let err = run(false, true).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:2: 5 |-separated fields, expected 18 (RXCUI|LAT|", conso.display())),
            "{err}"
        );
        let rel = edit(
            rrf.join("RXNREL.RRF"),
            3,
            "90000x||CUI|RO|900010||CUI|has_precise_ingredient|R1||RXNORM|RXNORM|||N|4096|",
        );
        std::fs::copy(data("rxnorm/rrf/RXNCONSO.RRF"), &conso).unwrap();
        assert_eq!(
            run(false, true).unwrap_err().to_string(),
            format!("{}:3: RXCUI1 `90000x` is not an RxCUI", rel.display())
        );
        std::fs::remove_file(&rel).unwrap();
        assert!(run(false, true).unwrap_err().to_string().contains("no RXNREL*.RRF in this folder or below it"));
        assert!(run(false, false).unwrap_err().to_string().contains("--snomed-rf2"));
        assert!(!out.exists() && !out.parent().unwrap().exists(), "nothing written");
    }
}
