//! Rate limits at the doors an attacker knocks on: `/login`, `/register`, `/enroll`,
//! `/token` and `/authorize`, each with its own token buckets (governor's GCRA) per client
//! IP address, per account (the user name signing in or registering, the account enrolling)
//! and per app (`client_id`). A refusal says how long to wait (`Retry-After`). The client IP
//! is the socket's peer; `X-Forwarded-For` is believed only when that peer is a configured
//! trusted proxy. It keeps counters only — never a password, a token or a whole request.

use crate::config::RateLimitConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// The endpoints that are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Login,
    Register,
    Enroll,
    Token,
    Authorize,
    /// Accepting a proxy invitation (the patient's birth date is asked).
    ProxyAccept,
    /// Sending a proxy invitation (a mail to an address the patient chooses).
    ProxyInvite,
}

impl Endpoint {
    /// The limited endpoint a request is for: the POSTs of the four forms and `/token`, and
    /// `/authorize` by any method.
    pub fn of(method: &str, path: &str) -> Option<Endpoint> {
        let endpoint = match path {
            "/login" => Endpoint::Login,
            "/register" => Endpoint::Register,
            "/enroll" => Endpoint::Enroll,
            "/token" => Endpoint::Token,
            "/proxy-invitations/accept" => Endpoint::ProxyAccept,
            "/account/proxies/invite" | "/api/account/proxies/invitations" => Endpoint::ProxyInvite,
            "/authorize" => return Some(Endpoint::Authorize),
            _ => return None,
        };
        (method == "POST").then_some(endpoint)
    }
}

/// Over the limit: try again in `retry_after` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests; try again in {retry_after} s")]
pub struct Limited {
    pub retry_after: u64,
}

type Limiter<K> = DefaultKeyedRateLimiter<(Endpoint, K)>;

pub struct Throttle {
    by_ip: Limiter<IpAddr>,
    by_account: Limiter<String>,
    by_client: Limiter<String>,
    trusted_proxies: Vec<IpAddr>,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let n = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n(per_minute)).allow_burst(n(burst))
}

fn check<K: Clone + std::hash::Hash + Eq>(limiter: &Limiter<K>, key: (Endpoint, K)) -> Result<(), Limited> {
    limiter.check_key(&key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Limited { retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
    })
}

impl Throttle {
    pub fn new(config: &RateLimitConfig) -> Throttle {
        Throttle {
            by_ip: RateLimiter::keyed(quota(config.per_ip_per_minute, config.per_ip_burst)),
            by_account: RateLimiter::keyed(quota(config.per_account_per_minute, config.per_account_burst)),
            by_client: RateLimiter::keyed(quota(config.per_client_per_minute, config.per_client_burst)),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy itself.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let hops = forwarded_for.unwrap_or("").split(',').rev().map(|h| h.trim().parse::<IpAddr>());
        for hop in hops {
            match hop {
                Ok(ip) if self.trusted_proxies.contains(&ip) => continue,
                Ok(ip) => return ip,
                Err(_) => break,
            }
        }
        peer
    }

    pub fn check_ip(&self, endpoint: Endpoint, ip: IpAddr) -> Result<(), Limited> {
        check(&self.by_ip, (endpoint, ip))
    }

    /// An account by its user name (case and surrounding space ignored) or id.
    pub fn check_account(&self, endpoint: Endpoint, account: &str) -> Result<(), Limited> {
        check(&self.by_account, (endpoint, account.trim().to_lowercase()))
    }

    pub fn check_client(&self, endpoint: Endpoint, client_id: &str) -> Result<(), Limited> {
        check(&self.by_client, (endpoint, client_id.to_string()))
    }

    /// Drops the buckets that are full again (they hold nothing worth keeping).
    pub fn forget_idle(&self) {
        for limiter in [&self.by_account, &self.by_client] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.by_ip.retain_recent();
        self.by_ip.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(proxies: &[&str]) -> Throttle {
        Throttle::new(&RateLimitConfig {
            per_ip_per_minute: 1,
            per_ip_burst: 2,
            per_account_per_minute: 1,
            per_account_burst: 1,
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..RateLimitConfig::default()
        })
    }

    #[test]
    fn each_endpoint_and_key_has_its_own_bucket() {
        let t = throttle(&[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(t.check_ip(Endpoint::Login, ip).is_ok() && t.check_ip(Endpoint::Login, ip).is_ok());
        let refused = t.check_ip(Endpoint::Login, ip).unwrap_err();
        assert!((1..=60).contains(&refused.retry_after), "{refused:?}");
        assert!(t.check_ip(Endpoint::Token, ip).is_ok(), "another endpoint");
        assert!(t.check_ip(Endpoint::Login, "192.0.2.2".parse().unwrap()).is_ok(), "another address");
        assert!(t.check_account(Endpoint::Login, "Ann@Example.org").is_ok());
        assert!(t.check_account(Endpoint::Login, " ann@example.org").is_err(), "same name, other case");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let t = throttle(&["10.0.0.1", "10.0.0.2"]);
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        let xff = Some("203.0.113.9, 192.0.2.5, 10.0.0.2");
        assert_eq!(t.client_ip(proxy, xff), "192.0.2.5".parse::<IpAddr>().unwrap(), "right-most untrusted hop");
        assert_eq!(t.client_ip(stranger, xff), stranger, "a stranger's header is ignored");
        assert_eq!(t.client_ip(proxy, None), proxy);
        assert_eq!(t.client_ip(proxy, Some("garbage")), proxy);
    }

    #[test]
    fn only_the_five_doors_are_limited() {
        assert_eq!(Endpoint::of("POST", "/login"), Some(Endpoint::Login));
        assert_eq!(Endpoint::of("GET", "/login"), None);
        assert_eq!(Endpoint::of("GET", "/authorize"), Some(Endpoint::Authorize));
        assert_eq!(Endpoint::of("POST", "/authorize/consent"), None);
        assert_eq!(Endpoint::of("POST", "/fhir/Patient"), None);
    }
}
