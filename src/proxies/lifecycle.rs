//! The lifecycle of proxy access: the patient's list of their proxies (end, renew), what
//! changes next for the records an account opens for someone else, and the sweep. The sweep
//! (every `proxies.sweep_every`, or by staff on demand) looks at every live proxy link:
//! within `proxies.notice_ahead` of a birthday at which the jurisdiction's band changes (12
//! by default) or of the age of majority, the proxy and the young person are told once
//! that access changes soon (the day itself only on the account page: a birthday in a mail
//! would give the birth date away); at the age of majority a parent's link ends and both are
//! told; an adult's proxy about to run out is announced to the patient, who may renew it.
//! Each mail goes once: what was told is kept per link (`proxy_milestones`) and the insert
//! that records it decides who sends it.

use super::{Proxies, ProxyError};
use crate::mail::{Audience, Ending, RecordNotice};
use crate::policy::PolicyConfig;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

/// The ages at which a proxy's access changes, from the jurisdiction in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeRules {
    /// Band boundaries below the age of majority (e.g. 12).
    pub changes: Vec<u32>,
    /// The age of majority (the end of the last band, e.g. 18).
    pub majority: u32,
    /// The zone "today" is in (the policy's).
    pub zone: FixedOffset,
}

impl AgeRules {
    pub fn from_policy(policy: &PolicyConfig, zone: FixedOffset) -> AgeRules {
        let (changes, majority) = match policy.jurisdiction() {
            Some(j) => {
                let majority = j.majority();
                (j.bands.iter().map(|b| b.to).filter(|to| *to > 0 && *to < majority).collect(), majority)
            }
            None => (Vec::new(), 18),
        };
        AgeRules { changes, majority, zone }
    }

    /// The next birthday (after `today`'s age) at which access changes: its day and the age.
    pub fn next_change(&self, birth: NaiveDate, today: NaiveDate) -> Option<(NaiveDate, u32)> {
        let age = u32::try_from(crate::fhir::time::age_on(birth, today)).unwrap_or(0);
        let next = self.changes.iter().copied().chain([self.majority]).filter(|a| *a > age).min()?;
        Some((birthday(birth, next), next))
    }
}

/// The day someone born on `birth` turns `age` (a 29 February birthday falls on 1 March in
/// other years, as ages are counted).
pub fn birthday(birth: NaiveDate, age: u32) -> NaiveDate {
    let year = birth.year() + i32::try_from(age).unwrap_or(0);
    NaiveDate::from_ymd_opt(year, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
        .unwrap_or(birth)
}

/// A proxy of the patient's record, as the patient sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyView {
    pub link_id: String,
    pub name: String,
    pub relationship: String,
    pub since: String,
    /// When the access ends unless renewed (an adult's proxy), RFC 3339.
    pub valid_until: Option<String>,
    /// Past `valid_until`: no access until renewed.
    pub expired: bool,
    /// The patient may renew it (a proxy the adult patient allowed).
    pub renewable: bool,
}

/// A change ahead for a record the account opens as a proxy, or for its own record's proxies.
#[derive(Debug, Clone, Serialize)]
pub struct Upcoming {
    pub link_id: String,
    /// The day access changes (`YYYY-MM-DD`).
    pub on: String,
    pub age: u32,
    /// `limited` (a parent sees less from then) or `ends`.
    pub change: String,
    /// `proxy` (the account opens it for someone) or `patient` (the account's own record).
    pub whose: String,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSwept {
    pub told_ahead: usize,
    pub ended_at_majority: usize,
    pub expiry_warnings: usize,
}

/// A live proxy link, as the sweep reads it.
struct ProxyLink {
    id: String,
    account_id: String,
    source: String,
    source_patient_id: String,
    valid_until: Option<String>,
    adult_granted: bool,
}

impl Proxies {
    /// The proxies of the account's own record (live or run out, not ended), oldest first.
    pub async fn proxies_of(&self, account_id: &str, now: DateTime<Utc>) -> Result<Vec<ProxyView>, ProxyError> {
        let own = self.own_record(account_id).await?;
        let at = now.to_rfc3339();
        let mut out = Vec::new();
        for (source, id) in self.members(&own.source, &own.source_patient_id).await? {
            let rows = sqlx::query(
                "SELECT p.id, a.display_name, p.relationship, p.created_at, p.valid_until, p.adult_granted
                 FROM account_patients p JOIN accounts a ON a.id = p.account_id
                 WHERE p.source = $1 AND p.source_patient_id = $2 AND p.relationship <> 'SELF' AND p.terminated_at IS NULL
                 ORDER BY p.created_at",
            )
            .bind(&source)
            .bind(&id)
            .fetch_all(&self.store.pool)
            .await?;
            out.extend(rows.into_iter().map(|r| {
                let valid_until: Option<String> = r.get(4);
                ProxyView {
                    link_id: r.get(0),
                    name: r.get(1),
                    relationship: r.get(2),
                    since: r.get(3),
                    expired: valid_until.as_deref().is_some_and(|u| u <= at.as_str()),
                    valid_until,
                    renewable: r.get::<i32, _>(5) != 0,
                }
            }));
        }
        Ok(out)
    }

    /// The patient ends one of their proxies: it stops working on the next request, and
    /// the proxy is told.
    pub async fn end(&self, account_id: &str, link_id: &str, now: DateTime<Utc>) -> Result<(), ProxyError> {
        if !self.proxies_of(account_id, now).await?.iter().any(|p| p.link_id == link_id) {
            return Err(ProxyError::NotFound);
        }
        let proxy: Option<String> = sqlx::query("SELECT account_id FROM account_patients WHERE id = $1")
            .bind(link_id)
            .fetch_optional(&self.store.pool)
            .await?
            .map(|r| r.get(0));
        self.terminate(link_id, "ended by the patient", "the patient").await?;
        if let Some(proxy) = proxy {
            self.notices
                .tell(&proxy, RecordNotice::AccessEnded { to: Audience::Proxy, why: Ending::ByPatient })
                .await?;
        }
        Ok(())
    }

    /// The patient renews a proxy they allowed: it lasts `proxies.adult_proxy_for` from now.
    /// Returns the new end.
    pub async fn renew(&self, account_id: &str, link_id: &str, now: DateTime<Utc>) -> Result<String, ProxyError> {
        let found = self.proxies_of(account_id, now).await?.into_iter().find(|p| p.link_id == link_id);
        match found {
            None => return Err(ProxyError::NotFound),
            Some(p) if !p.renewable => return Err(ProxyError::Invalid(crate::i18n::t("proxies-problem-him-given"))),
            Some(_) => {}
        }
        let until = self.adult_until(now);
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE account_patients SET valid_until = $1 WHERE id = $2 AND terminated_at IS NULL")
            .bind(&until)
            .bind(link_id)
            .execute(&mut *tx)
            .await?;
        crate::auth::revocation::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(until)
    }

    /// Changes ahead for the account: for each record it opens as a parent or guardian,
    /// and for its own record's parents, the next birthday that changes access.
    pub async fn upcoming(&self, account_id: &str, now: DateTime<Utc>) -> Result<Vec<Upcoming>, ProxyError> {
        let today = now.with_timezone(&self.ages.zone).date_naive();
        let mut out = Vec::new();
        for link in self.accounts.links(account_id).await? {
            let whose = if link.relationship == "SELF" { "patient" } else { "proxy" };
            if link.adult_granted {
                continue;
            }
            let Some(birth) = self.birth_date(&link.source, &link.source_patient_id).await? else { continue };
            let Some((on, age)) = self.ages.next_change(birth, today) else { continue };
            if whose == "patient" && !self.has_parent_proxy(&link.source, &link.source_patient_id).await? {
                continue;
            }
            let change = if age >= self.ages.majority { "ends" } else { "limited" };
            out.push(Upcoming {
                link_id: link.id,
                on: on.format("%Y-%m-%d").to_string(),
                age,
                change: change.into(),
                whose: whose.into(),
            });
        }
        Ok(out)
    }

    async fn has_parent_proxy(&self, source: &str, source_patient_id: &str) -> Result<bool, ProxyError> {
        for (s, id) in self.members(source, source_patient_id).await? {
            let found = sqlx::query(
                "SELECT 1 FROM account_patients WHERE source = $1 AND source_patient_id = $2 AND relationship <> 'SELF'
                 AND adult_granted = 0 AND terminated_at IS NULL LIMIT 1",
            )
            .bind(&s)
            .bind(&id)
            .fetch_optional(&self.store.pool)
            .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The accounts with a live `SELF` link to the person.
    async fn owners(&self, source: &str, source_patient_id: &str) -> Result<Vec<(String, String)>, ProxyError> {
        let mut out = Vec::new();
        for (s, id) in self.members(source, source_patient_id).await? {
            let rows = sqlx::query(
                "SELECT id, account_id FROM account_patients WHERE source = $1 AND source_patient_id = $2
                 AND relationship = 'SELF' AND terminated_at IS NULL",
            )
            .bind(&s)
            .bind(&id)
            .fetch_all(&self.store.pool)
            .await?;
            out.extend(rows.into_iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))));
        }
        Ok(out)
    }

    /// Tells the owners of the person's record (unless they turned it off) that someone
    /// can now see it (a proxy granted by staff; an accepted invitation tells its patient).
    pub async fn tell_proxy_added(&self, source: &str, source_patient_id: &str) -> Result<usize, ProxyError> {
        let mut told = 0;
        for (_, owner) in self.owners(source, source_patient_id).await? {
            if self.notices.notify(&owner, crate::notices::NoticeKind::ProxyAdded).await? {
                told += 1;
            }
        }
        Ok(told)
    }

    /// Records that `milestone` was told for `link_id`; true when this call recorded it
    /// (and so sends the mail).
    async fn first_time(&self, link_id: &str, milestone: &str, now: DateTime<Utc>) -> Result<bool, ProxyError> {
        let done = sqlx::query(
            "INSERT INTO proxy_milestones (link_id, milestone, sent_at) VALUES ($1, $2, $3)
             ON CONFLICT (link_id, milestone) DO NOTHING",
        )
        .bind(link_id)
        .bind(milestone)
        .bind(now.to_rfc3339())
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One lifecycle sweep as of `now`.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<LifecycleSwept, ProxyError> {
        let at = now.to_rfc3339();
        let rows = sqlx::query(
            "SELECT id, account_id, source, source_patient_id, valid_until, adult_granted FROM account_patients
             WHERE relationship <> 'SELF' AND terminated_at IS NULL ORDER BY created_at",
        )
        .fetch_all(&self.store.pool)
        .await?;
        let links: Vec<ProxyLink> = rows
            .into_iter()
            .map(|r| ProxyLink {
                id: r.get(0),
                account_id: r.get(1),
                source: r.get(2),
                source_patient_id: r.get(3),
                valid_until: r.get(4),
                adult_granted: r.get::<i32, _>(5) != 0,
            })
            .collect();
        let today = now.with_timezone(&self.ages.zone).date_naive();
        let lead = chrono::Duration::days(i64::try_from(self.lead_days()).unwrap_or(0));
        let mut swept = LifecycleSwept::default();
        for link in links {
            if link.adult_granted {
                let ends = link.valid_until.as_deref().filter(|u| *u > at.as_str());
                let soon = (now + lead).to_rfc3339();
                if let Some(until) = ends.filter(|u| *u <= soon.as_str()) {
                    if self.first_time(&link.id, &format!("expires:{until}"), now).await? {
                        for (_, owner) in self.owners(&link.source, &link.source_patient_id).await? {
                            let notice = RecordNotice::ProxyExpiresSoon { within_days: self.lead_days() };
                            self.notices.tell(&owner, notice).await?;
                        }
                        swept.expiry_warnings += 1;
                    }
                }
                continue;
            }
            let Some(birth) = self.birth_date(&link.source, &link.source_patient_id).await? else { continue };
            let age = crate::fhir::time::age_on(birth, today);
            if age >= i32::try_from(self.ages.majority).unwrap_or(i32::MAX) {
                self.end_at_majority(&link, now).await?;
                swept.ended_at_majority += 1;
                continue;
            }
            let Some((on, turning)) = self.ages.next_change(birth, today) else { continue };
            if on - today > lead {
                continue;
            }
            let milestone = format!("ahead:{turning}");
            if self.first_time(&link.id, &milestone, now).await? {
                let within_days = self.lead_days();
                self.notices
                    .tell(&link.account_id, RecordNotice::AccessChangesSoon { to: Audience::Proxy, within_days })
                    .await?;
                swept.told_ahead += 1;
            }
            for (self_link, owner) in self.owners(&link.source, &link.source_patient_id).await? {
                if self.first_time(&self_link, &milestone, now).await? {
                    let within_days = self.lead_days();
                    self.notices
                        .tell(&owner, RecordNotice::AccessChangesSoon { to: Audience::Patient, within_days })
                        .await?;
                }
            }
        }
        Ok(swept)
    }

    /// A parent's or guardian's link ends at the age of majority; they and the now adult
    /// patient are told (the patient once).
    async fn end_at_majority(&self, link: &ProxyLink, now: DateTime<Utc>) -> Result<(), ProxyError> {
        let reason = format!("the patient turned {}", self.ages.majority);
        if self.terminate(&link.id, &reason, "the proxy lifecycle").await? == 0 {
            return Ok(());
        }
        tracing::info!(link = %link.id, "proxy access ended at the age of majority");
        self.notices
            .tell(&link.account_id, RecordNotice::AccessEnded { to: Audience::Proxy, why: Ending::Adult })
            .await?;
        for (self_link, owner) in self.owners(&link.source, &link.source_patient_id).await? {
            if self.first_time(&self_link, &format!("ended:{}", self.ages.majority), now).await? {
                self.notices
                    .tell(&owner, RecordNotice::AccessEnded { to: Audience::Patient, why: Ending::Adult })
                    .await?;
            }
        }
        Ok(())
    }

    /// Sweeps every `proxies.sweep_every` until the task is aborted.
    pub fn start(self: std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = self.config.sweep_every.std();
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.sweep(self.clock.now()).await {
                    Ok(s) => tracing::debug!(?s, "proxy lifecycle sweep"),
                    Err(e) => tracing::warn!(error = %e, "proxy lifecycle sweep failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AgeRules {
        AgeRules { changes: vec![12], majority: 18, zone: FixedOffset::east_opt(0).unwrap() }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_next_change_is_the_twelfth_then_the_eighteenth_birthday() {
        let r = rules();
        assert_eq!(r.next_change(day("2015-05-03"), day("2026-12-03")), Some((day("2027-05-03"), 12)));
        // On the twelfth birthday itself the next change is majority.
        assert_eq!(r.next_change(day("2014-12-03"), day("2026-12-03")), Some((day("2032-12-03"), 18)));
        assert_eq!(r.next_change(day("2014-12-03"), day("2026-12-02")), Some((day("2026-12-03"), 12)));
        assert_eq!(r.next_change(day("2008-12-03"), day("2026-12-03")), None, "an adult");
    }

    #[test]
    fn a_leap_day_birthday_falls_on_the_first_of_march() {
        assert_eq!(birthday(day("2012-02-29"), 12), day("2024-02-29"));
        assert_eq!(birthday(day("2012-02-29"), 18), day("2030-03-01"));
        // As ages are counted: 17 on 28 February, 18 on 1 March.
        assert_eq!(crate::fhir::time::age_on(day("2012-02-29"), day("2030-02-28")), 17);
        assert_eq!(crate::fhir::time::age_on(day("2012-02-29"), day("2030-03-01")), 18);
    }

    #[test]
    fn the_shipped_policy_changes_access_at_twelve_and_ends_it_at_eighteen() {
        let r = AgeRules::from_policy(&PolicyConfig::embedded(), FixedOffset::east_opt(0).unwrap());
        assert_eq!((r.changes.clone(), r.majority), (vec![12], 18), "{r:?}");
    }
}
