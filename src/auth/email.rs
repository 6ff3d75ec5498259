//! The account's e-mail address and the mails about its security: the verification link
//! (single use, expiring, stored as its SHA-256 only; an account whose address is not
//! confirmed cannot enroll into a record), the browsers an account has signed in from (a
//! long-lived random device cookie, stored hashed per account; a new one sends the "new
//! sign-in" mail) and the notices to a record's owner. Mails go only to confirmed
//! addresses, except the verification mail itself, and never carry patient data (see
//! [`crate::mail`]). Federated accounts have no address here: their identity provider
//! vouched for them, so they count as confirmed and get no mail.

use super::accounts::{AccountError, Accounts};
use crate::i18n::Lang;
use crate::mail::Notice;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A random token for a link or cookie: 32 bytes from the OS, hex.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(purpose: &str, value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("portico-{purpose}:{}", value.trim()).as_bytes()))
}

impl Accounts {
    /// Whether the account may enroll: its address is confirmed, or it is federated.
    pub async fn email_verified(&self, account_id: &str) -> Result<bool, AccountError> {
        let row = sqlx::query("SELECT username, email_verified_at FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.is_some_and(|r| {
            let (username, verified): (Option<String>, Option<String>) = (r.get(0), r.get(1));
            username.is_none() || verified.is_some()
        }))
    }

    /// The account's confirmed address, where its notices go, and its language.
    async fn confirmed_address(&self, account_id: &str) -> Result<Option<(String, Lang)>, AccountError> {
        let row =
            sqlx::query("SELECT username, language FROM accounts WHERE id = $1 AND email_verified_at IS NOT NULL")
                .bind(account_id)
                .fetch_optional(&self.store.pool)
                .await?;
        Ok(row.and_then(|r| {
            let lang = r.get::<Option<String>, _>(1).and_then(|c| Lang::from_code(&c)).unwrap_or_default();
            r.get::<Option<String>, _>(0).map(|to| (to, lang))
        }))
    }

    /// Sends `notice` to the account's confirmed address, if it has one, in the account's language.
    pub async fn notify(&self, account_id: &str, notice: Notice) -> Result<(), AccountError> {
        if let Some((to, lang)) = self.confirmed_address(account_id).await? {
            self.mail.send(&to, lang, notice);
        }
        Ok(())
    }

    /// Sends a verification link to a local account's address (nothing when it is
    /// confirmed already or the account is federated).
    pub async fn send_verification(&self, account_id: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let row = sqlx::query("SELECT username, language FROM accounts WHERE id = $1 AND email_verified_at IS NULL")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?;
        let Some((to, lang)) = row.and_then(|r| {
            let lang = r.get::<Option<String>, _>(1).and_then(|c| Lang::from_code(&c)).unwrap_or_default();
            r.get::<Option<String>, _>(0).map(|to| (to, lang))
        }) else {
            return Ok(());
        };
        let token = new_secret();
        let valid = chrono::Duration::from_std(self.verify_link_valid).unwrap_or(chrono::Duration::hours(24));
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(digest("email-token", &token))
        .bind(account_id)
        .bind(now.to_rfc3339())
        .bind((now + valid).to_rfc3339())
        .execute(&self.store.pool)
        .await?;
        let link = format!("{}/verify-email?token={token}", self.mail.origin());
        self.mail.send(&to, lang, Notice::VerifyEmail { link, valid_hours: (valid.num_minutes() as u64).div_ceil(60) });
        Ok(())
    }

    /// Another verification mail, at most `resend_per_hour` an hour for one account; more
    /// is [`AccountError::TooManyMails`].
    pub async fn resend_verification(&self, account_id: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        let since = (now - chrono::Duration::hours(1)).to_rfc3339();
        let sent: Vec<String> = sqlx::query(
            "SELECT created_at FROM email_tokens WHERE account_id = $1 AND created_at > $2 ORDER BY created_at",
        )
        .bind(account_id)
        .bind(&since)
        .fetch_all(&self.store.pool)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
        if sent.len() >= self.resend_per_hour as usize {
            let oldest = sent.first().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
            let retry = oldest.map_or(3600, |t| (t + chrono::Duration::hours(1) - now).num_seconds().clamp(1, 3600));
            return Err(AccountError::TooManyMails { retry_after_secs: retry as u64 });
        }
        self.send_verification(account_id, now).await
    }

    /// Spends a verification link's token and confirms its account's address. False when
    /// the token is unknown, used or expired (nothing changes then).
    pub async fn verify_email(&self, token: &str, now: DateTime<Utc>) -> Result<bool, AccountError> {
        if token.len() > 256 {
            return Ok(false);
        }
        let at = now.to_rfc3339();
        let spent = sqlx::query(
            "UPDATE email_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING account_id",
        )
        .bind(&at)
        .bind(digest("email-token", token))
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(account_id) = spent.map(|r| r.get::<String, _>(0)) else { return Ok(false) };
        sqlx::query("UPDATE accounts SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
            .bind(&at)
            .bind(&account_id)
            .execute(&self.store.pool)
            .await?;
        Ok(true)
    }

    /// Staff confirm a local account's address (they checked it another way). False when
    /// there is no such account.
    pub async fn mark_email_verified(&self, username: &str, now: DateTime<Utc>) -> Result<bool, AccountError> {
        let done =
            sqlx::query("UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, $1) WHERE username = $2")
                .bind(now.to_rfc3339())
                .bind(username.trim().to_lowercase())
                .execute(&self.store.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Notes that the account signed in from the browser holding `device` (the device
    /// cookie's value). True when the account had not been used from it before.
    pub async fn note_device(&self, account_id: &str, device: &str, now: DateTime<Utc>) -> Result<bool, AccountError> {
        let done = sqlx::query(
            "INSERT INTO account_devices (account_id, device_hash, first_seen) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, device_hash) DO NOTHING",
        )
        .bind(account_id)
        .bind(digest("device", device))
        .bind(now.to_rfc3339())
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A sign-in: a browser the account was not used from before sends "new sign-in".
    pub async fn signed_in_from(&self, account_id: &str, device: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        if self.note_device(account_id, device, now).await? {
            self.notify(account_id, Notice::NewSignIn).await?;
        }
        Ok(())
    }

    /// Tells the owners of a record (accounts with a live `SELF` link to it, other than
    /// `account_id`) that someone tried to enroll into it.
    pub(super) async fn notify_owners(
        &self,
        account_id: &str,
        members: &[(String, String)],
    ) -> Result<(), AccountError> {
        let mut owners = Vec::new();
        for (source, id) in members {
            let rows = sqlx::query(
                "SELECT account_id FROM account_patients WHERE source = $1 AND source_patient_id = $2
                 AND relationship = 'SELF' AND terminated_at IS NULL AND account_id <> $3",
            )
            .bind(source)
            .bind(id)
            .bind(account_id)
            .fetch_all(&self.store.pool)
            .await?;
            owners.extend(rows.into_iter().map(|r| r.get::<String, _>(0)));
        }
        owners.sort();
        owners.dedup();
        for owner in owners {
            self.notify(&owner, Notice::EnrollmentAttempt).await?;
        }
        Ok(())
    }
}
