//! The `[proxies]` and `[notices]` sections: how long an adult's proxy access lasts before
//! the patient renews it, how long an invitation link works, how far ahead people are told
//! that access changes (a child turning 12 or 18, an adult's proxy running out), and how
//! often the lifecycle and new-results sweeps run. Types, defaults and checks only.

use super::Duration;
use serde::Deserialize;

const DAY: u64 = 24 * 3600;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxiesConfig {
    /// How long a proxy invited by an adult patient may see the record before the patient
    /// must renew it (`365d`).
    #[serde(default = "default_adult_for")]
    pub adult_proxy_for: Duration,
    /// How long an invitation's link works (`14d`).
    #[serde(default = "default_invitation_valid")]
    pub invitation_valid: Duration,
    /// How long before a change of access (a birthday that changes it, an adult's proxy
    /// running out) the people concerned are told (`30d`).
    #[serde(default = "default_notice_ahead")]
    pub notice_ahead: Duration,
    /// How often the lifecycle sweep runs (`1h`).
    #[serde(default = "default_sweep")]
    pub sweep_every: Duration,
}

impl Default for ProxiesConfig {
    fn default() -> Self {
        ProxiesConfig {
            adult_proxy_for: default_adult_for(),
            invitation_valid: default_invitation_valid(),
            notice_ahead: default_notice_ahead(),
            sweep_every: default_sweep(),
        }
    }
}

fn default_adult_for() -> Duration {
    Duration::from_secs(365 * DAY)
}
fn default_invitation_valid() -> Duration {
    Duration::from_secs(14 * DAY)
}
fn default_notice_ahead() -> Duration {
    Duration::from_secs(30 * DAY)
}
fn default_sweep() -> Duration {
    Duration::from_secs(3600)
}

impl ProxiesConfig {
    /// Checks what the section says on its own; errors name the key under `proxies.`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let at_least = |key: &str, d: Duration, min: u64| {
            if d.std().as_secs() < min {
                Err((format!("proxies.{key}"), format!("{:?} is too short", d.std())))
            } else {
                Ok(())
            }
        };
        at_least("adult_proxy_for", self.adult_proxy_for, DAY)?;
        at_least("invitation_valid", self.invitation_valid, 3600)?;
        at_least("sweep_every", self.sweep_every, 1)?;
        if self.notice_ahead >= self.adult_proxy_for {
            return Err(("proxies.notice_ahead".into(), "must be shorter than proxies.adult_proxy_for".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesConfig {
    /// How often each enrolled record link is compared with the results it was told about
    /// (`15m`).
    #[serde(default = "default_results_sweep")]
    pub results_sweep_every: Duration,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig { results_sweep_every: default_results_sweep() }
    }
}

fn default_results_sweep() -> Duration {
    Duration::from_secs(15 * 60)
}

impl NoticesConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.results_sweep_every.is_zero() {
            return Err(("notices.results_sweep_every".into(), "must be more than 0".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_and_impossible_periods_are_refused_with_their_key() {
        assert!(ProxiesConfig::default().validate().is_ok());
        assert_eq!(ProxiesConfig::default().adult_proxy_for.std().as_secs(), 365 * DAY);
        let short = ProxiesConfig { adult_proxy_for: Duration::from_secs(3600), ..ProxiesConfig::default() };
        assert_eq!(short.validate().unwrap_err().0, "proxies.adult_proxy_for");
        let late = ProxiesConfig { notice_ahead: Duration::from_secs(400 * DAY), ..ProxiesConfig::default() };
        assert_eq!(late.validate().unwrap_err().0, "proxies.notice_ahead");
        let never = NoticesConfig { results_sweep_every: Duration::from_secs(0) };
        assert_eq!(never.validate().unwrap_err().0, "notices.results_sweep_every");
        let parsed: ProxiesConfig = toml::from_str("adult_proxy_for = \"90d\"").unwrap();
        assert_eq!(parsed.adult_proxy_for.std().as_secs(), 90 * DAY);
        assert!(toml::from_str::<ProxiesConfig>("adult_for = \"90d\"").is_err(), "unknown keys are refused");
    }
}
