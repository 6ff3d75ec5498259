//! The periodic clean-up of what has expired in the auth tables: sessions past their idle or
//! absolute limit, authorization codes an hour past expiry (kept that long so a replayed
//! code is still recognised as used), spent client-assertion ids past their `exp`, and
//! enrollment attempts older than the throttle window; and the rate limiter's idle buckets.
//! It deletes only rows that can no longer mean anything; it never touches live ones.

use super::sessions::Sessions;
use super::throttle::Throttle;
use crate::store::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How long an expired authorization code is kept (replays are answered as reuse).
const CODE_GRACE: chrono::Duration = chrono::Duration::hours(1);

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
        let codes = delete("DELETE FROM auth_codes WHERE expires_at < $1", ts(now - CODE_GRACE)).await?;
        let assertions = delete("DELETE FROM client_assertions WHERE expires_at < $1", ts(now)).await?;
        let window = chrono::Duration::from_std(self.enroll_window).unwrap_or_default();
        // enrollment_attempts.at is written by `to_rfc3339` (offset +00:00): compare alike.
        let enrollment_attempts =
            delete("DELETE FROM enrollment_attempts WHERE at < $1", (now - window).to_rfc3339()).await?;
        self.throttle.forget_idle();
        Ok(Swept { sessions, codes, assertions, enrollment_attempts })
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
