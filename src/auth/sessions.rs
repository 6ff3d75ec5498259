//! Browser sessions: a random cookie value (stored only as a hash), its CSRF token, the
//! signed-in account, and small per-session state (a pending authorization request, OIDC
//! state). Sessions end after `session_idle` without a request and after
//! `session_absolute` in all, and [`Sessions::sweep`] deletes the rows of ended ones;
//! signing in issues a fresh session id (no fixation). It never stores passwords or tokens.
//!
//! An anonymous visitor has no row: their session lives in the cookie alone until it has
//! something to keep (a pending authorization, OIDC state: [`Sessions::save`]) or signs in.
//! Its CSRF token is derived from the cookie value (SHA-256 with a fixed label) — a
//! double-submit check: a form is accepted only from someone who can read the cookie —
//! and carried over when the session is stored, so a page's form keeps working.

use crate::store::{Store, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "portico_session";

#[derive(Debug, Clone)]
pub struct Session {
    id_hash: String,
    pub account_id: Option<String>,
    pub csrf_token: String,
    pub data: Value,
    created_at: DateTime<Utc>,
    /// Whether the session has a row (anonymous sessions have none until saved).
    stored: bool,
}

impl Session {
    /// True when `presented` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf_token.as_bytes()))
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    idle: Duration,
    absolute: Duration,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The CSRF token of an anonymous session (see the module's notes).
fn derived_csrf(cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("portico-session-csrf:{cookie}").as_bytes()))
}

/// The stored time format: fixed width, UTC, so that text comparison in SQL is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Longest cookie value accepted as an anonymous session's (ours are 45 characters).
const MAX_COOKIE: usize = 64;

/// How an anonymous session's cookie value starts, so that a cookie without a row can be
/// told apart: anonymous (never had one) or ended (its row was deleted).
const ANONYMOUS_PREFIX: &str = "a.";

/// True when `cookie` was made for an anonymous session.
pub fn is_anonymous(cookie: &str) -> bool {
    cookie.starts_with(ANONYMOUS_PREFIX)
}

impl Sessions {
    pub fn new(store: Store, idle: std::time::Duration, absolute: std::time::Duration) -> Sessions {
        Sessions {
            store,
            idle: Duration::from_std(idle).unwrap_or_default(),
            absolute: Duration::from_std(absolute).unwrap_or_default(),
        }
    }

    /// A new anonymous session, stored at once: (cookie value, session).
    pub async fn start(&self) -> Result<(String, Session), StoreError> {
        self.create(None, json!({})).await
    }

    /// An anonymous session without a row: for `cookie` when the browser sent an anonymous
    /// one we do not hold, else for a new random cookie (an ended session's cookie is never
    /// reused). (cookie value, session, new?)
    pub fn anonymous(&self, cookie: Option<&str>) -> (String, Session, bool) {
        let (cookie, new) = match cookie.filter(|c| is_anonymous(c) && c.len() <= MAX_COOKIE) {
            Some(c) => (c.to_string(), false),
            None => (format!("{ANONYMOUS_PREFIX}{}", random_token()), true),
        };
        let session = Session {
            id_hash: hash(&cookie),
            account_id: None,
            csrf_token: derived_csrf(&cookie),
            data: json!({}),
            created_at: Utc::now(),
            stored: false,
        };
        (cookie, session, new)
    }

    /// Deletes the rows of sessions past their idle or absolute limit; how many.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen < $1 OR created_at < $2")
            .bind(ts(now - self.idle))
            .bind(ts(now - self.absolute))
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create(&self, account_id: Option<&str>, data: Value) -> Result<(String, Session), StoreError> {
        let cookie = random_token();
        let now = Utc::now();
        let session = Session {
            id_hash: hash(&cookie),
            account_id: account_id.map(str::to_string),
            csrf_token: random_token(),
            data,
            created_at: now,
            stored: true,
        };
        sqlx::query("INSERT INTO sessions (id_hash, account_id, csrf_token, data, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(&session.id_hash)
            .bind(&session.account_id)
            .bind(&session.csrf_token)
            .bind(session.data.to_string())
            .bind(ts(now))
            .execute(&self.store.pool)
            .await?;
        Ok((cookie, session))
    }

    /// The live session behind a cookie value, touching its idle clock; expired ones are
    /// deleted.
    pub async fn load(&self, cookie: &str) -> Result<Option<Session>, StoreError> {
        let id_hash = hash(cookie);
        let row =
            sqlx::query("SELECT account_id, csrf_token, data, created_at, last_seen FROM sessions WHERE id_hash = $1")
                .bind(&id_hash)
                .fetch_optional(&self.store.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let parse = |t: String| DateTime::parse_from_rfc3339(&t).map(|d| d.with_timezone(&Utc)).unwrap_or_default();
        let (created_at, last_seen) = (parse(row.get(3)), parse(row.get(4)));
        let now = Utc::now();
        if now - last_seen > self.idle || now - created_at > self.absolute {
            self.end_hash(&id_hash).await?;
            return Ok(None);
        }
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2")
            .bind(ts(now))
            .bind(&id_hash)
            .execute(&self.store.pool)
            .await?;
        let data: String = row.get(2);
        Ok(Some(Session {
            id_hash,
            account_id: row.get(0),
            csrf_token: row.get(1),
            data: serde_json::from_str(&data).unwrap_or_else(|_| json!({})),
            created_at,
            stored: true,
        }))
    }

    /// Saves the session's data; an anonymous session gets its row now (it then expires
    /// like any other).
    pub async fn save(&self, session: &Session) -> Result<(), StoreError> {
        if session.stored {
            sqlx::query("UPDATE sessions SET data = $1 WHERE id_hash = $2")
                .bind(session.data.to_string())
                .bind(&session.id_hash)
                .execute(&self.store.pool)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO sessions (id_hash, account_id, csrf_token, data, created_at, last_seen) VALUES ($1, NULL, $2, $3, $4, $4)
                 ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data",
            )
            .bind(&session.id_hash)
            .bind(&session.csrf_token)
            .bind(session.data.to_string())
            .bind(ts(Utc::now()))
            .execute(&self.store.pool)
            .await?;
        }
        Ok(())
    }

    /// Signs an account in: the old session ends and a new one (new cookie, new CSRF token)
    /// carries its data forward.
    pub async fn sign_in(&self, old: &Session, account_id: &str) -> Result<(String, Session), StoreError> {
        self.end_hash(&old.id_hash).await?;
        self.create(Some(account_id), old.data.clone()).await
    }

    pub async fn end(&self, session: &Session) -> Result<(), StoreError> {
        self.end_hash(&session.id_hash).await
    }

    async fn end_hash(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.store.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sessions(idle_ms: u64, absolute_ms: u64) -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/s.db", dir.path().display()), 2).await.unwrap();
        (
            dir,
            Sessions::new(
                store,
                std::time::Duration::from_millis(idle_ms),
                std::time::Duration::from_millis(absolute_ms),
            ),
        )
    }

    #[tokio::test]
    async fn idle_and_absolute_timeouts_end_sessions() {
        let (_d, s) = sessions(300, 60_000).await;
        let (cookie, _) = s.start().await.unwrap();
        assert!(s.load(&cookie).await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(450)).await;
        assert!(s.load(&cookie).await.unwrap().is_none(), "idle too long");
        assert!(s.load(&cookie).await.unwrap().is_none(), "and gone for good");

        let (_d, s) = sessions(60_000, 500).await;
        let (cookie, _) = s.start().await.unwrap();
        for _ in 0..3 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let _ = s.load(&cookie).await.unwrap();
        }
        assert!(s.load(&cookie).await.unwrap().is_none(), "busy, but past the absolute limit");
    }

    async fn rows(s: &Sessions) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM sessions").fetch_one(&s.store.pool).await.unwrap().get(0)
    }

    #[tokio::test]
    async fn anonymous_sessions_have_no_row_until_saved_and_keep_their_csrf_token() {
        let (_d, s) = sessions(60_000, 60_000).await;
        let (cookie, mut anon, new) = s.anonymous(None);
        assert!(new);
        let (_, again, new) = s.anonymous(Some(&cookie));
        assert!(!new && again.csrf_ok(&anon.csrf_token), "the same cookie, the same token");
        assert!(!s.anonymous(None).1.csrf_ok(&anon.csrf_token), "another cookie, another token");
        let (_, _, new) = s.anonymous(Some("an-ended-signed-in-session-cookie-value"));
        assert!(new, "a cookie that was not anonymous is replaced");
        assert_eq!(rows(&s).await, 0);
        anon.data["authorize"] = json!({"client_id": "app"});
        s.save(&anon).await.unwrap();
        assert_eq!(rows(&s).await, 1);
        let loaded = s.load(&cookie).await.unwrap().unwrap();
        assert!(loaded.csrf_ok(&anon.csrf_token) && loaded.data["authorize"]["client_id"] == "app");
    }

    #[tokio::test]
    async fn the_sweep_deletes_only_ended_sessions() {
        let (_d, s) = sessions(60_000, 60_000).await;
        s.start().await.unwrap();
        assert_eq!(s.sweep(Utc::now()).await.unwrap(), 0, "a live session stays");
        assert_eq!(s.sweep(Utc::now() + Duration::seconds(61)).await.unwrap(), 1, "an idle one goes");
        assert_eq!(rows(&s).await, 0);
    }

    #[tokio::test]
    async fn signing_in_issues_a_new_session_and_csrf_token() {
        let (_d, s) = sessions(60_000, 60_000).await;
        let (old_cookie, old) = s.start().await.unwrap();
        let (new_cookie, new) = s.sign_in(&old, "acct-1").await.unwrap();
        assert_ne!(old_cookie, new_cookie);
        assert_ne!(old.csrf_token, new.csrf_token);
        assert!(s.load(&old_cookie).await.unwrap().is_none(), "the pre-sign-in session is gone (no fixation)");
        let loaded = s.load(&new_cookie).await.unwrap().unwrap();
        assert_eq!(loaded.account_id.as_deref(), Some("acct-1"));
        assert!(loaded.csrf_ok(&new.csrf_token) && !loaded.csrf_ok(&old.csrf_token) && !loaded.csrf_ok(""));
    }
}
