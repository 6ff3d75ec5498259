//! The `portico` command: serve the gateway, check a config, run a hospital-system
//! simulator, generate a synthetic population, list the patient index, and the operator's
//! tools — policy check and explain, terminology import, the labels report, HIM actions
//! (release, consent, hold preference), audit verify, app clients and accounts. A thin
//! shell over the library; no domain logic here.

mod rights_cli;

use clap::{Parser, Subcommand};
use portico::config::{Config, ConfigError};
use portico::fhir::time::days_since;
use portico::simulator::{self, SimulatorOptions};
use portico::sources::files::ResourceStore;
use portico::App;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "portico", version, about = "SMART-on-FHIR patient access gateway")]
struct Cli {
    /// The config file, for every command that reads one (also after the subcommand:
    /// `portico serve --config FILE`).
    #[arg(long, global = true, env = "PORTICO_CONFIG", default_value = "config/portico.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Load and validate a config file (FILE, else --config), then exit (non-zero when it
    /// is broken).
    CheckConfig { file: Option<PathBuf> },
    /// Print the public JWKS of the keys the gateway signs SMART Backend Services
    /// assertions to sources with (also served at /jwks/sources.json), for a source to
    /// register.
    SourceJwks,
    /// Serve one fixture folder as a FHIR R4 server that behaves like a hospital system.
    Simulate {
        /// Folder of FHIR JSON Bundles / NDJSON files.
        #[arg(long)]
        source: PathBuf,
        /// Serve the folder's NDJSON files from disk (an offset index in memory, resources
        /// read when asked for), for large populations; no `$everything` or `_revinclude`.
        #[arg(long)]
        from_disk: bool,
        /// Offer Bulk Data `$export` (system, `Patient/` and `Group/{id}/` level; IG 2.0)
        /// and say so in the CapabilityStatement.
        #[arg(long)]
        bulk: bool,
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// Added latency per request, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency: u64,
        /// Probability (0..=1) that a FHIR request answers 429 with Retry-After.
        #[arg(long, default_value_t = 0.0)]
        fail_rate: f64,
        /// Require OAuth2 client credentials (ID:SECRET) and serve a token endpoint.
        #[arg(long, value_name = "ID:SECRET")]
        require_client_credentials: Option<String>,
        /// Default and maximum page size.
        #[arg(long, default_value_t = 50)]
        page_size: usize,
        /// Shift full dates from this anchor day to today (fixtures: 2026-01-01).
        #[arg(long)]
        shift_dates_from: Option<chrono::NaiveDate>,
        /// Name shown in the CapabilityStatement.
        #[arg(long, default_value = "Portico hospital simulator")]
        name: String,
        /// Which vendor to behave like: standard, epic (no Patient search without
        /// parameters) or oracle-health (`_count` at most 100, its own paging links).
        #[arg(long, default_value = "standard", value_parser = parse_profile)]
        profile: simulator::SimulatorProfile,
        /// Require SMART Backend Services assertions from this client id (with
        /// --backend-jwks-url) and serve a token endpoint.
        #[arg(long, requires = "backend_jwks_url", conflicts_with = "require_client_credentials")]
        backend_client_id: Option<String>,
        /// Where the Backend Services client's public keys are (e.g. the gateway's
        /// /jwks/sources.json).
        #[arg(long, requires = "backend_client_id")]
        backend_jwks_url: Option<String>,
    },
    /// The privacy policy: validate a policy file, or explain every decision on a record.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Licensed terminologies: `portico terminology import` expands the label rules with a
    /// SNOMED CT RF2 and/or RxNorm RRF release.
    Terminology {
        #[command(subcommand)]
        command: TerminologyCommand,
    },
    /// The security labeling service: `portico labels report` counts what was labelled per
    /// category and lists unlabelled items whose words look sensitive, for HIM review.
    Labels {
        #[command(subcommand)]
        command: LabelsCommand,
    },
    /// Release a held result to the patient (HIM, after the clinician has reviewed it).
    Release {
        /// Gateway patient id, or source/source-id.
        #[arg(long)]
        patient: String,
        /// The result, as gateway Type/id.
        #[arg(long)]
        resource: String,
        /// Who releases it (recorded).
        #[arg(long)]
        by: String,
    },
    /// A partner consent on file (permits a partner and purposes; --part2 for 42 CFR Part 2 data).
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Set the labels a patient wants to see only after clinician review (empty clears).
    HoldPreference {
        #[arg(long)]
        patient: String,
        /// Comma-separated label codes, e.g. HIV,GDIS.
        #[arg(long, default_value = "")]
        labels: String,
    },
    /// Requests to amend records (HIM): the queue, accept or deny, the one extension.
    Corrections {
        #[command(subcommand)]
        command: rights_cli::CorrectionsCommand,
    },
    /// The accounting of disclosures of a patient's data over the last six years.
    Disclosures {
        /// Gateway patient id, or source/source-id.
        #[arg(long)]
        patient: String,
        /// text, json, html (printable) or fhir (a Bundle of AuditEvents).
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// The access log: `portico audit verify` checks its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apps registered with the authorization server.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// The gateway's id_token signing keys: list them, rotate in a new one.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Patient and proxy accounts: create a local account, grant proxy access, list and
    /// terminate access.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Synthetic data: `portico fixtures generate` writes a large population across sources.
    Fixtures {
        #[command(subcommand)]
        command: FixturesCommand,
    },
    /// List the patient index: each linked person, its records and why they were linked,
    /// and possible matches left for a human.
    Patients {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Each source's state, the types it is searched for per person (from its
    /// CapabilityStatement) and what it holds that the gateway does not serve.
    Sources {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum FixturesCommand {
    /// Write a synthetic population (deterministic from the seed) as NDJSON source folders,
    /// a manifest of what was generated, and a portico.toml serving it.
    Generate {
        #[arg(long)]
        patients: usize,
        /// Source systems: ehr, lab, imaging, behavioral (42 CFR Part 2), then clinics.
        #[arg(long, default_value_t = 4)]
        sources: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A new (or empty) folder.
        #[arg(long)]
        out: PathBuf,
        /// Write only each source's Patient records (same people and overlaps), for
        /// patient index runs of up to five million people.
        #[arg(long)]
        patients_only: bool,
    },
}

#[derive(Subcommand)]
enum LabelsCommand {
    /// Every record of the patient index as labelled: counts per category and type, and the
    /// gaps to review (no label, but a word of `review_terms` in a display or text).
    Report {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file and the label rules it names.
    Check { file: PathBuf },
    /// Every resource of a record with the decision for a viewer, the rules and labels.
    Explain {
        /// Gateway patient id, or source/source-id.
        #[arg(long)]
        patient: String,
        /// patient, staff, proxy:REL[:assent][:adult-granted], partner:NAME:PURPOSE.
        #[arg(long)]
        viewer: String,
        /// SMART scopes of an app acting for the viewer.
        #[arg(long)]
        scopes: Option<String>,
        /// Decide as of this instant (RFC 3339), e.g. to see when a hold ends.
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TerminologyCommand {
    /// Write the descendants of the rules' SNOMED CT concepts and the products of their
    /// RxNorm ingredients to an expansions file that labels.toml names under `imports`.
    Import {
        /// The label rules (labels.toml).
        #[arg(long)]
        labels: PathBuf,
        /// A SNOMED CT RF2 release (or its Snapshot folder).
        #[arg(long, value_name = "DIR")]
        snomed_rf2: Option<PathBuf>,
        /// An RxNorm release's RRF folder (RXNCONSO.RRF, RXNREL.RRF).
        #[arg(long, value_name = "DIR")]
        rxnorm_rrf: Option<PathBuf>,
        /// The expansions file to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every link of the access log's chain; exit 1 naming the first broken entry.
    Verify,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an app; prints its client_id (and a confidential client's secret, once).
    Register {
        #[arg(long)]
        name: String,
        /// public, confidential-symmetric, confidential-asymmetric or backend (an HIE partner:
        /// client_credentials with a signed assertion).
        #[arg(long)]
        kind: String,
        /// An exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The scopes the app may ask for at most (space-separated).
        #[arg(long)]
        scopes: String,
        /// confidential-asymmetric: the app's public keys as a JWKS file …
        #[arg(long)]
        jwks_file: Option<PathBuf>,
        /// … or the URL it publishes them at.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// backend: the partner's purpose of use (TREAT, ETREAT, HPAYMT …).
        #[arg(long)]
        purpose: Option<String>,
        /// backend: the Group ids the partner may export (comma-separated).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Sign a client assertion (private_key_jwt, valid 4 minutes, fresh jti) with a private
    /// key, for trying a backend client's token request by hand.
    Assertion {
        #[arg(long)]
        client_id: String,
        /// The token URL (the assertion's audience), e.g. http://127.0.0.1:8080/token.
        #[arg(long)]
        token_url: String,
        /// PKCS#8 or PKCS#1 PEM private key: RSA (signs RS384) or EC P-384 (signs ES384).
        #[arg(long)]
        key: PathBuf,
        /// The key's `kid` in the client's JWKS.
        #[arg(long)]
        kid: String,
    },
    List,
    /// Disable an app (its tokens stop working).
    Disable {
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// The stored keys and their state (signing, next, retired) — never a private half.
    List,
    /// Publish a new key in the JWKS as the next key (it does not sign yet); with
    /// --activate, start signing with the next key (once it has been published for
    /// auth.key_publish_delay) and retire the current one.
    Rotate {
        #[arg(long)]
        activate: bool,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create a local account; the password is read from standard input (never an argument).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
    },
    /// Grant a local account proxy access to a patient record (parent, guardian, caregiver).
    Grant {
        #[arg(long)]
        username: String,
        /// The patient record, source/source-id.
        #[arg(long)]
        patient: String,
        /// MTH, FTH, PRN, GUARD, CAREGIVER …
        #[arg(long)]
        relationship: String,
        /// Last day of access (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// The proxy's RelatedPerson in the source (source/id), for fhirUser.
        #[arg(long)]
        related_person: Option<String>,
        /// The patient is an adult and granted this access.
        #[arg(long)]
        adult_granted: bool,
        /// The minor assented to this access.
        #[arg(long)]
        teen_assent: bool,
        #[arg(long)]
        by: String,
    },
    /// Issue a one-time activation code for a patient to connect their account (printed
    /// once; only its hash is kept).
    ActivationCode {
        /// The patient record, source/source-id.
        #[arg(long)]
        patient: String,
        /// Days the code is valid (default: the config's auth.activation_code_days).
        #[arg(long)]
        valid_days: Option<u32>,
    },
    /// Enrollments refused because the record already had an owner, for HIM review (ids only).
    EnrollmentReviews,
    /// Confirm a local account's e-mail address (staff checked it another way, e.g. at the
    /// desk); the account may then enroll.
    VerifyEmail {
        #[arg(long)]
        username: String,
    },
    /// The records an account may open, with their link ids.
    Links {
        #[arg(long)]
        username: String,
    },
    /// End an account's access to a record (tokens stop on their next request).
    Terminate {
        #[arg(long)]
        link: String,
        /// deceased, left the practice, revoked …
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
}

#[derive(Subcommand)]
enum ConsentCommand {
    Grant {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        partner: String,
        /// Comma-separated purposes of use, e.g. TREAT,HPAYMT.
        #[arg(long)]
        purpose: String,
        /// The consent covers 42 CFR Part 2 records.
        #[arg(long)]
        part2: bool,
        #[arg(long)]
        by: String,
    },
    Revoke {
        #[arg(long)]
        id: String,
    },
}

/// The operator at the command line acts as staff.
fn operator() -> portico::auth::Access {
    let who = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    portico::auth::Access {
        viewer: portico::policy::Viewer::new(format!("cli:{who}"), portico::policy::Role::Staff),
        patients: portico::auth::PatientScope::Any,
        groups: None,
        basis: portico::auth::Basis::default(),
    }
}

async fn him_for(config: &Path) -> Result<(App, portico::him::Him), CliError> {
    let app = App::build(load(config)?).await?;
    let him = portico::him::Him::new(app.aggregator.clone(), app.ledger.clone());
    Ok((app, him))
}

/// Why a command failed; printed as `portico: {message}`, exit code 1. The library's errors
/// print as they are.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Settings(#[from] portico::settings::SettingsError),
    #[error(transparent)]
    App(#[from] portico::AppError),
    #[error(transparent)]
    Him(#[from] portico::him::HimError),
    #[error(transparent)]
    Read(#[from] portico::read::ReadError),
    #[error(transparent)]
    Policy(#[from] portico::policy::PolicyError),
    #[error(transparent)]
    Viewer(#[from] portico::policy::ViewerError),
    #[error(transparent)]
    ReviewTerms(#[from] portico::label::WordsError),
    #[error(transparent)]
    Terminology(#[from] portico::label::terminology::TerminologyError),
    #[error(transparent)]
    Generate(#[from] portico::generate::GenerateError),
    #[error(transparent)]
    DiskStore(#[from] portico::simulator::disk::DiskError),
    #[error(transparent)]
    Store(#[from] portico::store::StoreError),
    #[error(transparent)]
    Account(#[from] portico::auth::accounts::AccountError),
    #[error(transparent)]
    Client(#[from] portico::auth::oauth::ClientError),
    #[error(transparent)]
    ClientKind(#[from] portico::auth::oauth::RegistrationError),
    #[error(transparent)]
    Files(#[from] portico::sources::files::LoadError),
    #[error(transparent)]
    Export(#[from] portico::export::ExportError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The gateway's listener or server failed while serving.
    #[error("{0}")]
    Io(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {address}: {problem}")]
    Listen { address: String, problem: std::io::Error },
    #[error("cannot serve on {address}: {problem}")]
    Simulate { address: SocketAddr, problem: std::io::Error },
    #[error("--fail-rate {0} must be between 0 and 1")]
    FailRate(f64),
    #[error("--page-size must be at least 1")]
    PageSize,
    #[error("--require-client-credentials must be ID:SECRET")]
    ClientCredentials,
    #[error("--at {value}: {problem}")]
    At { value: String, problem: chrono::ParseError },
    #[error("cannot read the password from standard input: {0}")]
    Password(std::io::Error),
    #[error("no account {0}")]
    NoAccount(String),
    #[error("no live access link {0}")]
    NoLink(String),
    #[error("no live consent {0}")]
    NoConsent(String),
    #[error(transparent)]
    Rights(#[from] rights_cli::RightsCliError),
    #[error("access log broken at entry {0}: it was changed, removed or inserted after the fact")]
    AuditBroken(i64),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(&cli.config, cli.command)),
        Err(e) => Err(CliError::Runtime(e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portico: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTICO_LOG")
        .unwrap_or_else(|_| "info,tower_http=warn,sqlx=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("PORTICO_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `--profile`: a simulator profile by its config name.
fn parse_profile(name: &str) -> Result<simulator::SimulatorProfile, String> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| "one of standard, epic, oracle-health".to_string())
}

fn load(path: &Path) -> Result<Config, CliError> {
    Ok(Config::load(path)?)
}

async fn run(config: &Path, command: Command) -> Result<(), CliError> {
    match command {
        Command::CheckConfig { file } => {
            // Everything `serve` would refuse before opening the database: the config, the
            // policy it names, the zone, the dev tokens' viewers, the registered clients and
            // the OpenID provider.
            let file = file.as_deref().unwrap_or(config);
            let settings = portico::settings::Settings::load(file)?;
            portico::auth::keyring::KeyEncryptionKey::check(&settings.config)
                .map_err(portico::auth::oauth::ClientError::from)?;
            println!("{}: ok ({} sources)", file.display(), settings.config.sources.len());
            Ok(())
        }
        Command::SourceJwks => {
            let config = load(config)?;
            let jwks = portico::sources::upstream_auth::source_jwks(&config.sources, &config.base_dir).map_err(
                |(source_name, problem)| {
                    portico::AppError::from(portico::sources::SourceError::Credentials {
                        source_name,
                        problem: problem.into(),
                    })
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&jwks)?);
            Ok(())
        }
        Command::Serve { listen } => {
            let mut config = load(config)?;
            if let Some(l) = listen {
                config.server.listen = l;
                config.revalidate()?;
            }
            let listener = tokio::net::TcpListener::bind(&config.server.listen)
                .await
                .map_err(|problem| CliError::Listen { address: config.server.listen.clone(), problem })?;
            config.server.listen = listener.local_addr().map_err(CliError::Io)?.to_string();
            let app = App::build(config).await?;
            tracing::info!(base = %app.config.fhir_base_url(), "Portico is serving");
            app.serve(listener, shutdown_signal()).await.map_err(CliError::Io)
        }
        Command::Simulate {
            source,
            from_disk,
            bulk,
            listen,
            latency,
            fail_rate,
            require_client_credentials,
            page_size,
            shift_dates_from,
            name,
            profile,
            backend_client_id,
            backend_jwks_url,
        } => {
            if !(0.0..=1.0).contains(&fail_rate) {
                return Err(CliError::FailRate(fail_rate));
            }
            if page_size == 0 {
                return Err(CliError::PageSize);
            }
            let client_credentials = match require_client_credentials {
                Some(pair) => {
                    let (id, secret) = pair
                        .split_once(':')
                        .filter(|(i, s)| !i.is_empty() && !s.is_empty())
                        .ok_or(CliError::ClientCredentials)?;
                    Some((id.to_string(), secret.to_string()))
                }
                None => None,
            };
            let shift = shift_dates_from
                .map_or(0, |anchor| days_since(anchor, chrono::Utc::now(), chrono::Offset::fix(&chrono::Utc)));
            let options = SimulatorOptions {
                name,
                latency: std::time::Duration::from_millis(latency),
                fail_rate,
                client_credentials,
                page_size,
                profile,
                bulk,
                backend_services: backend_client_id.zip(backend_jwks_url).map(|(client_id, url)| {
                    simulator::BackendClient { client_id, keys: simulator::ClientKeys::JwksUrl(url) }
                }),
                ..SimulatorOptions::default()
            };
            if from_disk {
                let disk = simulator::disk::DiskStore::open(&source, shift)?;
                return simulator::run_disk(disk, options, listen)
                    .await
                    .map_err(|problem| CliError::Simulate { address: listen, problem });
            }
            let store = ResourceStore::load(&source, shift)?;
            simulator::run(store, options, listen)
                .await
                .map_err(|problem| CliError::Simulate { address: listen, problem })
        }
        Command::Labels { command: LabelsCommand::Report { json } } => {
            let (app, him) = him_for(config).await?;
            let review = portico::label::report::ReviewTerms::new(&app.policy.config().review_terms)?;
            let audit = portico::audit::AuditLog::new(app.store.clone());
            let report = him.labels_report(&operator(), &review, &audit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Check { file } } => {
            let p = portico::policy::PolicyConfig::load(&file)?;
            println!(
                "{}: ok ({} label rules, {} hold rules, jurisdiction {}, {} configured types; any other type \
                 is withheld from proxies, apps and partners)",
                file.display(),
                p.label_rules.len(),
                p.holds.rules.len(),
                p.minors.jurisdiction,
                p.types.configured.len()
            );
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Explain { patient, viewer, scopes, at, json } } => {
            let viewer = portico::policy::Viewer::from_spec(&viewer, scopes.as_deref())?;
            let at = match at {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|problem| CliError::At { value: t.clone(), problem })?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let (app, him) = him_for(config).await?;
            let patient = him.patient_id(&patient).await?;
            let trail = portico::read::Trail::internal("portico policy explain");
            let explanations = app.reader().explain(&operator(), &trail, &patient, &viewer, at).await?;
            if json {
                let out = serde_json::json!({"patient": patient, "viewer": viewer, "at": at.to_rfc3339(), "resources": explanations});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "patient {patient}, viewer {}, at {}",
                    viewer.actor.trim_start_matches("viewer-spec:"),
                    at.to_rfc3339()
                );
                for e in &explanations {
                    let decision = match e.decision {
                        portico::policy::Decision::Shown => "shown   ",
                        portico::policy::Decision::Withheld => "WITHHELD",
                    };
                    println!(
                        "{decision} {:<48} labels [{}]  rules [{}]",
                        e.resource,
                        e.labels.join(","),
                        e.rules.join(", ")
                    );
                }
                let withheld =
                    explanations.iter().filter(|e| e.decision == portico::policy::Decision::Withheld).count();
                println!(
                    "\n{} resources: {} shown, {withheld} withheld",
                    explanations.len(),
                    explanations.len() - withheld
                );
            }
            Ok(())
        }
        Command::Terminology { command: TerminologyCommand::Import { labels, snomed_rf2, rxnorm_rrf, out } } => {
            use portico::label::terminology;
            let options = terminology::ImportOptions { labels, snomed_rf2, rxnorm_rrf, out };
            let report = terminology::import(&options)?;
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: {} rules expanded, {} SNOMED CT and {} RxNorm codes",
                options.out.display(),
                report.rules,
                report.snomed,
                report.rxnorm
            );
            Ok(())
        }
        Command::Release { patient, resource, by } => {
            let (_app, him) = him_for(config).await?;
            let newly = him.release(&operator(), &patient, &resource, &by).await?;
            println!("{resource}: {}", if newly { "released" } else { "was already released" });
            Ok(())
        }
        Command::HoldPreference { patient, labels } => {
            let labels: Vec<String> =
                labels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
            let (_app, him) = him_for(config).await?;
            him.set_preferences(&operator(), &patient, &labels).await?;
            println!("review-first labels for {patient}: [{}]", labels.join(","));
            Ok(())
        }
        Command::Consent { command: ConsentCommand::Grant { patient, partner, purpose, part2, by } } => {
            let purposes: Vec<String> =
                purpose.split(',').map(|p| p.trim().to_uppercase()).filter(|p| !p.is_empty()).collect();
            let (_app, him) = him_for(config).await?;
            let id = him.add_consent(&operator(), &patient, &partner, &purposes, part2, &by).await?;
            println!("consent {id} recorded");
            Ok(())
        }
        Command::Consent { command: ConsentCommand::Revoke { id } } => {
            let (_app, him) = him_for(config).await?;
            let done = him.revoke_consent(&operator(), &id).await?;
            if !done {
                return Err(CliError::NoConsent(id));
            }
            println!("consent {id} revoked");
            Ok(())
        }
        Command::Fixtures { command: FixturesCommand::Generate { patients, sources, seed, out, patients_only } } => {
            let started = std::time::Instant::now();
            let options = portico::generate::GenerateOptions { patients, sources, seed, out: out.clone() };
            let m = if patients_only {
                portico::generate::generate_patients_only(&options)?
            } else {
                portico::generate::generate(&options)?
            };
            println!(
                "{}: {} patients, {} resources ({:.1} per patient, {:.1} MB) in {} sources, {:.1} s",
                out.display(),
                m.patients,
                m.resources,
                m.resources_per_patient,
                m.bytes as f64 / 1e6,
                m.sources.len(),
                started.elapsed().as_secs_f64()
            );
            println!("serve it: portico serve --config {}", out.join(m.config_file).display());
            Ok(())
        }
        Command::Account { command } => account_command(config, command).await,
        Command::Client { command } => client_command(config, command).await,
        Command::Keys { command } => keys_command(config, command).await,
        Command::Corrections { command } => {
            let app = App::build(load(config)?).await?;
            Ok(rights_cli::corrections(&app, &operator(), command).await?)
        }
        Command::Disclosures { patient, format } => {
            let app = App::build(load(config)?).await?;
            Ok(rights_cli::accounting(&app, &operator(), &patient, &format).await?)
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let config = load(config)?;
            let store = portico::store::Store::open(&config.database.url, 2).await?;
            let v = portico::audit::AuditLog::new(store).verify().await?;
            match v.first_broken {
                None => {
                    println!("access log intact: {} entries", v.entries);
                    Ok(())
                }
                Some(seq) => Err(CliError::AuditBroken(seq)),
            }
        }
        Command::Sources { json } => {
            let app = App::build(load(config)?).await?;
            print_sources(&app, json)
        }
        Command::Patients { json } => {
            let config = load(config)?;
            let app = App::build(config).await?;
            let links = app.index.links().await?;
            let possible = app.index.possible_matches().await?;
            if json {
                let out = serde_json::json!({"links": links, "possible_matches": possible});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for link in &links {
                    println!("{}", link.gateway_id);
                    for m in &link.members {
                        println!("  {}/{}  {}", m.source, m.source_patient_id, m.reason);
                    }
                }
                println!(
                    "\n{} people from {} source records",
                    links.len(),
                    links.iter().map(|l| l.members.len()).sum::<usize>()
                );
                if !possible.is_empty() {
                    println!("\nPossible matches (not linked; review by hand):");
                    for p in &possible {
                        println!("  {}/{} ~ {}/{}  {}", p.a.0, p.a.1, p.b.0, p.b.1, p.reason);
                    }
                }
            }
            Ok(())
        }
    }
}

fn print_sources(app: &App, json: bool) -> Result<(), CliError> {
    let gauges = portico::aggregate::Gauges::new(app.aggregator.clone());
    let report = gauges.source_report();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for s in &report {
        println!("{} ({}): {}", s.name, s.display, s.state);
        println!("  gathered per person: {}", s.gathered.join(", "));
        if !s.offer_known {
            println!("  capability statement not read yet: configured types gathered");
        }
        for (t, n) in &s.not_served {
            let n = n.map_or_else(|| "an unknown number of".to_string(), |n| n.to_string());
            println!("  NOT SERVED: {n} {t}");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down; finishing in-flight requests");
}

async fn account_command(config: &Path, command: AccountCommand) -> Result<(), CliError> {
    use portico::auth::accounts::grant_proxy;
    match command {
        AccountCommand::Create { username, name } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).map_err(CliError::Password)?;
            let app = App::build(load(config)?).await?;
            let id = app.accounts.create_local(&username, password.trim_end_matches(['\n', '\r']), &name).await?;
            println!("account {id} created for {username}");
            Ok(())
        }
        AccountCommand::Grant {
            username,
            patient,
            relationship,
            until,
            related_person,
            adult_granted,
            teen_assent,
            by,
        } => {
            let app = App::build(load(config)?).await?;
            let link = grant_proxy(
                &app.accounts,
                &username,
                &patient,
                &relationship,
                until.as_deref(),
                related_person.as_deref(),
                (adult_granted, teen_assent),
                &by,
            )
            .await?;
            println!("{username} may open {patient} as {} (link {})", link.relationship, link.id);
            Ok(())
        }
        AccountCommand::ActivationCode { patient, valid_days } => {
            let app = App::build(load(config)?).await?;
            let code = app.accounts.issue_activation_code(&patient, valid_days, "cli", chrono::Utc::now()).await?;
            println!("{}  for {}  valid until {}", code.code, code.patient, code.expires_at);
            Ok(())
        }
        AccountCommand::EnrollmentReviews => {
            let app = App::build(load(config)?).await?;
            for r in app.accounts.enrollment_reviews().await? {
                println!(
                    "{}  {}  account {}  record {}/{}  by {}",
                    r.id, r.created_at, r.account_id, r.source, r.source_patient_id, r.method
                );
            }
            Ok(())
        }
        AccountCommand::VerifyEmail { username } => {
            let app = App::build(load(config)?).await?;
            if !app.accounts.mark_email_verified(&username, chrono::Utc::now()).await? {
                return Err(CliError::NoAccount(username));
            }
            println!("the e-mail address of {username} is confirmed");
            Ok(())
        }
        AccountCommand::Links { username } => {
            let app = App::build(load(config)?).await?;
            let id = app.accounts.id_of(&username).await?.ok_or_else(|| CliError::NoAccount(username.clone()))?;
            for l in app.accounts.links(&id).await? {
                println!(
                    "{}  {}/{}  {}{}",
                    l.id,
                    l.source,
                    l.source_patient_id,
                    l.relationship,
                    l.valid_until.map(|u| format!(" until {u}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        AccountCommand::Terminate { link, reason, by } => {
            let app = App::build(load(config)?).await?;
            match app.accounts.terminate(&link, &reason, &by).await? {
                0 => Err(CliError::NoLink(link)),
                _ => {
                    // The jobs started under the link end with it.
                    let jobs = app.exports.end_basis(Some(&link), None).await?;
                    println!("access {link} terminated ({jobs} export or download jobs cancelled)");
                    Ok(())
                }
            }
        }
    }
}

async fn keys_command(config: &Path, command: KeysCommand) -> Result<(), CliError> {
    use portico::auth::keyring::KeyEncryptionKey;
    let config = load(config)?;
    let kek = std::sync::Arc::new(KeyEncryptionKey::load(&config).map_err(portico::auth::oauth::ClientError::from)?);
    let store = portico::store::Store::open(&config.database.url, 2).await?;
    let signer = portico::auth::oauth::Signer::new(store, kek, config.auth.access_token_ttl.std());
    signer.prepare().await?;
    let show = |k: &portico::auth::oauth::KeyInfo| {
        let until = k.published_until.as_deref().map(|u| format!("  published until {u}")).unwrap_or_default();
        format!("{}  {}  {}  created {}{until}", k.kid, k.alg, k.state, k.created_at)
    };
    match command {
        KeysCommand::List => {
            for k in signer.list().await? {
                println!("{}", show(&k));
            }
        }
        KeysCommand::Rotate { activate: false } => {
            let k = signer.rotate().await?;
            let delay = humantime::format_duration(config.auth.key_publish_delay.std());
            println!("{}", show(&k));
            println!("published in the JWKS; activate it after {delay} with `portico keys rotate --activate`");
        }
        KeysCommand::Rotate { activate: true } => {
            let k = signer.activate(config.auth.key_publish_delay.std(), chrono::Utc::now()).await?;
            println!("{}", show(&k));
            println!("now signing id_tokens; the previous key stays published until its id_tokens expire");
        }
    }
    Ok(())
}

async fn client_command(config: &Path, command: ClientCommand) -> Result<(), CliError> {
    use portico::auth::oauth::{cli, ClientKind};
    match command {
        ClientCommand::Register { name, kind, redirect_uris, scopes, jwks_file, jwks_uri, purpose, groups } => {
            let config = load(config)?;
            let clients = cli::open_clients(&config).await?;
            let kind = ClientKind::parse(&kind)?;
            let keys = cli::keys_from_args(jwks_file.as_deref(), jwks_uri.as_deref())?;
            let partner = portico::auth::oauth::PartnerProfile::given(purpose.as_deref(), &groups);
            let (id, secret) = clients.register_client(&name, kind, &redirect_uris, &scopes, keys, partner).await?;
            println!("{}", cli::render_registered(&id, secret.as_deref()));
            Ok(())
        }
        ClientCommand::Assertion { client_id, token_url, key, kid } => {
            println!("{}", cli::sign_assertion(&client_id, &token_url, &key, &kid)?);
            Ok(())
        }
        ClientCommand::List => {
            let clients = cli::open_clients(&load(config)?).await?;
            print!("{}", cli::render_list(&clients.list().await?));
            Ok(())
        }
        ClientCommand::Disable { client_id } => {
            let clients = cli::open_clients(&load(config)?).await?;
            clients.disable(&client_id).await?;
            println!("{client_id} disabled; its tokens no longer work");
            Ok(())
        }
    }
}
