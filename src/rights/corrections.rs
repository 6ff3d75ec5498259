//! Requests to amend the record (45 CFR 164.526): a patient, or a personal representative,
//! asks for a correction of one item they can see or in free text; HIM accept or deny it
//! with a reason within 60 days of receipt, extendable once by 30 days with a written
//! reason (only while not yet due); after a denial the requester may file a statement of
//! disagreement. Every change is one conditional statement, so two staff deciding at once
//! cannot both win. It never edits source data and never checks what a viewer may see: the
//! caller resolves the item in the viewer's released record first.

use super::RightsError;
use crate::i18n::{t, tr};
use crate::store::Store;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Days HIM have to act on a request (164.526(b)(2)).
pub const DUE_DAYS: i64 = 60;
/// The one extension (164.526(b)(2)(ii)).
pub const EXTENSION_DAYS: i64 = 30;
/// The longest requested change, statement or reason, in characters.
pub const MAX_TEXT: usize = 4000;
/// The most requests one requester may have waiting at once (a flood is refused, 429).
pub const MAX_WAITING: i64 = 20;
/// The longest queue an answer lists.
const MAX_ROWS: i64 = 1000;

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correction {
    pub id: String,
    pub patient_id: String,
    /// The actor who asked (`account:{id}`).
    pub requester: String,
    /// `SELF` or the proxy relationship the requester asked under.
    pub relationship: String,
    /// The gateway `Type/id` of the item, or none for free text.
    pub item: Option<String>,
    pub item_fingerprint: Option<String>,
    pub requested_change: String,
    /// `requested`, `accepted` or `denied`.
    pub status: String,
    pub received_at: String,
    pub due_at: String,
    pub extension_reason: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub disagreement: Option<String>,
    pub disagreement_at: Option<String>,
}

impl Correction {
    /// Still waiting for HIM after its due date.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == "requested" && stamp(now) > self.due_at
    }

    /// Whether `actor` (of a record link with `relationship`) may see the request: the
    /// patient sees every request about their record, anyone else only their own.
    pub fn visible_to(&self, actor: &str, relationship: &str) -> bool {
        relationship == "SELF" || self.requester == actor
    }
}

/// A request as HIM's queue shows it: as stored, with whether it is overdue at `as_of` and
/// whether it was extended.
pub fn queue_row(c: &Correction, as_of: DateTime<Utc>) -> Value {
    let mut v = serde_json::json!(c);
    v["overdue"] = serde_json::json!(c.overdue(as_of));
    v["extended"] = serde_json::json!(c.extension_reason.is_some());
    v
}

/// A new request, after the caller found the item in the requester's released record.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub patient_id: &'a str,
    pub requester: &'a str,
    pub relationship: &'a str,
    /// The item's `Type/id` and [`fingerprint`], or none for free text.
    pub item: Option<(String, String)>,
    pub text: &'a str,
}

/// The stored form of an instant (sorts as text on both databases).
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What identifies one version of an item: its source's `meta.versionId` and
/// `meta.lastUpdated` when it has either, else its content apart from `meta` (which the
/// gateway adds to). A correction is shown beside its item while this is unchanged.
pub fn fingerprint(resource: &Value) -> String {
    let meta = &resource["meta"];
    let basis = if meta.get("versionId").is_some() || meta.get("lastUpdated").is_some() {
        serde_json::json!([resource["resourceType"], resource["id"], meta["versionId"], meta["lastUpdated"]])
    } else {
        let mut content = resource.clone();
        if let Value::Object(m) = &mut content {
            m.remove("meta");
        }
        content
    };
    hex::encode(Sha256::digest(basis.to_string().as_bytes()))
}

/// A person's text: trimmed, not empty, at most [`MAX_TEXT`] characters.
pub fn checked_text<'a>(what: &str, text: &'a str) -> Result<&'a str, RightsError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RightsError::Invalid(tr("corrections-problem-empty", &[("what", what.into())])));
    }
    let n = text.chars().count();
    if n > MAX_TEXT {
        let args = [("what", what.into()), ("count", n.into()), ("max", MAX_TEXT.into())];
        return Err(RightsError::Invalid(tr("corrections-problem-too-long", &args)));
    }
    Ok(text)
}

const COLUMNS: &str = "id, patient_id, requester, relationship, item, item_fingerprint, requested_change, status, \
     received_at, due_at, extension_reason, decided_at, decided_by, decision_reason, disagreement, disagreement_at";

/// The correction requests in one store.
#[derive(Clone)]
pub struct Corrections {
    store: Store,
}

impl Corrections {
    pub fn new(store: Store) -> Corrections {
        Corrections { store }
    }

    /// Records a request received at `now`, due [`DUE_DAYS`] later, unless the requester
    /// already has [`MAX_WAITING`] requests waiting.
    pub async fn request(&self, r: &NewRequest<'_>, now: DateTime<Utc>) -> Result<Correction, RightsError> {
        let text = checked_text(&t("corrections-what-change"), r.text)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (item, fingerprint) = match &r.item {
            Some((k, f)) => (Some(k.clone()), Some(f.clone())),
            None => (None, None),
        };
        let done = sqlx::query(
            "INSERT INTO correction_requests (id, patient_id, requester, relationship, item, item_fingerprint,
               requested_change, status, received_at, due_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, 'requested', $8, $9
             WHERE (SELECT COUNT(*) FROM correction_requests WHERE requester = $3 AND status = 'requested') < $10",
        )
        .bind(&id)
        .bind(r.patient_id)
        .bind(r.requester)
        .bind(r.relationship)
        .bind(item)
        .bind(fingerprint)
        .bind(text)
        .bind(stamp(now))
        .bind(stamp(now + Duration::days(DUE_DAYS)))
        .bind(MAX_WAITING)
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(RightsError::TooMany);
        }
        self.get(&id).await?.ok_or(RightsError::NotFound)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Correction>, RightsError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM correction_requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.as_ref().map(to_correction))
    }

    /// Every request about one patient's record, newest first.
    pub async fn of_patient(&self, patient_id: &str) -> Result<Vec<Correction>, RightsError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM correction_requests WHERE patient_id = $1 ORDER BY received_at DESC, id LIMIT $2"
        ))
        .bind(patient_id)
        .bind(MAX_ROWS)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(to_correction).collect())
    }

    /// HIM's queue, soonest due first: the requests still waiting, or all of them.
    pub async fn queue(&self, waiting_only: bool) -> Result<Vec<Correction>, RightsError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM correction_requests WHERE ($1 = 0 OR status = 'requested')
             ORDER BY due_at, id LIMIT $2"
        ))
        .bind(i64::from(waiting_only))
        .bind(MAX_ROWS)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(to_correction).collect())
    }

    /// Accepts or denies a waiting request, with a reason (required either way; for a
    /// denial it is the written basis 164.526(d) asks for).
    pub async fn decide(
        &self,
        id: &str,
        accept: bool,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Correction, RightsError> {
        let reason = checked_text("the reason", reason)?;
        let by = checked_by(by)?;
        let status = if accept { "accepted" } else { "denied" };
        let done = sqlx::query(
            "UPDATE correction_requests SET status = $1, decision_reason = $2, decided_by = $3, decided_at = $4
             WHERE id = $5 AND status = 'requested'",
        )
        .bind(status)
        .bind(reason)
        .bind(by)
        .bind(stamp(now))
        .bind(id)
        .execute(&self.store.pool)
        .await?;
        self.changed(id, done.rows_affected(), "the request was already decided").await
    }

    /// The one extension: 30 more days, with a written reason, while the request is
    /// waiting and not yet due.
    pub async fn extend(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<Correction, RightsError> {
        let reason = checked_text("the reason for the extension", reason)?;
        let Some(c) = self.get(id).await? else { return Err(RightsError::NotFound) };
        let due = DateTime::parse_from_rfc3339(&c.due_at)
            .map_err(|_| RightsError::Invalid("the stored due date is not an instant".into()))?
            .with_timezone(&Utc);
        if c.status != "requested" {
            return Err(RightsError::Conflict("the request was already decided".into()));
        }
        if c.extension_reason.is_some() {
            return Err(RightsError::Conflict("the request was already extended once".into()));
        }
        if now > due {
            return Err(RightsError::Conflict(
                "the request is overdue; an extension must be made before it is due".into(),
            ));
        }
        let done = sqlx::query(
            "UPDATE correction_requests SET due_at = $1, extension_reason = $2
             WHERE id = $3 AND status = 'requested' AND extension_reason IS NULL AND due_at = $4",
        )
        .bind(stamp(due + Duration::days(EXTENSION_DAYS)))
        .bind(reason)
        .bind(id)
        .bind(&c.due_at)
        .execute(&self.store.pool)
        .await?;
        self.changed(id, done.rows_affected(), "the request changed meanwhile; look again").await
    }

    /// A statement of disagreement with a denial (one per request).
    pub async fn disagree(&self, id: &str, text: &str, now: DateTime<Utc>) -> Result<Correction, RightsError> {
        let text = checked_text(&t("corrections-what-statement"), text)?;
        let done = sqlx::query(
            "UPDATE correction_requests SET disagreement = $1, disagreement_at = $2
             WHERE id = $3 AND status = 'denied' AND disagreement IS NULL",
        )
        .bind(text)
        .bind(stamp(now))
        .bind(id)
        .execute(&self.store.pool)
        .await?;
        self.changed(id, done.rows_affected(), &t("corrections-problem-once")).await
    }

    async fn changed(&self, id: &str, rows: u64, conflict: &str) -> Result<Correction, RightsError> {
        match (rows, self.get(id).await?) {
            (_, None) => Err(RightsError::NotFound),
            (0, Some(_)) => Err(RightsError::Conflict(conflict.into())),
            (_, Some(c)) => Ok(c),
        }
    }
}

fn checked_by(by: &str) -> Result<&str, RightsError> {
    let by = by.trim();
    if by.is_empty() || by.chars().count() > 200 {
        return Err(RightsError::Invalid("say who decides (by), in at most 200 characters".into()));
    }
    Ok(by)
}

fn to_correction(r: &sqlx::any::AnyRow) -> Correction {
    Correction {
        id: r.get(0),
        patient_id: r.get(1),
        requester: r.get(2),
        relationship: r.get(3),
        item: r.get(4),
        item_fingerprint: r.get(5),
        requested_change: r.get(6),
        status: r.get(7),
        received_at: r.get(8),
        due_at: r.get(9),
        extension_reason: r.get(10),
        decided_at: r.get(11),
        decided_by: r.get(12),
        decision_reason: r.get(13),
        disagreement: r.get(14),
        disagreement_at: r.get(15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fingerprint_follows_the_source_version_or_the_content() {
        let v1 = json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "security": []}, "valueString": "a"});
        let mut relabelled = v1.clone();
        relabelled["meta"]["security"] = json!([{"code": "R"}]);
        assert_eq!(fingerprint(&v1), fingerprint(&relabelled), "gateway labels do not count");
        let mut v2 = v1.clone();
        v2["meta"]["versionId"] = json!("2");
        assert_ne!(fingerprint(&v1), fingerprint(&v2));
        let plain = json!({"resourceType": "Observation", "id": "o", "valueString": "a"});
        let mut changed = plain.clone();
        changed["valueString"] = json!("b");
        assert_ne!(fingerprint(&plain), fingerprint(&changed));
    }

    #[test]
    fn texts_are_checked() {
        assert!(checked_text("x", "  ").is_err());
        assert_eq!(checked_text("x", " fix it ").unwrap(), "fix it");
        let long = "é".repeat(MAX_TEXT + 1);
        assert!(checked_text("x", &long).unwrap_err().to_string().contains("4001 characters"));
        assert!(checked_text("x", &"é".repeat(MAX_TEXT)).is_ok());
    }

    #[tokio::test]
    async fn a_request_is_due_in_60_days_extends_once_and_is_decided_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/c.db", dir.path().display()), 2).await.unwrap();
        let c = Corrections::new(store);
        let t0 = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let new =
            NewRequest { patient_id: "pt", requester: "account:a", relationship: "SELF", item: None, text: "fix" };
        let r = c.request(&new, t0).await.unwrap();
        assert_eq!(r.due_at, "2026-04-30T10:00:00.000Z");
        assert!(!r.overdue(t0 + Duration::days(60)) && r.overdue(t0 + Duration::days(61)));
        assert!(matches!(
            c.extend(&r.id, "records off site", t0 + Duration::days(61)).await,
            Err(RightsError::Conflict(_))
        ));
        let e = c.extend(&r.id, "records off site", t0 + Duration::days(59)).await.unwrap();
        assert_eq!(e.due_at, "2026-05-30T10:00:00.000Z");
        assert!(matches!(c.extend(&r.id, "again", t0).await, Err(RightsError::Conflict(_))));
        assert!(matches!(c.disagree(&r.id, "no", t0).await, Err(RightsError::Conflict(_))), "not denied yet");
        let d = c.decide(&r.id, false, "accurate as is", "HIM", t0).await.unwrap();
        assert_eq!(d.status, "denied");
        assert!(matches!(c.decide(&r.id, true, "ok", "HIM", t0).await, Err(RightsError::Conflict(_))));
        assert!(c.disagree(&r.id, "I disagree", t0).await.unwrap().disagreement.is_some());
        assert!(matches!(c.disagree(&r.id, "again", t0).await, Err(RightsError::Conflict(_))));
        assert!(matches!(c.decide("nope", true, "ok", "HIM", t0).await, Err(RightsError::NotFound)));
    }
}
