//! Share links (SMART Health Links, issue 16 part 1): a patient, or a proxy within what the
//! proxy may see, makes a link to a snapshot of chosen sections of the record as the reader
//! released it to them at that moment; anyone holding the link (and its passcode, when it
//! has one) opens it until it expires or is revoked. The snapshot is stored only as a JWE
//! under the link's own key, which lives in the `shlink:/` alone; the store keeps hashes of
//! the manifest token and the passcode. Every opening is in the access log (role `share
//! link`, action `share-view`, actor `share-link/{id}`, purpose the link's label) before
//! anything goes out; wrong passcodes are counted and void the link at the limit; floods are
//! refused per client address. It never reads patient data except through the reader, and
//! never logs a key, a token, a passcode or the snapshot.

pub mod jwe;
pub mod links;
pub mod payload;
pub mod snapshot;

use crate::audit::{AuditEntry, AuditLog};
use crate::auth::accounts::Accounts;
use crate::auth::hashing::Hasher;
use crate::auth::Access;
use crate::i18n::{t, tr};
use crate::policy::Role;
use crate::read::{ReadError, Reader, Trail, Use};
use argon2::password_hash::{rand_core::OsRng as SaltRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use links::{at, LinkRow, Links, NewLink};
use payload::Payload;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Wrong passcodes a link takes before it is void.
pub const PASSCODE_ATTEMPTS: i64 = 10;
/// The longest a link may live.
pub const MAX_LIFETIME_DAYS: i64 = 366;
/// The media type of the one file of a link.
pub const CONTENT_TYPE: &str = "application/fhir+json";
/// How long a file address given in a manifest (`location`) works.
const TICKET_MINUTES: i64 = 10;
/// Manifest and file requests per client address: a burst, then per minute.
const OPENS_BURST: u32 = 20;
const OPENS_PER_MINUTE: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sections(#[from] snapshot::SnapshotError),
    /// Only a patient or a proxy, signed in or through an app, shares a record.
    #[error("only a patient or a person with access to the record can share it")]
    NotSharer,
    /// No such link, or it expired, was revoked or is void: the same answer for each.
    #[error("this share link is not valid (it may have expired or been revoked)")]
    Gone,
    #[error("the passcode is not right")]
    Passcode { remaining: i64 },
    #[error("too many attempts; try again in {retry_after} s")]
    TooMany { retry_after: u64 },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the gateway's store is unavailable")]
    Store(#[from] crate::store::StoreError),
    #[error("the share link could not be made")]
    Seal,
    /// The accounts' record links could not be read (whether the maker's access is live).
    #[error("the accounts store is unavailable")]
    Accounts,
}

/// What a person asks to share.
#[derive(Debug, Clone)]
pub struct ShareRequest {
    pub sections: Vec<String>,
    pub label: String,
    pub passcode: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A link just made: the only time its `shlink:/` (and key) exists outside the holder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    pub id: String,
    pub shlink: String,
    pub viewer_link: String,
    #[serde(skip)]
    pub qr_svg: Option<String>,
    pub label: String,
    pub sections: Vec<String>,
    pub items: usize,
    pub expires_at: String,
    pub flag: String,
}

/// A link opened by its holder: the row (its JWE) after the opening was logged and counted.
pub struct Opened {
    pub link: LinkRow,
}

pub struct Shares {
    links: Links,
    audit: AuditLog,
    accounts: Arc<Accounts>,
    hasher: Hasher,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// The gateway's public origin (manifest and viewer URLs).
    origin: String,
    fhir_base: String,
    /// Tells the link's maker that it was opened (no content, at most once a day per link).
    notices: crate::notices::Notices,
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The account an actor is (`account:{id}`, or an app acting for it).
fn account_of(actor: &str) -> Option<&str> {
    actor.rsplit_once("account:").map(|(_, id)| id).filter(|id| !id.is_empty())
}

/// A request's label, passcode and expiry, checked.
fn check(req: &ShareRequest, now: DateTime<Utc>) -> Result<(), ShareError> {
    let label = req.label.trim();
    if label.is_empty() || label.chars().count() > 80 || label.chars().any(char::is_control) {
        return Err(ShareError::Invalid(t("share-problem-label")));
    }
    if let Some(p) = &req.passcode {
        if p.chars().count() < 4 || p.chars().count() > 64 {
            return Err(ShareError::Invalid(t("share-problem-passcode")));
        }
    }
    if req.expires_at <= now + Duration::minutes(1) {
        return Err(ShareError::Invalid(t("share-problem-past")));
    }
    if req.expires_at > now + Duration::days(MAX_LIFETIME_DAYS) {
        return Err(ShareError::Invalid(tr("share-problem-too-long", &[("days", MAX_LIFETIME_DAYS.into())])));
    }
    Ok(())
}

impl Shares {
    /// `origin`: the gateway's public origin (manifest and viewer URLs); `fhir_base`: its
    /// FHIR base URL (the snapshot's `fullUrl`s).
    pub fn new(
        store: crate::store::Store,
        audit: AuditLog,
        accounts: Arc<Accounts>,
        origin: &str,
        fhir_base: &str,
        notices: crate::notices::Notices,
    ) -> Shares {
        let n = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        Shares {
            links: Links::new(store),
            audit,
            hasher: accounts.hasher(),
            accounts,
            limiter: RateLimiter::keyed(Quota::per_minute(n(OPENS_PER_MINUTE)).allow_burst(n(OPENS_BURST))),
            origin: origin.trim_end_matches('/').to_string(),
            fhir_base: fhir_base.to_string(),
            notices,
        }
    }

    /// The page a person without an app opens a link on.
    pub fn viewer_url(&self) -> String {
        format!("{}/share", self.origin)
    }

    /// The manifest token of a manifest URL of this gateway.
    pub fn token_of(&self, manifest_url: &str) -> Option<String> {
        let rest = manifest_url.strip_prefix(&format!("{}/shl/", self.origin))?;
        (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
    }

    /// Makes a link of `access`'s own record (the snapshot is what the reader releases to
    /// that viewer now; taking it is logged as a `share` access).
    pub async fn create(
        &self,
        reader: &Reader,
        access: &Access,
        trail: &Trail,
        req: &ShareRequest,
        now: DateTime<Utc>,
    ) -> Result<Created, ShareError> {
        let sharer = matches!(access.viewer.role, Role::Patient | Role::Proxy { .. });
        let (Some(account), Some(record_link), true) =
            (account_of(&access.viewer.actor), access.basis.link.as_deref(), sharer)
        else {
            return Err(ShareError::NotSharer);
        };
        check(req, now)?;
        let sections = snapshot::sections(&req.sections)?;
        let record = reader.own_record(access, trail, Use::Share).await?;
        let chosen = snapshot::select(record.resources(), &sections);
        let items = chosen.len();
        let bundle = snapshot::bundle(chosen, &self.fhir_base, &at(now));
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let jwe = jwe::encrypt(&key, CONTENT_TYPE, bundle.to_string().as_bytes()).map_err(|_| ShareError::Seal)?;
        let passcode_hash = match req.passcode.clone() {
            Some(p) => Some(
                self.hasher
                    .run(move || {
                        let salt = SaltString::generate(&mut SaltRng);
                        Argon2::default().hash_password(p.as_bytes(), &salt).map(|h| h.to_string())
                    })
                    .await
                    .map_err(|_| ShareError::TooMany { retry_after: crate::auth::hashing::Busy::RETRY_AFTER_SECS })?
                    .map_err(|_| ShareError::Seal)?,
            ),
            None => None,
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let token = random_token();
        let label = req.label.trim().to_string();
        self.links
            .insert(&NewLink {
                id: &id,
                manifest_hash: &sha256(&token),
                patient_id: record.patient_id(),
                created_by: &access.viewer.actor,
                account_id: account,
                record_link,
                label: &label,
                sections: &sections,
                items: i64::try_from(items).unwrap_or(i64::MAX),
                passcode_hash: passcode_hash.as_deref(),
                created_at: &at(now),
                expires_at: &at(req.expires_at),
                jwe: &jwe,
            })
            .await?;
        let long_term = req.expires_at - now > Duration::days(1);
        let flag = format!("{}{}", if long_term { "L" } else { "" }, if passcode_hash.is_some() { "P" } else { "" });
        let payload = Payload {
            url: format!("{}/shl/{token}", self.origin),
            key: URL_SAFE_NO_PAD.encode(key.as_ref()),
            exp: Some(req.expires_at.timestamp()),
            flag: (!flag.is_empty()).then(|| flag.clone()),
            label: Some(label.clone()),
            v: Some(1),
        };
        let viewer_link = payload.viewer_link(&self.viewer_url());
        Ok(Created {
            id,
            shlink: payload.link(),
            qr_svg: payload::qr_svg(&viewer_link),
            viewer_link,
            label,
            sections: sections.iter().map(|s| (*s).to_string()).collect(),
            items,
            expires_at: at(req.expires_at),
            flag,
        })
    }

    /// The links made through `record_link`, newest first.
    pub async fn list(&self, record_link: &str) -> Result<Vec<LinkRow>, ShareError> {
        Ok(self.links.of_record_link(record_link).await?)
    }

    /// Revokes link `id` made through `record_link`; [`ShareError::Gone`] when there is no
    /// such live link.
    pub async fn revoke(&self, record_link: &str, id: &str, now: DateTime<Utc>) -> Result<(), ShareError> {
        if self.links.revoke(id, record_link, &at(now)).await? {
            Ok(())
        } else {
            Err(ShareError::Gone)
        }
    }

    /// Refuses a client address over its rate of openings.
    fn admit(&self, ip: IpAddr) -> Result<(), ShareError> {
        use governor::clock::{Clock, DefaultClock};
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ShareError::TooMany { retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        })
    }

    /// The link, when it can be opened now: not expired, revoked or void, and the access
    /// it was made through still live.
    async fn live(&self, link: Option<LinkRow>, now: DateTime<Utc>) -> Result<LinkRow, ShareError> {
        let link = link.ok_or(ShareError::Gone)?;
        if link.revoked_at.is_some() || link.expires_at <= at(now) || link.failed_attempts >= PASSCODE_ATTEMPTS {
            return Err(ShareError::Gone);
        }
        let access = self.accounts.links(&link.account_id).await.map_err(|e| {
            tracing::error!(error = %e, "record links unavailable while opening a share link");
            ShareError::Accounts
        })?;
        if !access.iter().any(|l| l.id == link.record_link) {
            return Err(ShareError::Gone);
        }
        Ok(link)
    }

    /// Writes the access-log entry of an opening of `link` (before anything goes out).
    async fn log(&self, link: &LinkRow, recipient: &str, outcome: &str, from: IpAddr) -> Result<(), ShareError> {
        let recipient: String = recipient.chars().filter(|c| !c.is_control()).take(80).collect();
        let what = format!(
            "/shl/{}?recipient={}",
            link.id,
            percent_encoding::utf8_percent_encode(&recipient, percent_encoding::NON_ALPHANUMERIC)
        );
        let entry = AuditEntry {
            actor: format!("share-link/{}", link.id),
            role: "share link".into(),
            patient_id: Some(link.patient_id.clone()),
            action: "share-view".into(),
            what,
            purpose: Some(link.label.clone()),
            outcome: outcome.into(),
            source_ip: Some(from.to_string()),
        };
        self.audit.record(&entry).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, "audit log write failed; the share link is not opened");
            ShareError::Store(e)
        })
    }

    /// The manifest request (`POST` to the manifest URL): checks the link and its passcode,
    /// logs and counts the view, and hands over the link.
    pub async fn open(
        &self,
        token: &str,
        recipient: &str,
        passcode: Option<&str>,
        from: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Opened, ShareError> {
        self.admit(from)?;
        let recipient = recipient.trim();
        if recipient.is_empty() || recipient.len() > 512 {
            return Err(ShareError::Invalid(t("share-problem-recipient")));
        }
        if token.len() > 128 || passcode.is_some_and(|p| p.len() > 256) {
            return Err(ShareError::Gone);
        }
        let link = self.live(self.links.by_manifest(&sha256(token)).await?, now).await?;
        if let Some(hash) = link.passcode_hash.clone() {
            let Some(given) = passcode.map(str::to_string) else {
                return Err(ShareError::Passcode { remaining: PASSCODE_ATTEMPTS - link.failed_attempts });
            };
            let used = self.links.reserve_attempt(&link.id, PASSCODE_ATTEMPTS).await?.ok_or(ShareError::Gone)?;
            let verdict = self
                .hasher
                .run(move || {
                    PasswordHash::new(&hash)
                        .is_ok_and(|h| Argon2::default().verify_password(given.as_bytes(), &h).is_ok())
                })
                .await;
            match verdict {
                Ok(true) => self.links.release_attempt(&link.id).await?,
                Ok(false) => {
                    self.log(&link, recipient, "denied", from).await?;
                    return Err(ShareError::Passcode { remaining: (PASSCODE_ATTEMPTS - used).max(0) });
                }
                Err(_) => {
                    self.links.release_attempt(&link.id).await?;
                    return Err(ShareError::TooMany { retry_after: crate::auth::hashing::Busy::RETRY_AFTER_SECS });
                }
            }
        }
        self.log(&link, recipient, "success", from).await?;
        self.links.count_view(&link.id, &at(now)).await?;
        self.tell_maker(&link, now).await;
        Ok(Opened { link })
    }

    /// Tells the link's maker it was opened, unless it already was in the last day (so a
    /// link opened often cannot flood the maker's mail). A notice that cannot be sent never
    /// stops the opening.
    async fn tell_maker(&self, link: &LinkRow, now: DateTime<Utc>) {
        let day_ago = at(now - Duration::days(1));
        if link.last_viewed_at.as_deref().is_some_and(|last| last > day_ago.as_str()) {
            return;
        }
        if let Err(e) = self.notices.share_link_opened(&link.account_id).await {
            tracing::warn!(error = %e, "the share link's maker could not be told of its opening");
        }
    }

    /// A short-lived address of an opened link's file (the manifest's `location`).
    pub async fn file_location(&self, link: &LinkRow, now: DateTime<Utc>) -> Result<String, ShareError> {
        let ticket = random_token();
        let until = now + Duration::minutes(TICKET_MINUTES);
        self.links.add_ticket(&sha256(&ticket), &link.id, &at(now), &at(until)).await?;
        Ok(format!("{}/shl/file/{ticket}", self.origin))
    }

    /// The file at a `location` address, while its ticket and its link are live; the fetch
    /// is logged like the manifest request.
    pub async fn file(&self, ticket: &str, from: IpAddr, now: DateTime<Utc>) -> Result<String, ShareError> {
        self.admit(from)?;
        if ticket.len() > 128 {
            return Err(ShareError::Gone);
        }
        let id = self.links.ticket(&sha256(ticket), &at(now)).await?.ok_or(ShareError::Gone)?;
        let link = self.live(self.links.by_id(&id).await?, now).await?;
        self.log(&link, "file address from the manifest", "success", from).await?;
        Ok(link.jwe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_behind_actors() {
        assert_eq!(account_of("account:abc"), Some("abc"));
        assert_eq!(account_of("app:growth:account:abc"), Some("abc"));
        assert_eq!(account_of("dev-token:staff"), None);
        assert_eq!(account_of("client:hie"), None);
    }

    #[test]
    fn labels_passcodes_and_expiry_are_checked() {
        let now = Utc::now();
        let ok = ShareRequest {
            sections: vec!["allergies".into()],
            label: "For school".into(),
            passcode: Some("1234".into()),
            expires_at: now + Duration::days(30),
        };
        assert!(check(&ok, now).is_ok());
        for bad in [
            ShareRequest { label: " ".into(), ..ok.clone() },
            ShareRequest { label: "x".repeat(81), ..ok.clone() },
            ShareRequest { passcode: Some("12".into()), ..ok.clone() },
            ShareRequest { expires_at: now - Duration::hours(1), ..ok.clone() },
            ShareRequest { expires_at: now + Duration::days(400), ..ok.clone() },
        ] {
            assert!(matches!(check(&bad, now), Err(ShareError::Invalid(_))), "{bad:?}");
        }
    }
}
