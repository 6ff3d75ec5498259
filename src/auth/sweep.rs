//! The periodic clean-up of what has expired in the auth tables: sessions past their idle or
//! absolute limit, authorization codes an hour past expiry (kept that long so a replayed
//! code is still recognised as used), access tokens an hour past expiry, refresh-token
//! families once every token of the family has expired (a rotated token is kept while its
//! family lives, so that its replay still revokes the family), spent client-assertion ids past
//! their `exp`, and enrollment attempts older than the throttle window; and the rate limiter's
//! idle buckets.
//! It deletes only rows that can no longer mean anything; it never touches live ones.

use super::sessions::Sessions;
use super::throttle::Throttle;
use crate::store::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How long an expired authorization code or access token is kept (a replayed code is
/// answered as reuse).
const GRACE: chrono::Duration = chrono::Duration::hours(1);

/// What a sweep removes, and with what.
#[derive(Clone)]
pub struct Sweeper {
    pub store: Store,
    pub sessions: Sessions,
    pub throttle: Arc<Throttle>,
    /// `auth.enroll_throttle_window`.
    pub enroll_window: Duration,
}

/// Rows deleted by one sweep.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub codes: u64,
    /// Access tokens, and every token of families that have wholly expired.
    pub tokens: u64,
    pub assertions: u64,
    pub enrollment_attempts: u64,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Sweeper {
    /// One sweep as of `now`.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<Swept, StoreError> {
        let sessions = self.sessions.sweep(now).await?;
        let delete = |sql: &'static str, before: String| {
            let pool = self.store.pool.clone();
            async move { sqlx::query(sql).bind(before).execute(&pool).await.map(|d| d.rows_affected()) }
        };
        let codes = delete("DELETE FROM auth_codes WHERE expires_at < $1", ts(now - GRACE)).await?;
        let access = delete("DELETE FROM tokens WHERE kind = 'access' AND expires_at < $1", ts(now - GRACE)).await?;
        let families = delete(
            "DELETE FROM tokens WHERE family IN \
             (SELECT family FROM tokens GROUP BY family HAVING MAX(expires_at) < $1)",
            ts(now - GRACE),
        )
        .await?;
        let assertions = delete("DELETE FROM client_assertions WHERE expires_at < $1", ts(now)).await?;
        let window = chrono::Duration::from_std(self.enroll_window).unwrap_or_default();
        // enrollment_attempts.at is written by `to_rfc3339` (offset +00:00): compare alike.
        let enrollment_attempts =
            delete("DELETE FROM enrollment_attempts WHERE at < $1", (now - window).to_rfc3339()).await?;
        self.throttle.forget_idle();
        Ok(Swept { sessions, codes, tokens: access + families, assertions, enrollment_attempts })
    }

    /// Sweeps every `every` until the task is aborted; a failed sweep is logged and retried
    /// next time.
    pub fn start(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.sweep(Utc::now()).await {
                    Ok(s) if s != Swept::default() => tracing::debug!(?s, "expired auth rows deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sweeping expired auth rows failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn token(store: &Store, hash: &str, kind: &str, family: &str, expires: DateTime<Utc>) {
        sqlx::query(
            "INSERT INTO tokens (token_hash, kind, grant_id, client_id, family, scopes, expires_at, created_at)
             VALUES ($1, $2, 'g', 'app', $3, 'patient/*.rs', $4, $5)",
        )
        .bind(hash)
        .bind(kind)
        .bind(family)
        .bind(ts(expires))
        .bind(ts(Utc::now()))
        .execute(&store.pool)
        .await
        .unwrap();
    }

    async fn left(store: &Store) -> Vec<String> {
        use sqlx::Row;
        let rows =
            sqlx::query("SELECT token_hash FROM tokens ORDER BY token_hash").fetch_all(&store.pool).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>(0)).collect()
    }

    #[tokio::test]
    async fn expired_tokens_go_but_a_living_family_keeps_its_rotated_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/s.db", dir.path().display()), 2).await.unwrap();
        let sweeper = Sweeper {
            store: store.clone(),
            sessions: Sessions::new(store.clone(), Duration::from_secs(60), Duration::from_secs(60)),
            throttle: Arc::new(Throttle::new(&Default::default())),
            enroll_window: Duration::from_secs(60),
        };
        let now = Utc::now();
        let day = chrono::Duration::days(1);
        // A live access token, and one expired two hours ago.
        token(&store, "a-live", "access", "f1", now + chrono::Duration::hours(1)).await;
        token(&store, "a-old", "access", "f1", now - chrono::Duration::hours(2)).await;
        // Family f1: a rotated refresh token past its expiry, and the live one it was rotated into.
        token(&store, "r-f1-rotated", "refresh", "f1", now - day).await;
        token(&store, "r-f1-live", "refresh", "f1", now + day).await;
        // Family f2: every refresh token expired more than the grace ago.
        token(&store, "r-f2-a", "refresh", "f2", now - day).await;
        token(&store, "r-f2-b", "refresh", "f2", now - chrono::Duration::hours(2)).await;
        // Family f3: expired, but within the grace.
        token(&store, "r-f3", "refresh", "f3", now - chrono::Duration::minutes(5)).await;

        let swept = sweeper.sweep(now).await.unwrap();
        assert_eq!(swept.tokens, 3, "{swept:?}");
        assert_eq!(left(&store).await, ["a-live", "r-f1-live", "r-f1-rotated", "r-f3"]);
        assert_eq!(sweeper.sweep(now).await.unwrap().tokens, 0, "a second sweep finds nothing");
    }
}
