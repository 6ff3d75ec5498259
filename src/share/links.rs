//! The share links' rows: made, listed for the record link that made them, revoked, a
//! passcode attempt reserved and given back, a view counted, and the short-lived file
//! tickets. Times are RFC 3339 UTC text with microseconds (they compare as text). It keeps
//! hashes of the secrets only (manifest token, passcode, ticket) and never decides who may
//! open a link.

use crate::store::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row;

/// A time as stored.
pub fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A link as stored.
#[derive(Debug, Clone)]
pub struct LinkRow {
    pub id: String,
    pub patient_id: String,
    pub created_by: String,
    pub account_id: String,
    pub record_link: String,
    pub label: String,
    pub sections: Vec<String>,
    pub items: i64,
    pub passcode_hash: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub failed_attempts: i64,
    pub views: i64,
    pub last_viewed_at: Option<String>,
    pub jwe: String,
}

/// A new link's row.
pub struct NewLink<'a> {
    pub id: &'a str,
    pub manifest_hash: &'a str,
    pub patient_id: &'a str,
    pub created_by: &'a str,
    pub account_id: &'a str,
    pub record_link: &'a str,
    pub label: &'a str,
    pub sections: &'a [&'a str],
    pub items: i64,
    pub passcode_hash: Option<&'a str>,
    pub created_at: &'a str,
    pub expires_at: &'a str,
    pub jwe: &'a str,
}

const COLUMNS: &str =
    "id, patient_id, created_by, account_id, record_link, label, sections, items, passcode_hash, created_at, \
                       expires_at, revoked_at, failed_attempts, views, last_viewed_at, jwe";

fn row(r: &sqlx::any::AnyRow) -> Result<LinkRow, sqlx::Error> {
    Ok(LinkRow {
        id: r.try_get("id")?,
        patient_id: r.try_get("patient_id")?,
        created_by: r.try_get("created_by")?,
        account_id: r.try_get("account_id")?,
        record_link: r.try_get("record_link")?,
        label: r.try_get("label")?,
        sections: r.try_get::<String, _>("sections")?.split(',').map(str::to_string).collect(),
        items: r.try_get("items")?,
        passcode_hash: r.try_get("passcode_hash")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        failed_attempts: r.try_get("failed_attempts")?,
        views: r.try_get("views")?,
        last_viewed_at: r.try_get("last_viewed_at")?,
        jwe: r.try_get("jwe")?,
    })
}

#[derive(Clone)]
pub struct Links {
    store: Store,
}

impl Links {
    pub fn new(store: Store) -> Links {
        Links { store }
    }

    pub async fn insert(&self, n: &NewLink<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO share_links (id, manifest_hash, patient_id, created_by, account_id, record_link, label, sections, \
             items, passcode_hash, created_at, expires_at, jwe) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(n.id)
        .bind(n.manifest_hash)
        .bind(n.patient_id)
        .bind(n.created_by)
        .bind(n.account_id)
        .bind(n.record_link)
        .bind(n.label)
        .bind(n.sections.join(","))
        .bind(n.items)
        .bind(n.passcode_hash)
        .bind(n.created_at)
        .bind(n.expires_at)
        .bind(n.jwe)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// The link whose manifest token hashes to `hash`.
    pub async fn by_manifest(&self, hash: &str) -> Result<Option<LinkRow>, StoreError> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM share_links WHERE manifest_hash = $1"))
            .bind(hash)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(r.map(|r| row(&r)).transpose()?)
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<LinkRow>, StoreError> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM share_links WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(r.map(|r| row(&r)).transpose()?)
    }

    /// The links made through `record_link`, newest first.
    pub async fn of_record_link(&self, record_link: &str) -> Result<Vec<LinkRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM share_links WHERE record_link = $1 ORDER BY created_at DESC, id"
        ))
        .bind(record_link)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Revokes link `id` of `record_link` (its file tickets go too). False when there is no
    /// such live link of that record link.
    pub async fn revoke(&self, id: &str, record_link: &str, now: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE share_links SET revoked_at = $1 WHERE id = $2 AND record_link = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(record_link)
        .execute(&self.store.pool)
        .await?;
        sqlx::query("DELETE FROM share_link_files WHERE link_id = $1").bind(id).execute(&self.store.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes one of the link's passcode attempts before the passcode is checked (so that
    /// guesses made at once cannot pass the limit): the attempts used now, or none when
    /// none was left.
    pub async fn reserve_attempt(&self, id: &str, limit: i64) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query(
            "UPDATE share_links SET failed_attempts = failed_attempts + 1 WHERE id = $1 AND failed_attempts < $2 \
             RETURNING failed_attempts",
        )
        .bind(id)
        .bind(limit)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Gives back an attempt taken by [`Links::reserve_attempt`] (the passcode was right).
    pub async fn release_attempt(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE share_links SET failed_attempts = failed_attempts - 1 WHERE id = $1 AND failed_attempts > 0",
        )
        .bind(id)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Counts one view of the link.
    pub async fn count_view(&self, id: &str, now: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE share_links SET views = views + 1, last_viewed_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Stores a file ticket of link `id` until `expires_at` (expired tickets are cleared).
    pub async fn add_ticket(&self, ticket_hash: &str, id: &str, now: &str, expires_at: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM share_link_files WHERE expires_at <= $1").bind(now).execute(&self.store.pool).await?;
        sqlx::query("INSERT INTO share_link_files (ticket_hash, link_id, expires_at) VALUES ($1, $2, $3)")
            .bind(ticket_hash)
            .bind(id)
            .bind(expires_at)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// The link of a live file ticket.
    pub async fn ticket(&self, ticket_hash: &str, now: &str) -> Result<Option<String>, StoreError> {
        let r = sqlx::query("SELECT link_id FROM share_link_files WHERE ticket_hash = $1 AND expires_at > $2")
            .bind(ticket_hash)
            .bind(now)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(r.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }
}
