//! `portico corrections …` and `portico disclosures`: HIM's queue of correction requests,
//! accepting or denying one, the one extension, and the accounting of disclosures of a
//! patient, from the command line. Wiring only: the rules are `portico::rights`'; each
//! action is in the access log (as the operator, role staff) before it is printed.

use clap::Subcommand;
use portico::rights::{disclosures, Corrections, RightsError};
use portico::App;

#[derive(Subcommand)]
pub enum CorrectionsCommand {
    /// The queue, soonest due first; overdue requests are flagged.
    Queue {
        /// Every request, not only the waiting ones.
        #[arg(long)]
        all: bool,
        /// Flag what is overdue at this RFC 3339 instant (now when absent).
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Accept or deny a request with a reason.
    Decide {
        id: String,
        /// `accept` or `deny`.
        #[arg(long)]
        decision: String,
        #[arg(long)]
        reason: String,
        /// Who decides (recorded).
        #[arg(long)]
        by: String,
    },
    /// The one 30-day extension, with the reason the patient is told.
    Extend {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// Why a rights command failed.
#[derive(Debug, thiserror::Error)]
pub enum RightsCliError {
    #[error(transparent)]
    Rights(#[from] RightsError),
    #[error(transparent)]
    Him(#[from] portico::him::HimError),
    #[error(transparent)]
    Read(#[from] portico::read::ReadError),
    #[error(transparent)]
    Store(#[from] portico::store::StoreError),
    #[error(transparent)]
    Client(#[from] portico::auth::oauth::ClientError),
    #[error(transparent)]
    AuditEvent(#[from] portico::audit::AuditEventError),
    #[error("{0}")]
    Invalid(String),
}

async fn log(
    app: &App,
    access: &portico::auth::Access,
    action: &str,
    patient: Option<String>,
    ok: bool,
) -> Result<(), RightsCliError> {
    let outcome = if ok { "success" } else { "error" };
    let entry = portico::audit::AuditEntry::of(access, action, format!("portico {action}"), patient, outcome, None);
    portico::audit::AuditLog::new(app.store.clone()).record(&entry).await?;
    Ok(())
}

fn instant(value: Option<&str>) -> Result<chrono::DateTime<chrono::Utc>, RightsCliError> {
    match value {
        Some(t) => Ok(chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| RightsCliError::Invalid(format!("--as-of {t}: {e}")))?
            .with_timezone(&chrono::Utc)),
        None => Ok(chrono::Utc::now()),
    }
}

pub async fn corrections(
    app: &App,
    access: &portico::auth::Access,
    command: CorrectionsCommand,
) -> Result<(), RightsCliError> {
    let corrections = Corrections::new(app.store.clone());
    let now = chrono::Utc::now();
    match command {
        CorrectionsCommand::Queue { all, as_of, json } => {
            let as_of = instant(as_of.as_deref())?;
            let list = corrections.queue(!all).await;
            log(app, access, "correction-queue", None, list.is_ok()).await?;
            let list = list?;
            if json {
                let rows: Vec<_> = list.iter().map(|c| portico::rights::corrections::queue_row(c, as_of)).collect();
                println!("{}", serde_json::json!({"as_of": as_of.to_rfc3339(), "requests": rows}));
                return Ok(());
            }
            if list.is_empty() {
                println!("no requests");
            }
            for c in &list {
                let flag = if c.overdue(as_of) { " OVERDUE" } else { "" };
                let extended = if c.extension_reason.is_some() { " (extended)" } else { "" };
                let item = c.item.as_deref().unwrap_or("free text");
                println!(
                    "{}  {}  due {}{extended}{flag}  patient {}  {item}",
                    c.id,
                    c.status,
                    &c.due_at[..10],
                    c.patient_id
                );
            }
            Ok(())
        }
        CorrectionsCommand::Decide { id, decision, reason, by } => {
            let accept = match decision.as_str() {
                "accept" => true,
                "deny" => false,
                other => return Err(RightsCliError::Invalid(format!("--decision {other}: say accept or deny"))),
            };
            let patient = corrections.get(&id).await?.map(|c| c.patient_id);
            let done = corrections.decide(&id, accept, &reason, &by, now).await;
            let action = if accept { "correction-accept" } else { "correction-deny" };
            log(app, access, action, patient, done.is_ok()).await?;
            let c = done?;
            println!("{}: {}", c.id, c.status);
            Ok(())
        }
        CorrectionsCommand::Extend { id, reason } => {
            let patient = corrections.get(&id).await?.map(|c| c.patient_id);
            let done = corrections.extend(&id, &reason, now).await;
            log(app, access, "correction-extend", patient, done.is_ok()).await?;
            let c = done?;
            println!("{}: now due {}", c.id, c.due_at);
            Ok(())
        }
    }
}

/// The accounting of disclosures of `patient` as text, JSON, printable HTML or a Bundle.
pub async fn accounting(
    app: &App,
    access: &portico::auth::Access,
    patient: &str,
    format: &str,
) -> Result<(), RightsCliError> {
    if !matches!(format, "text" | "json" | "html" | "fhir") {
        return Err(RightsCliError::Invalid(format!("--format {format}: say text, json, html or fhir")));
    }
    let him = portico::him::Him::new(app.aggregator.clone(), app.ledger.clone());
    let found = him.patient_id(patient).await;
    log(app, access, "accounting", found.as_ref().ok().cloned(), found.is_ok()).await?;
    let patient = found?;
    let now = chrono::Utc::now();
    let since = disclosures::since(now);
    let records = app.reader().disclosures_of(access, &patient, None, &since).await?;
    let mut names = disclosures::ClientNames::new();
    for id in disclosures::clients(&records) {
        if let Some(name) = app.oauth.clients.name_of(&id).await? {
            names.insert(id, name);
        }
    }
    let rows = disclosures::rows(&records, &names, "");
    match format {
        "json" => println!("{}", serde_json::json!({"patient": patient, "since": since, "disclosures": rows})),
        "fhir" => {
            let base = app.config.fhir_base_url();
            println!("{}", disclosures::bundle(&records, &base, &format!("{base}/AuditEvent?patient={patient}"))?);
        }
        "html" => {
            let date = portico::portal::fhir_text::date;
            let context = serde_json::json!({"rows": rows, "patient": patient, "whose": {}, "since": date(&since),
                                             "today": date(&portico::rights::corrections::stamp(now))});
            println!("{}", portico::portal::render("disclosures_print.html", context));
        }
        _ => {
            println!("disclosures of patient {patient} since {}: {}", &since[..10], rows.len());
            for r in &rows {
                println!("{}  {}  {}  {}", r.when, r.recipient, r.what, r.purpose);
            }
        }
    }
    Ok(())
}
