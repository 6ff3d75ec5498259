//! Invitations: an adult patient names an e-mail address and a relationship; the address
//! gets a single-use link (only its SHA-256 is kept). The invitee, signed in with a
//! confirmed account of that same address, enters the patient's birth date: each try is
//! taken from the invitation's three by one conditional update before the date is compared
//! (so parallel tries cannot take more), the comparison runs in constant time, and the
//! third wrong date kills the invitation. The right date links the invitee's account to
//! the record as the patient's proxy, with the adult's grant and an end
//! (`proxies.adult_proxy_for`), and the patient is told.

use super::{Proxies, ProxyError};
use crate::auth::accounts::PatientLink;
use crate::i18n::{t, tr};
use crate::mail::RecordNotice;
use crate::notices::NoticeKind;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;
use subtle::ConstantTimeEq;

/// Wrong birth dates an invitation survives: the third kills it.
pub const TRIES: i64 = 3;
/// Invitations one patient may have open at once.
const OPEN_AT_MOST: i64 = 10;
/// Invitations one patient may send in a day (each is a mail to an address they choose).
const SENT_A_DAY: i64 = 20;
/// Relationships a patient may invite a proxy as (v3 RoleCode).
pub const RELATIONSHIPS: &[&str] = &["SPS", "PRN", "FAMMEMB", "NOK", "CAREGIVER", "GUARD"];

/// An invitation as its patient sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    pub id: String,
    pub email: String,
    pub relationship: String,
    pub created_at: String,
    pub expires_at: String,
    /// `open`, `accepted`, `cancelled`, `expired` or `dead` (three wrong birth dates).
    pub state: String,
}

fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("portico-proxy-invitation:{}", token.trim()).as_bytes()))
}

fn state_of(accepted: bool, cancelled: bool, failed: i64, expires_at: &str, now: &str) -> &'static str {
    if accepted {
        "accepted"
    } else if cancelled {
        "cancelled"
    } else if failed >= TRIES {
        "dead"
    } else if expires_at <= now {
        "expired"
    } else {
        "open"
    }
}

/// A birth date as typed (`YYYY-MM-DD`), in its one form.
fn typed_date(text: &str) -> Result<String, ProxyError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| ProxyError::Invalid(t("proxies-problem-date")))
}

/// Whether two dates are the same, in time that does not depend on where they differ.
fn same_date(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Proxies {
    /// The patient `account_id` invites `email` to be their proxy as `relationship`; the
    /// address is mailed the link.
    pub async fn invite(
        &self,
        account_id: &str,
        email: &str,
        relationship: &str,
        now: DateTime<Utc>,
    ) -> Result<Invitation, ProxyError> {
        let own = self.own_record(account_id).await?;
        let today = now.with_timezone(&self.ages.zone).date_naive();
        let adult = self.birth_date(&own.source, &own.source_patient_id).await?.is_some_and(|b| {
            crate::fhir::time::age_on(b, today) >= i32::try_from(self.ages.majority).unwrap_or(i32::MAX)
        });
        if !adult {
            return Err(ProxyError::Invalid(t("proxies-problem-minor")));
        }
        let email = email.trim().to_lowercase();
        if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
            return Err(ProxyError::Invalid(t("proxies-problem-email")));
        }
        let own_address: Option<String> = sqlx::query("SELECT username FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?
            .and_then(|r| r.get(0));
        if own_address.as_deref() == Some(email.as_str()) {
            return Err(ProxyError::Invalid(t("proxies-problem-own-address")));
        }
        let relationship = relationship.trim().to_uppercase();
        if !RELATIONSHIPS.contains(&relationship.as_str()) {
            return Err(ProxyError::Invalid(tr(
                "proxies-problem-relationship",
                &[("codes", RELATIONSHIPS.join(", ").into())],
            )));
        }
        let at = now.to_rfc3339();
        let open: i64 = sqlx::query(
            "SELECT COUNT(*) FROM proxy_invitations WHERE patient_account_id = $1 AND accepted_at IS NULL
             AND cancelled_at IS NULL AND failed_attempts < $2 AND expires_at > $3",
        )
        .bind(account_id)
        .bind(TRIES)
        .bind(&at)
        .fetch_one(&self.store.pool)
        .await?
        .get(0);
        let day_ago = (now - chrono::Duration::days(1)).to_rfc3339();
        let sent: i64 =
            sqlx::query("SELECT COUNT(*) FROM proxy_invitations WHERE patient_account_id = $1 AND created_at > $2")
                .bind(account_id)
                .bind(&day_ago)
                .fetch_one(&self.store.pool)
                .await?
                .get(0);
        if sent >= SENT_A_DAY {
            tracing::warn!("proxy invitations: one patient's daily limit reached");
            return Err(ProxyError::TooMany { retry_after: 3600 });
        }
        if open >= OPEN_AT_MOST {
            return Err(ProxyError::Invalid(tr("proxies-problem-open", &[("count", open.into())])));
        }
        let token = crate::auth::email::new_secret();
        let valid = self.config.invitation_valid.std();
        let expires_at = (now + chrono::Duration::from_std(valid).unwrap_or_default()).to_rfc3339();
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO proxy_invitations (id, token_hash, patient_account_id, source, source_patient_id, email, relationship, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(token_hash(&token))
        .bind(account_id)
        .bind(&own.source)
        .bind(&own.source_patient_id)
        .bind(&email)
        .bind(&relationship)
        .bind(&at)
        .bind(&expires_at)
        .execute(&self.store.pool)
        .await?;
        let link = format!("{}/proxy-invitations/accept?token={token}", self.notices.origin());
        let valid_days = (valid.as_secs() / 86_400).max(1);
        let notice = RecordNotice::ProxyInvitation { link, valid_days };
        self.notices.send_to_address(&email, crate::i18n::current(), notice).await?;
        Ok(Invitation { id, email, relationship, created_at: at, expires_at, state: "open".into() })
    }

    /// The patient's invitations, newest first.
    pub async fn invitations(&self, account_id: &str, now: DateTime<Utc>) -> Result<Vec<Invitation>, ProxyError> {
        let at = now.to_rfc3339();
        let rows = sqlx::query(
            "SELECT id, email, relationship, created_at, expires_at, accepted_at, cancelled_at, failed_attempts
             FROM proxy_invitations WHERE patient_account_id = $1 ORDER BY created_at DESC",
        )
        .bind(account_id)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let expires_at: String = r.get(4);
                let state = state_of(
                    r.get::<Option<String>, _>(5).is_some(),
                    r.get::<Option<String>, _>(6).is_some(),
                    r.get::<i64, _>(7),
                    &expires_at,
                    &at,
                );
                Invitation {
                    id: r.get(0),
                    email: r.get(1),
                    relationship: r.get(2),
                    created_at: r.get(3),
                    expires_at,
                    state: state.into(),
                }
            })
            .collect())
    }

    /// The patient cancels an open invitation of theirs.
    pub async fn cancel(&self, account_id: &str, invitation_id: &str, now: DateTime<Utc>) -> Result<(), ProxyError> {
        let done = sqlx::query(
            "UPDATE proxy_invitations SET cancelled_at = $1 WHERE id = $2 AND patient_account_id = $3
             AND accepted_at IS NULL AND cancelled_at IS NULL",
        )
        .bind(now.to_rfc3339())
        .bind(invitation_id)
        .bind(account_id)
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ProxyError::NotFound);
        }
        Ok(())
    }

    /// Whether `token` is an invitation that can still be accepted (the accept page).
    pub async fn is_open(&self, token: &str, now: DateTime<Utc>) -> Result<bool, ProxyError> {
        Ok(sqlx::query(
            "SELECT 1 FROM proxy_invitations WHERE token_hash = $1 AND accepted_at IS NULL AND cancelled_at IS NULL
             AND failed_attempts < $2 AND expires_at > $3",
        )
        .bind(token_hash(token))
        .bind(TRIES)
        .bind(now.to_rfc3339())
        .fetch_optional(&self.store.pool)
        .await?
        .is_some())
    }

    /// The signed-in `account_id` accepts the invitation `token` with the patient's birth
    /// date: the account's new link to the record.
    pub async fn accept(
        &self,
        account_id: &str,
        token: &str,
        birth_date: &str,
        now: DateTime<Utc>,
    ) -> Result<PatientLink, ProxyError> {
        let given = typed_date(birth_date)?;
        let hash = token_hash(token);
        let at = now.to_rfc3339();
        let row = sqlx::query(
            "SELECT id, patient_account_id, source, source_patient_id, email, relationship FROM proxy_invitations
             WHERE token_hash = $1 AND accepted_at IS NULL AND cancelled_at IS NULL AND failed_attempts < $2 AND expires_at > $3",
        )
        .bind(&hash)
        .bind(TRIES)
        .bind(&at)
        .fetch_optional(&self.store.pool)
        .await?
        .ok_or(ProxyError::Dead)?;
        let (id, patient, source, source_patient_id, email, relationship): (
            String,
            String,
            String,
            String,
            String,
            String,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
        if patient == account_id {
            return Err(ProxyError::Invalid(t("proxies-problem-own-record")));
        }
        let address: Option<String> = sqlx::query("SELECT username FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?
            .and_then(|r| r.get(0));
        if address.as_deref() != Some(email.as_str()) {
            return Err(ProxyError::OtherAddress);
        }
        if !self.accounts.email_verified(account_id).await? {
            return Err(ProxyError::Invalid(t("proxies-problem-confirm-first")));
        }
        // Take one try before comparing.
        let taken = sqlx::query(
            "UPDATE proxy_invitations SET failed_attempts = failed_attempts + 1
             WHERE id = $1 AND accepted_at IS NULL AND cancelled_at IS NULL AND failed_attempts < $2 AND expires_at > $3",
        )
        .bind(&id)
        .bind(TRIES)
        .bind(&at)
        .execute(&self.store.pool)
        .await?;
        if taken.rows_affected() == 0 {
            return Err(ProxyError::Dead);
        }
        let born = self.birth_date(&source, &source_patient_id).await?.map(|d| d.format("%Y-%m-%d").to_string());
        if !same_date(born.as_deref().unwrap_or("----------"), &given) {
            let used: i64 = sqlx::query("SELECT failed_attempts FROM proxy_invitations WHERE id = $1")
                .bind(&id)
                .fetch_one(&self.store.pool)
                .await?
                .get(0);
            tracing::info!(invitation = %id, "proxy invitation: wrong birth date");
            return Err(ProxyError::WrongBirthDate { left: (TRIES - used).max(0) });
        }
        // The right date gives its try back; of two accepts at once only one lands.
        let accepted = sqlx::query(
            "UPDATE proxy_invitations SET accepted_at = $1, accepted_by = $2, failed_attempts = failed_attempts - 1
             WHERE id = $3 AND accepted_at IS NULL AND cancelled_at IS NULL",
        )
        .bind(&at)
        .bind(account_id)
        .bind(&id)
        .execute(&self.store.pool)
        .await?;
        if accepted.rows_affected() == 0 {
            return Err(ProxyError::Dead);
        }
        let until = self.adult_until(now);
        let link = self
            .accounts
            .link(account_id, &source, &source_patient_id, &relationship, None, Some(&until), None, "invitation")
            .await?;
        self.accounts.set_terms(&link.id, true, false).await?;
        sqlx::query("UPDATE proxy_invitations SET link_id = $1 WHERE id = $2")
            .bind(&link.id)
            .bind(&id)
            .execute(&self.store.pool)
            .await?;
        self.notices.notify(&patient, NoticeKind::ProxyAdded).await?;
        Ok(PatientLink { adult_granted: true, ..link })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_compare_only_when_equal_and_are_read_in_one_form() {
        assert!(same_date("1967-06-18", "1967-06-18"));
        assert!(!same_date("1967-06-18", "1967-06-19"));
        assert!(!same_date("1967-06-18", "1967-06-1"));
        assert_eq!(typed_date(" 1967-06-18 ").unwrap(), "1967-06-18");
        assert!(typed_date("18/06/1967").is_err());
        assert!(typed_date("").is_err());
    }

    #[test]
    fn an_invitation_is_dead_after_three_wrong_dates_and_expired_after_its_time() {
        let now = "2026-12-03T10:00:00+00:00";
        assert_eq!(state_of(false, false, 2, "2026-12-10T00:00:00+00:00", now), "open");
        assert_eq!(state_of(false, false, 3, "2026-12-10T00:00:00+00:00", now), "dead");
        assert_eq!(state_of(false, false, 0, "2026-12-01T00:00:00+00:00", now), "expired");
        assert_eq!(state_of(true, false, 1, "2026-12-01T00:00:00+00:00", now), "accepted");
        assert_eq!(state_of(false, true, 0, "2026-12-10T00:00:00+00:00", now), "cancelled");
    }
}
