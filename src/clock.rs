//! The gateway's clock: what "now" is for everything whose answer turns on the day — the
//! proxy lifecycle sweep, a proxy's age-band decisions (a parent sees less from the child's
//! twelfth birthday and nothing from the eighteenth), the account page's coming changes,
//! invitations' expiry and an adult's proxy's renewal period.
//!
//! In a deployment it is always the system clock: nothing in the config or the HTTP API can
//! set it. A program that builds the app in-process (the integration tests) may hand
//! [`crate::App::build_with_clock`] a [`Clock::set_at`] clock and move it, so that a
//! birthday can be tested on its very day. It never goes back on its own and never reads
//! anything but the system time or the instant it was set to.

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// The system clock, or a clock set by the program that built the app (cheap to clone;
/// clones of a set clock move together).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock.
    set: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock (what every deployment runs on).
    pub fn system() -> Clock {
        Clock { set: None }
    }

    /// A clock standing at `at` until moved with [`Clock::set`] or [`Clock::advance`].
    pub fn set_at(at: DateTime<Utc>) -> Clock {
        Clock { set: Some(Arc::new(Mutex::new(at))) }
    }

    /// Now, by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.set {
            None => Utc::now(),
            Some(at) => *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    /// Whether this is the system clock.
    pub fn is_system(&self) -> bool {
        self.set.is_none()
    }

    /// Moves a set clock to `at` (forward or back). The system clock cannot be moved: false.
    pub fn set(&self, at: DateTime<Utc>) -> bool {
        match &self.set {
            None => false,
            Some(held) => {
                *held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
                true
            }
        }
    }

    /// Moves a set clock on by `by`; false for the system clock.
    pub fn advance(&self, by: Duration) -> bool {
        self.set(self.now() + by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_moves_only_when_moved_and_its_clones_move_with_it() {
        let at: DateTime<Utc> = "2026-06-14T12:00:00Z".parse().unwrap();
        let clock = Clock::set_at(at);
        let other = clock.clone();
        assert_eq!(clock.now(), at);
        assert!(clock.advance(Duration::days(1)));
        assert_eq!(other.now(), at + Duration::days(1));
        assert!(other.set(at));
        assert_eq!(clock.now(), at);
    }

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        let before = Utc::now();
        assert!(!clock.set("2000-01-01T00:00:00Z".parse().unwrap()));
        assert!(!clock.advance(Duration::days(3650)));
        assert!(clock.is_system() && clock.now() >= before && Clock::default().is_system());
    }
}
