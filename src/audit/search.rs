//! Searching the access log: `patient`, `agent` (the actor as logged), `date` with FHIR
//! prefixes (`ge`, `gt`, `le`, `lt`, `eq` or none) and `_count`, newest first. It parses
//! and runs the query; who may run which query is the caller's decision.

use super::{to_record, AuditLog, AuditRecord};
use crate::fhir::time::parse_range;
use crate::store::StoreError;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// Why an AuditEvent search is refused; each names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditQueryError {
    #[error("date: `{0}` is not a date or instant")]
    Date(String),
    #[error("_count must be 1 to 500")]
    Count,
    #[error("AuditEvent is searched by patient, agent, date and _count, not `{0}`")]
    UnknownParameter(String),
    #[error("{0}: a value holding control characters is not searchable")]
    Control(&'static str),
}

/// A parsed AuditEvent search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub patient: Option<String>,
    pub actor: Option<String>,
    /// Inclusive lower and exclusive upper bound of `recorded`, in the stored format.
    pub from: Option<String>,
    pub until: Option<String>,
    pub limit: i64,
}

fn stamp(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl AuditQuery {
    /// From query pairs; an unknown parameter or a malformed value is an error naming it.
    pub fn parse(pairs: &[(String, String)], zone: FixedOffset) -> Result<AuditQuery, AuditQueryError> {
        let mut q = AuditQuery { limit: 100, ..AuditQuery::default() };
        for (k, v) in pairs {
            match k.as_str() {
                // Text with a NUL or another control character names no one (and PostgreSQL
                // refuses a NUL in text): a clear 400, not a store failure.
                "patient" | "agent" | "agent:name" if v.chars().any(char::is_control) => {
                    return Err(AuditQueryError::Control(if k == "patient" { "patient" } else { "agent" }));
                }
                "patient" => q.patient = Some(v.trim_start_matches("Patient/").to_string()),
                "agent" | "agent:name" => q.actor = Some(v.clone()),
                "date" => {
                    let (prefix, value) = match v.get(..2) {
                        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &v[2..]),
                        _ => ("eq", v.as_str()),
                    };
                    let r = parse_range(value, zone).ok_or_else(|| AuditQueryError::Date(v.clone()))?;
                    // DateRange is [start, end) in seconds.
                    match prefix {
                        "ge" => q.from = Some(stamp(r.start)),
                        "gt" => q.from = Some(stamp(r.end)),
                        "le" => q.until = Some(stamp(r.end)),
                        "lt" => q.until = Some(stamp(r.start)),
                        _ => {
                            q.from = Some(stamp(r.start));
                            q.until = Some(stamp(r.end));
                        }
                    }
                }
                "_count" => {
                    q.limit = v.parse().ok().filter(|n| (1..=500).contains(n)).ok_or(AuditQueryError::Count)?;
                }
                "_format" => {}
                other => return Err(AuditQueryError::UnknownParameter(other.to_string())),
            }
        }
        Ok(q)
    }
}

impl AuditLog {
    /// The newest entries matching `q`.
    pub async fn search(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, recorded, actor, role, patient_id, action, what, purpose, outcome, source_ip FROM audit_events
             WHERE ($1 IS NULL OR patient_id = $1) AND ($2 IS NULL OR actor = $2)
               AND ($3 IS NULL OR recorded >= $3) AND ($4 IS NULL OR recorded < $4)
             ORDER BY seq DESC LIMIT $5",
        )
        .bind(q.patient.clone())
        .bind(q.actor.clone())
        .bind(q.from.clone())
        .bind(q.until.clone())
        .bind(q.limit)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(to_record).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn dates_become_bounds_in_the_stored_format() {
        let utc = FixedOffset::east_opt(0).unwrap();
        let q =
            AuditQuery::parse(&pairs("date=ge2026-03-01&date=lt2026-03-02T12:00:00Z&agent=account:a1"), utc).unwrap();
        assert_eq!(q.from.as_deref(), Some("2026-03-01T00:00:00.000Z"));
        assert_eq!(q.until.as_deref(), Some("2026-03-02T12:00:00.000Z"));
        assert_eq!(q.actor.as_deref(), Some("account:a1"));
        let day = AuditQuery::parse(&pairs("date=2026-03-01"), utc).unwrap();
        assert_eq!(
            (day.from.as_deref(), day.until.as_deref()),
            (Some("2026-03-01T00:00:00.000Z"), Some("2026-03-02T00:00:00.000Z"))
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let utc = FixedOffset::east_opt(0).unwrap();
        assert!(AuditQuery::parse(&pairs("date=yesterday"), utc).unwrap_err().to_string().contains("yesterday"));
        assert!(AuditQuery::parse(&pairs("entity=x"), utc).unwrap_err().to_string().contains("`entity`"));
        assert!(AuditQuery::parse(&pairs("_count=0"), utc).is_err());
    }
}
