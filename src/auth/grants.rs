//! Grants: an app's authorization, given by an account for one patient record it may open
//! (its own, or one it is a proxy for). A grant is live while it is not revoked and the
//! account's link to the patient is not terminated and within its dates; every token check
//! asks this, so revocation and termination take effect on the next request.

use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A live grant and the account–patient link it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGrant {
    pub grant_id: String,
    /// The account's link to the patient (`account_patients.id`) the grant rests on.
    pub link_id: String,
    pub account_id: String,
    pub client_id: String,
    /// Scopes the patient granted (space-separated).
    pub scopes: String,
    /// The source record that names the patient.
    pub source: String,
    pub source_patient_id: String,
    /// `SELF` or the proxy's relationship code.
    pub relationship: String,
    pub adult_granted: bool,
    pub teen_assent: bool,
}

/// The grant `grant_id` if it is live now.
pub async fn live(store: &Store, grant_id: &str) -> Result<Option<LiveGrant>, StoreError> {
    Ok(live_until(store, grant_id).await?.map(|(g, _)| g))
}

/// The grant `grant_id` if it is live now, with the moment its link's dates end it (None:
/// no end date; an end date that cannot be read ends it now, as far as a cache goes).
pub async fn live_until(
    store: &Store,
    grant_id: &str,
) -> Result<Option<(LiveGrant, Option<DateTime<Utc>>)>, StoreError> {
    let now = Utc::now().to_rfc3339();
    let row = sqlx::query(
        "SELECT g.id, g.account_id, g.client_id, g.scopes, p.source, p.source_patient_id, p.relationship, p.adult_granted, p.teen_assent, p.id, p.valid_until
         FROM grants g JOIN account_patients p ON p.id = g.account_patient_id
         WHERE g.id = $1 AND g.revoked_at IS NULL AND p.terminated_at IS NULL
           AND (p.valid_from IS NULL OR p.valid_from <= $2) AND (p.valid_until IS NULL OR p.valid_until > $2)",
    )
    .bind(grant_id)
    .bind(&now)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.map(|r| {
        let grant = LiveGrant {
            grant_id: r.get(0),
            link_id: r.get(9),
            account_id: r.get(1),
            client_id: r.get(2),
            scopes: r.get(3),
            source: r.get(4),
            source_patient_id: r.get(5),
            relationship: r.get(6),
            adult_granted: r.get::<i32, _>(7) != 0,
            teen_assent: r.get::<i32, _>(8) != 0,
        };
        let end = r.get::<Option<String>, _>(10).map(|v| link_end(&v).unwrap_or(DateTime::<Utc>::MIN_UTC));
        (grant, end)
    }))
}

/// When a link's `valid_until` (a date, ending at its midnight UTC, or an RFC 3339 time)
/// ends it — the moment the SQL comparison with the current RFC 3339 time turns false.
fn link_end(valid_until: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(valid_until) {
        return Some(t.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(valid_until, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Records that a grant's token was used (shown on the patient's apps page).
pub async fn touch(store: &Store, grant_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE grants SET last_used = $1 WHERE id = $2")
        .bind(Utc::now().to_rfc3339())
        .bind(grant_id)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Stores the grant an account gave an app for one of its patient links; returns its id.
pub async fn create(
    store: &Store,
    account_id: &str,
    link_id: &str,
    client_id: &str,
    scopes: &str,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO grants (id, account_id, account_patient_id, client_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&id)
        .bind(account_id)
        .bind(link_id)
        .bind(client_id)
        .bind(scopes)
        .bind(Utc::now().to_rfc3339())
        .execute(&store.pool)
        .await?;
    Ok(id)
}

/// An app an account has allowed, as the account page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AllowedApp {
    pub grant_id: String,
    pub app_name: String,
    pub scopes: String,
    pub granted_at: String,
    pub last_used: Option<String>,
}

/// The live grants of an account, newest first.
pub async fn of_account(store: &Store, account_id: &str) -> Result<Vec<AllowedApp>, StoreError> {
    let rows = sqlx::query(
        "SELECT g.id, COALESCE(c.name, g.client_id), g.scopes, g.created_at, g.last_used FROM grants g
         LEFT JOIN oauth_clients c ON c.client_id = g.client_id
         WHERE g.account_id = $1 AND g.revoked_at IS NULL ORDER BY g.created_at DESC",
    )
    .bind(account_id)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AllowedApp {
            grant_id: r.get(0),
            app_name: r.get(1),
            scopes: r.get(2),
            granted_at: r.get(3),
            last_used: r.get(4),
        })
        .collect())
}

/// True when the grant belongs to the account (before it may revoke it).
pub async fn belongs_to(store: &Store, grant_id: &str, account_id: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM grants WHERE id = $1 AND account_id = $2")
        .bind(grant_id)
        .bind(account_id)
        .fetch_one(&store.pool)
        .await?;
    Ok(n == 1)
}

/// An account's grants as the pages handle them (give, list, check before revoking),
/// without handing the pages the store.
#[derive(Clone)]
pub struct Grants {
    store: Store,
}

impl Grants {
    pub fn new(store: Store) -> Grants {
        Grants { store }
    }

    /// Stores the grant an account gave an app for one of its patient links; its id.
    pub async fn give(
        &self,
        account_id: &str,
        link_id: &str,
        client_id: &str,
        scopes: &str,
    ) -> Result<String, StoreError> {
        create(&self.store, account_id, link_id, client_id, scopes).await
    }

    /// The live grants of an account, newest first.
    pub async fn of_account(&self, account_id: &str) -> Result<Vec<AllowedApp>, StoreError> {
        of_account(&self.store, account_id).await
    }

    /// True when the grant belongs to the account (before it may revoke it).
    pub async fn belongs_to(&self, grant_id: &str, account_id: &str) -> Result<bool, StoreError> {
        belongs_to(&self.store, grant_id, account_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_ends_when_the_stored_comparison_turns_false() {
        let day = link_end("2026-12-03").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-12-03T00:00:00+00:00");
        // The store compares text: the date is not after any time on that day.
        assert!("2026-12-03" <= day.to_rfc3339().as_str());
        assert!("2026-12-03" > (day - chrono::Duration::seconds(1)).to_rfc3339().as_str());
        let t = link_end("2026-12-03T10:30:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-03T08:30:00+00:00");
        assert!(link_end("soon").is_none());
    }
}
