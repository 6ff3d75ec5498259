//! Accounts: local sign-in (argon2id, a password policy, lockout after repeated failures),
//! federated accounts keyed by issuer + subject, enrollment (linking an account to its own
//! patient record) and the links staff create for proxies, with their termination.
//!
//! Enrollment is by a one-time activation code HIM issued for the record (random from the
//! OS, stored only as an HMAC keyed from the key-encryption key, expiring, spent atomically)
//! entered with the birth date, or — when the config allows it — by medical record number +
//! birth date + last name, throttled per target record (whatever the account) and overall, not only per account.
//! A record that already has an owner (a live `SELF` link) is never linked again
//! automatically: the attempt is refused like a mismatch and goes on the HIM review list.
//! Messages never reveal whether an account exists, which enrollment field was wrong or
//! whether a record has an owner. Passwords and codes are never logged or stored.
//! Hashing runs on the bounded pool of [`crate::auth::hashing`], never on an async worker.
//!
//! Only an account whose e-mail address is confirmed may enroll (see [`super::email`]).
//! One live `SELF` link per record is also kept by the database (a unique index): of two
//! enrollments into one record at the same instant, the one whose insert loses goes on the
//! review list too. The account is mailed when its record is connected, and a record's
//! owner when someone else tries to enroll into it.

use crate::auth::hashing::{Busy, Hasher};
use crate::auth::keyring::KeyEncryptionKey;
use crate::config::AuthConfig;
use crate::identity::matching::fold;
use crate::identity::PatientIndex;
use crate::mail::{Mailer, Notice};
use crate::store::{Store, StoreError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().map(str::trim).filter(|l| !l.is_empty()).collect());

/// A hash to verify against when the account does not exist, so an unknown user name takes
/// as long as a wrong password.
// Cannot fail: argon2 with its default parameters fails only on an over-long password or salt
// (this one is fixed and short; the salt is generated at the right length).
#[allow(clippy::expect_used)]
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("not-a-real-password-0000").expect("argon2"));

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Sign-in failed: wrong name or password, or locked. One message for all.
    #[error("That user name and password don't match our records, or the account is locked for a while after too many attempts.")]
    SignInFailed,
    #[error("We couldn't verify those details. Check them against a letter or bill from Harbor Health and try again; after several attempts the account is locked for a while.")]
    VerificationFailed,
    /// The details matched a record that already has an owner: said like a mismatch; the
    /// caller writes the attempt to that patient's access log (the review is already queued).
    #[error("We couldn't verify those details. Check them against a letter or bill from Harbor Health and try again; after several attempts the account is locked for a while.")]
    RecordHasOwner {
        /// The record's gateway id, for the access log.
        patient_id: String,
    },
    /// Enrollment by medical record number is turned off in the config.
    #[error("Enter the activation code Harbor Health gave you (at the front desk or on your visit summary) with your date of birth.")]
    DemographicsOff,
    /// The account's e-mail address is not confirmed yet: it cannot enroll.
    #[error("Confirm your e-mail address first: open the link in the mail we sent when you created your account, or ask for a new mail below. Nothing was connected.")]
    EmailNotVerified,
    /// Too many verification mails asked for; try again after this many seconds.
    #[error(
        "We have sent several mails in the last hour. Please wait a while and check your inbox (and spam folder)."
    )]
    TooManyMails { retry_after_secs: u64 },
    #[error("{0}")]
    WeakPassword(String),
    #[error("that user name is taken")]
    NameTaken,
    #[error("{0}")]
    Invalid(String),
    /// The hashing pool is full (a flood): answer 429 with Retry-After.
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Store(StoreError::Query(e))
    }
}

/// A record an account may open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientLink {
    pub id: String,
    pub source: String,
    pub source_patient_id: String,
    /// `SELF` or the proxy relationship.
    pub relationship: String,
    pub valid_until: Option<String>,
    /// A proxy for an adult: the adult granted it (policy shows the adult's record).
    pub adult_granted: bool,
    /// A parent of a teenager: the teenager assented to sharing.
    pub teen_assent: bool,
}

/// A code HIM hands to a patient; `code` is shown once and never stored.
#[derive(Debug, Clone, Serialize)]
pub struct ActivationCode {
    pub code: String,
    /// `source/source-id`.
    pub patient: String,
    pub expires_at: String,
}

/// An enrollment HIM must look at: the record already had an owner.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentReview {
    pub id: String,
    pub account_id: String,
    pub source: String,
    pub source_patient_id: String,
    /// `demographics` or `activation-code`.
    pub method: String,
    pub created_at: String,
}

/// Crockford's base 32 (no I, L, O, U; 5 bits a character); typed O is read as 0, I and L as 1.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 10 characters: 50 bits, shown as two groups of five.
const CODE_LENGTH: usize = 10;
/// Wrong birth dates entered with one code before the code is void.
const CODE_ATTEMPTS: i32 = 5;

fn new_activation_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let chars: String =
        (0..CODE_LENGTH).map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())])).collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A code as a person may type it (any case, spaces or dashes) in its one canonical form.
fn normal_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

pub struct Accounts {
    pub(super) store: Store,
    index: Arc<PatientIndex>,
    config: AuthConfig,
    /// Keys the stored hashes of activation codes.
    kek: Arc<KeyEncryptionKey>,
    hasher: Hasher,
    pub(super) mail: Mailer,
    /// How long an e-mail verification link works.
    pub(super) verify_link_valid: std::time::Duration,
    /// Verification mails one account may ask for in an hour.
    pub(super) resend_per_hour: u32,
    /// What "now" is for a link's dates (an adult's proxy runs out at its `valid_until`).
    clock: crate::clock::Clock,
}

/// Longest user name and password looked at (longer ones are refused before hashing).
/// How long staff and enrollment wait for a source that lists no patients to answer an
/// on-demand lookup (`crate::identity`).
const LOOKUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_USERNAME: usize = 254;
const MAX_PASSWORD: usize = 1024;

/// `locked_until` as stored: fixed width, UTC, so that text comparison in SQL is time order.
fn lock_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

impl Accounts {
    /// Hashing runs on a pool of `config.hash_workers` threads with `config.hash_queue` waiting.
    pub fn new(store: Store, index: Arc<PatientIndex>, config: AuthConfig, kek: Arc<KeyEncryptionKey>) -> Accounts {
        let hasher = Hasher::new(config.hash_workers, config.hash_queue);
        Accounts {
            store,
            index,
            config,
            kek,
            hasher,
            mail: Mailer::off(""),
            verify_link_valid: crate::config::default_verify_link_valid().std(),
            resend_per_hour: crate::config::default_resend_per_hour(),
            clock: crate::clock::Clock::system(),
        }
    }

    /// Reads a link's dates against `clock` (the app's; see [`crate::clock`]).
    pub fn with_clock(self, clock: crate::clock::Clock) -> Accounts {
        Accounts { clock, ..self }
    }

    /// The hashing pool (the authorization server checks client secrets on it too).
    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    /// Sends the security mails through `mail`, with the `[mail]` section's limits.
    pub fn with_mail(self, mail: Mailer, config: Option<&crate::config::MailConfig>) -> Accounts {
        Accounts {
            mail,
            verify_link_valid: config.map_or(self.verify_link_valid, |c| c.verify_link_valid.std()),
            resend_per_hour: config.map_or(self.resend_per_hour, |c| c.resend_per_hour),
            ..self
        }
    }

    /// The stored form of an activation code: an HMAC keyed from the key-encryption key, so
    /// a database dump alone does not allow guessing codes offline.
    fn code_hash(&self, code: &str) -> String {
        self.kek.code_mac(&normal_code(code))
    }

    /// Whether patients may enroll by medical record number + birth date + last name.
    pub fn enroll_by_demographics(&self) -> bool {
        self.config.enroll_by_demographics
    }

    /// Why a password is refused, or `None` when it is acceptable.
    pub fn password_problem(&self, username: &str, password: &str) -> Option<String> {
        let min = self.config.password_min_length;
        if password.chars().count() < min {
            return Some(crate::i18n::tr("password-too-short", &[("min", (min as u64).into())]));
        }
        if password.len() > MAX_PASSWORD {
            return Some(crate::i18n::t("password-too-long"));
        }
        let lower = password.to_lowercase();
        if COMMON_PASSWORDS.contains(lower.as_str()) || lower == username.to_lowercase() {
            return Some(crate::i18n::t("password-too-common"));
        }
        None
    }

    /// Creates a local account; returns its id.
    pub async fn create_local(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
    ) -> Result<String, AccountError> {
        let username = username.trim().to_lowercase();
        // The user name is the address the verification link goes to.
        if username.len() < 3 || username.len() > MAX_USERNAME || username.parse::<lettre::Address>().is_err() {
            return Err(AccountError::Invalid(crate::i18n::t("register-username-invalid")));
        }
        if display_name.trim().is_empty() {
            return Err(AccountError::Invalid(crate::i18n::t("register-name-missing")));
        }
        if let Some(p) = self.password_problem(&username, password) {
            return Err(AccountError::WeakPassword(p));
        }
        let password = password.to_string();
        let hash = self.hasher.run(move || hash_password(&password)).await?.map_err(AccountError::Invalid)?;
        let id = uuid::Uuid::new_v4().to_string();
        let done = sqlx::query(
            "INSERT INTO accounts (id, username, password_hash, display_name, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING",
        )
        .bind(&id)
        .bind(&username)
        .bind(&hash)
        .bind(display_name.trim())
        .bind(Utc::now().to_rfc3339())
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AccountError::NameTaken);
        }
        Ok(id)
    }

    /// Checks a local sign-in. Each try on an existing account first takes one of its
    /// attempts (one conditional UPDATE, so parallel tries cannot take more than
    /// `lockout_attempts`; the one that takes the last locks the account at once); a locked
    /// account is refused without hashing. Success gives the attempts back. Hashing runs on
    /// the bounded pool: when it is full the answer is [`AccountError::Busy`].
    pub async fn sign_in(&self, username: &str, password: &str, now: DateTime<Utc>) -> Result<String, AccountError> {
        let username = username.trim().to_lowercase();
        if username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
            return Err(AccountError::SignInFailed);
        }
        let row = sqlx::query("SELECT id, password_hash FROM accounts WHERE username = $1")
            .bind(&username)
            .fetch_optional(&self.store.pool)
            .await?;
        let Some(row) = row else {
            self.verify(password, None).await?;
            return Err(AccountError::SignInFailed);
        };
        let (id, hash): (String, Option<String>) = (row.get(0), row.get(1));
        if !self.take_attempt(&id, now).await? {
            return Err(AccountError::SignInFailed);
        }
        if !self.verify(password, hash).await? {
            return Err(AccountError::SignInFailed);
        }
        sqlx::query("UPDATE accounts SET failed_attempts = 0, locked_until = NULL WHERE id = $1")
            .bind(&id)
            .execute(&self.store.pool)
            .await?;
        Ok(id)
    }

    /// Verifies a password on the hashing pool (against the decoy hash when there is no
    /// account or no password, so that takes as long).
    async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, AccountError> {
        let password = password.to_string();
        Ok(self.hasher.run(move || verify_password(&password, hash.as_deref().unwrap_or(&DUMMY_HASH))).await?)
    }

    /// True when the account is locked now (enrollment checks it too).
    pub async fn is_locked(&self, account_id: &str, now: DateTime<Utc>) -> Result<bool, AccountError> {
        let locked: Option<Option<String>> = sqlx::query("SELECT locked_until FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?
            .map(|r| r.get(0));
        Ok(locked.flatten().and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).is_some_and(|t| t > now))
    }

    /// Takes one attempt of the account's allowance, atomically: false (nothing taken) while
    /// it is locked. The attempt that reaches `lockout_attempts` locks the account in the
    /// same statement; a lock that has run out starts the count again.
    async fn take_attempt(&self, account_id: &str, now: DateTime<Utc>) -> Result<bool, AccountError> {
        let until = now + chrono::Duration::from_std(self.config.lockout_duration.std()).unwrap_or_default();
        let taken = sqlx::query(
            "UPDATE accounts SET
                failed_attempts = CASE WHEN locked_until IS NULL THEN failed_attempts + 1 ELSE 1 END,
                locked_until = CASE WHEN (CASE WHEN locked_until IS NULL THEN failed_attempts + 1 ELSE 1 END) >= $2
                                    THEN $3 ELSE NULL END
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $4)",
        )
        .bind(account_id)
        .bind(i64::from(self.config.lockout_attempts))
        .bind(lock_time(until))
        .bind(lock_time(now))
        .execute(&self.store.pool)
        .await?;
        let taken = taken.rows_affected() == 1;
        if taken && self.is_locked(account_id, now).await? {
            tracing::warn!(account = %account_id, "account locked after repeated failures");
        }
        Ok(taken)
    }

    /// A failed enrollment counts toward the account's lockout.
    async fn count_failure(&self, account_id: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
        self.take_attempt(account_id, now).await?;
        Ok(())
    }

    /// The account for an identity provider's subject, created on first sign-in.
    pub async fn federated(&self, issuer: &str, subject: &str, display_name: &str) -> Result<String, AccountError> {
        let existing = sqlx::query("SELECT id FROM accounts WHERE oidc_issuer = $1 AND oidc_subject = $2")
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.store.pool)
            .await?;
        if let Some(r) = existing {
            return Ok(r.get(0));
        }
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO accounts (id, oidc_issuer, oidc_subject, display_name, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(issuer)
            .bind(subject)
            .bind(if display_name.trim().is_empty() { "Patient" } else { display_name.trim() })
            .bind(Utc::now().to_rfc3339())
            .execute(&self.store.pool)
            .await?;
        Ok(id)
    }

    /// The id of the local account with this user name.
    pub async fn id_of(&self, username: &str) -> Result<Option<String>, AccountError> {
        Ok(sqlx::query("SELECT id FROM accounts WHERE username = $1")
            .bind(username.trim().to_lowercase())
            .fetch_optional(&self.store.pool)
            .await?
            .map(|r| r.get(0)))
    }

    /// Records what an adult patient granted their proxy, or a minor's assent.
    pub async fn set_terms(&self, link_id: &str, adult_granted: bool, teen_assent: bool) -> Result<(), AccountError> {
        // What the link's grants allow changes: cached token checks must not outlive it.
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE account_patients SET adult_granted = $1, teen_assent = $2 WHERE id = $3")
            .bind(i32::from(adult_granted))
            .bind(i32::from(teen_assent))
            .bind(link_id)
            .execute(&mut *tx)
            .await?;
        super::revocation::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn display_name(&self, account_id: &str) -> Result<Option<String>, AccountError> {
        Ok(sqlx::query("SELECT display_name FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?
            .map(|r| r.get(0)))
    }

    /// Links the account to its own record when the medical record number, birth date and
    /// last name all match one patient record (if the config allows this way at all).
    ///
    /// Every attempt is counted against each record the number names before it is checked
    /// (so parallel attempts can't slip past the limit) and taken back when it succeeds: a
    /// record with `enroll_record_attempts` attempts in the window is refused even with the
    /// right details, from any account, and so is everyone once `enroll_global_attempts`
    /// attempts failed in the window. Failures count toward the account's lockout too.
    pub async fn enroll(
        &self,
        account_id: &str,
        mrn: &str,
        birth_date: &str,
        family: &str,
        now: DateTime<Utc>,
    ) -> Result<PatientLink, AccountError> {
        if !self.config.enroll_by_demographics {
            return Err(AccountError::DemographicsOff);
        }
        if !self.email_verified(account_id).await? {
            return Err(AccountError::EmailNotVerified);
        }
        if self.is_locked(account_id, now).await? {
            return Err(AccountError::VerificationFailed);
        }
        let deadline = tokio::time::Instant::now() + LOOKUP_DEADLINE;
        let candidates = self.index.records_with_identifier(mrn, deadline).await?;
        let attempt = uuid::Uuid::new_v4().to_string();
        let at = now.to_rfc3339();
        let window = chrono::Duration::from_std(self.config.enroll_throttle_window.std()).unwrap_or_default();
        let since = (now - window).to_rfc3339();
        let mut targets: Vec<Option<(&str, &str)>> =
            candidates.iter().map(|(s, id, _)| Some((s.as_str(), id.as_str()))).collect();
        if targets.is_empty() {
            targets.push(None);
        }
        for target in &targets {
            sqlx::query(
                "INSERT INTO enrollment_attempts (attempt_id, source, source_patient_id, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&attempt)
            .bind(target.map(|t| t.0))
            .bind(target.map(|t| t.1))
            .bind(&at)
            .execute(&self.store.pool)
            .await?;
        }
        let overall: i64 = sqlx::query("SELECT COUNT(DISTINCT attempt_id) FROM enrollment_attempts WHERE at > $1")
            .bind(&since)
            .fetch_one(&self.store.pool)
            .await?
            .get(0);
        let mut throttled = overall > i64::from(self.config.enroll_global_attempts);
        if throttled {
            tracing::warn!("enrollment by demographics paused: too many failed attempts overall");
        }
        for (source, id, _) in &candidates {
            let against: i64 = sqlx::query(
                "SELECT COUNT(*) FROM enrollment_attempts WHERE source = $1 AND source_patient_id = $2 AND at > $3",
            )
            .bind(source)
            .bind(id)
            .bind(&since)
            .fetch_one(&self.store.pool)
            .await?
            .get(0);
            if against > i64::from(self.config.enroll_record_attempts) {
                tracing::warn!(source = %source, "enrollment by demographics refused: too many attempts against one record");
                throttled = true;
            }
        }
        let family = fold(family);
        let matched = candidates.into_iter().find(|(_, _, d)| {
            d.birth_date.as_deref() == Some(birth_date.trim()) && !family.is_empty() && d.families.contains(&family)
        });
        let Some((source, source_patient_id, _)) = matched.filter(|_| !throttled) else {
            self.count_failure(account_id, now).await?;
            return Err(AccountError::VerificationFailed);
        };
        let link = self.link_owner(account_id, &source, &source_patient_id, "demographics", now).await?;
        sqlx::query("DELETE FROM enrollment_attempts WHERE attempt_id = $1")
            .bind(&attempt)
            .execute(&self.store.pool)
            .await?;
        Ok(link)
    }

    /// Links the account to the record an activation code was issued for, when the birth
    /// date matches that record. The code is spent by one conditional update, so of two
    /// uses at once only one links. A wrong birth date counts against the code (void after
    /// a few) and the account's lockout; an unknown, spent or expired code against the account.
    pub async fn enroll_with_code(
        &self,
        account_id: &str,
        code: &str,
        birth_date: &str,
        now: DateTime<Utc>,
    ) -> Result<PatientLink, AccountError> {
        if !self.email_verified(account_id).await? {
            return Err(AccountError::EmailNotVerified);
        }
        if self.is_locked(account_id, now).await? {
            return Err(AccountError::VerificationFailed);
        }
        let hash = self.code_hash(code);
        let at = now.to_rfc3339();
        let row = sqlx::query(
            "SELECT source, source_patient_id FROM activation_codes
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 AND failed_attempts < $3",
        )
        .bind(&hash)
        .bind(&at)
        .bind(CODE_ATTEMPTS)
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(row) = row else {
            self.count_failure(account_id, now).await?;
            return Err(AccountError::VerificationFailed);
        };
        let (source, source_patient_id): (String, String) = (row.get(0), row.get(1));
        let born = self.index.demographics_of(&source, &source_patient_id).await?.and_then(|d| d.birth_date);
        if born.as_deref() != Some(birth_date.trim()) {
            sqlx::query("UPDATE activation_codes SET failed_attempts = failed_attempts + 1 WHERE code_hash = $1")
                .bind(&hash)
                .execute(&self.store.pool)
                .await?;
            self.count_failure(account_id, now).await?;
            return Err(AccountError::VerificationFailed);
        }
        self.refuse_if_owned(account_id, &source, &source_patient_id, "activation-code", now).await?;
        let spent = sqlx::query(
            "UPDATE activation_codes SET used_at = $1, used_by = $2 WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(&at)
        .bind(account_id)
        .bind(&hash)
        .execute(&self.store.pool)
        .await?;
        if spent.rows_affected() == 0 {
            self.count_failure(account_id, now).await?;
            return Err(AccountError::VerificationFailed);
        }
        self.link_owner(account_id, &source, &source_patient_id, "activation-code", now).await
    }

    /// Links the account to its own record (`SELF`) after the details were checked, unless
    /// the record has an owner. Should another account become the owner between the check
    /// and the insert (two enrollments at once), the database's one-owner index refuses
    /// the insert and the attempt takes the owned record's path. The account is told by
    /// mail that its record was connected.
    async fn link_owner(
        &self,
        account_id: &str,
        source: &str,
        source_patient_id: &str,
        method: &str,
        now: DateTime<Utc>,
    ) -> Result<PatientLink, AccountError> {
        self.refuse_if_owned(account_id, source, source_patient_id, method, now).await?;
        let by = if method == "demographics" { "enrollment" } else { method };
        let link = match self.link(account_id, source, source_patient_id, "SELF", None, None, None, by).await {
            Err(AccountError::Store(StoreError::Query(e)))
                if e.as_database_error().is_some_and(sqlx::error::DatabaseError::is_unique_violation) =>
            {
                tracing::warn!(account = %account_id, method, "two enrollments into one record at once: this one lost");
                self.refuse_if_owned(account_id, source, source_patient_id, method, now).await?;
                // Not owned by another account: this account's own link won.
                self.links(account_id)
                    .await?
                    .into_iter()
                    .find(|l| l.source == source && l.source_patient_id == source_patient_id)
                    .ok_or(AccountError::VerificationFailed)?
            }
            other => other?,
        };
        self.notify(account_id, Notice::RecordConnected).await?;
        Ok(link)
    }

    /// Refuses (and queues for HIM review) linking `account_id` to a record of a person
    /// who already has an owner: a live `SELF` link from another account to any of the
    /// person's source records.
    async fn refuse_if_owned(
        &self,
        account_id: &str,
        source: &str,
        source_patient_id: &str,
        method: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let gateway_id = self.index.gateway_id_of(source, source_patient_id).await?;
        let link = match gateway_id.as_deref() {
            Some(g) => self.index.resolve(g).await?,
            None => None,
        };
        let members: Vec<(String, String)> = match link {
            Some(link) => link.members.into_iter().map(|m| (m.source, m.source_patient_id)).collect(),
            None => vec![(source.to_string(), source_patient_id.to_string())],
        };
        for (s, id) in &members {
            let owned = sqlx::query(
                "SELECT 1 FROM account_patients WHERE source = $1 AND source_patient_id = $2 AND relationship = 'SELF'
                 AND terminated_at IS NULL AND account_id <> $3 LIMIT 1",
            )
            .bind(s)
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?;
            if owned.is_some() {
                sqlx::query(
                    "INSERT INTO enrollment_reviews (id, account_id, source, source_patient_id, method, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(account_id)
                .bind(source)
                .bind(source_patient_id)
                .bind(method)
                .bind(now.to_rfc3339())
                .execute(&self.store.pool)
                .await?;
                tracing::warn!(account = %account_id, method, "enrollment into a record with an owner refused; queued for review");
                self.notify_owners(account_id, &members).await?;
                return Err(AccountError::RecordHasOwner {
                    patient_id: gateway_id.unwrap_or_else(|| format!("{source}/{source_patient_id}")),
                });
            }
        }
        Ok(())
    }

    /// Issues a one-time activation code for a patient record (`source/source-id`), valid
    /// for `valid_days` (the config's `activation_code_days` when `None`). Only its hash is kept.
    pub async fn issue_activation_code(
        &self,
        patient: &str,
        valid_days: Option<u32>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<ActivationCode, AccountError> {
        let (source, id) = patient
            .split_once('/')
            .ok_or_else(|| AccountError::Invalid(format!("`{patient}` is not source/source-id")))?;
        let deadline = tokio::time::Instant::now() + LOOKUP_DEADLINE;
        if self.index.member(source, id, deadline).await?.is_none() {
            return Err(AccountError::Invalid(format!("no patient record {source}/{id}")));
        }
        let days = valid_days.unwrap_or(self.config.activation_code_days);
        if !(1..=365).contains(&days) {
            return Err(AccountError::Invalid(format!("valid days {days}: give 1 to 365")));
        }
        if by.trim().is_empty() {
            return Err(AccountError::Invalid("say who issues the code (by)".into()));
        }
        let code = new_activation_code();
        let expires_at = (now + chrono::Duration::days(i64::from(days))).to_rfc3339();
        sqlx::query(
            "INSERT INTO activation_codes (code_hash, source, source_patient_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.code_hash(&code))
        .bind(source)
        .bind(id)
        .bind(by)
        .bind(now.to_rfc3339())
        .bind(&expires_at)
        .execute(&self.store.pool)
        .await?;
        Ok(ActivationCode { code, patient: format!("{source}/{id}"), expires_at })
    }

    /// Enrollments refused because the record had an owner, not yet resolved, oldest first.
    pub async fn enrollment_reviews(&self) -> Result<Vec<EnrollmentReview>, AccountError> {
        let rows = sqlx::query(
            "SELECT id, account_id, source, source_patient_id, method, created_at FROM enrollment_reviews
             WHERE resolved_at IS NULL ORDER BY created_at",
        )
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| EnrollmentReview {
                id: r.get(0),
                account_id: r.get(1),
                source: r.get(2),
                source_patient_id: r.get(3),
                method: r.get(4),
                created_at: r.get(5),
            })
            .collect())
    }

    /// Creates a link from an account to a patient record (`SELF`, or a proxy relationship
    /// granted by staff). An existing live link for the same account and record is returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn link(
        &self,
        account_id: &str,
        source: &str,
        source_patient_id: &str,
        relationship: &str,
        valid_from: Option<&str>,
        valid_until: Option<&str>,
        related_person: Option<&str>,
        by: &str,
    ) -> Result<PatientLink, AccountError> {
        let deadline = tokio::time::Instant::now() + LOOKUP_DEADLINE;
        if self.index.member(source, source_patient_id, deadline).await?.is_none() {
            return Err(AccountError::Invalid(format!("no patient record {source}/{source_patient_id}")));
        }
        let relationship = relationship.trim().to_uppercase();
        if !matches!(
            relationship.as_str(),
            "SELF" | "MTH" | "FTH" | "PRN" | "GUARD" | "CAREGIVER" | "NOK" | "SPS" | "FAMMEMB"
        ) {
            return Err(AccountError::Invalid(format!(
                "`{relationship}` is not a relationship (SELF, MTH, FTH, PRN, GUARD, CAREGIVER …)"
            )));
        }
        if let Some(existing) = self
            .links(account_id)
            .await?
            .into_iter()
            .find(|l| l.source == source && l.source_patient_id == source_patient_id)
        {
            return Ok(existing);
        }
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO account_patients (id, account_id, source, source_patient_id, relationship, valid_from, valid_until, related_person, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(account_id)
        .bind(source)
        .bind(source_patient_id)
        .bind(&relationship)
        .bind(valid_from)
        .bind(valid_until)
        .bind(related_person)
        .bind(by)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.store.pool)
        .await?;
        Ok(PatientLink {
            id,
            source: source.into(),
            source_patient_id: source_patient_id.into(),
            relationship,
            valid_until: valid_until.map(str::to_string),
            adult_granted: false,
            teen_assent: false,
        })
    }

    /// The live links of an account: its own record and those it is a proxy for.
    pub async fn links(&self, account_id: &str) -> Result<Vec<PatientLink>, AccountError> {
        let now = self.clock.now().to_rfc3339();
        let rows = sqlx::query(
            "SELECT id, source, source_patient_id, relationship, valid_until, adult_granted, teen_assent FROM account_patients
             WHERE account_id = $1 AND terminated_at IS NULL AND (valid_from IS NULL OR valid_from <= $2) AND (valid_until IS NULL OR valid_until > $2)
             ORDER BY created_at",
        )
        .bind(account_id)
        .bind(&now)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PatientLink {
                id: r.get(0),
                source: r.get(1),
                source_patient_id: r.get(2),
                relationship: r.get(3),
                valid_until: r.get(4),
                adult_granted: r.get::<i32, _>(5) != 0,
                teen_assent: r.get::<i32, _>(6) != 0,
            })
            .collect())
    }

    /// Ends an account's access to a patient record (every grant built on it stops working
    /// on the next request). Returns how many links were terminated.
    pub async fn terminate(&self, link_id: &str, reason: &str, by: &str) -> Result<u64, AccountError> {
        if reason.trim().is_empty() {
            return Err(AccountError::Invalid("give a reason (deceased, left the practice, revoked …)".into()));
        }
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query("UPDATE account_patients SET terminated_at = $1, termination_reason = $2 WHERE id = $3 AND terminated_at IS NULL")
            .bind(Utc::now().to_rfc3339())
            .bind(format!("{reason} (by {by})"))
            .bind(link_id)
            .execute(&mut *tx)
            .await?;
        super::revocation::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// Staff grant a local account proxy access to a patient record (`source/source-id`), with
/// the adult's grant or the minor's assent where they apply.
#[allow(clippy::too_many_arguments)]
pub async fn grant_proxy(
    accounts: &Accounts,
    username: &str,
    patient: &str,
    relationship: &str,
    valid_until: Option<&str>,
    related_person: Option<&str>,
    (adult_granted, teen_assent): (bool, bool),
    by: &str,
) -> Result<PatientLink, AccountError> {
    let account =
        accounts.id_of(username).await?.ok_or_else(|| AccountError::Invalid(format!("no account {username}")))?;
    let (source, id) =
        patient.split_once('/').ok_or_else(|| AccountError::Invalid(format!("`{patient}` is not source/source-id")))?;
    if relationship.eq_ignore_ascii_case("SELF") {
        return Err(AccountError::Invalid(
            "a proxy grant names a relationship other than SELF (patients enroll themselves)".into(),
        ));
    }
    if let Some(until) = valid_until {
        chrono::NaiveDate::parse_from_str(until, "%Y-%m-%d")
            .map_err(|_| AccountError::Invalid(format!("valid_until `{until}` is not YYYY-MM-DD")))?;
    }
    if by.trim().is_empty() {
        return Err(AccountError::Invalid("say who grants the access (by)".into()));
    }
    let link = accounts.link(&account, source, id, relationship, None, valid_until, related_person, by).await?;
    accounts.set_terms(&link.id, adult_granted, teen_assent).await?;
    Ok(link)
}
