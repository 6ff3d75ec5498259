//! A circuit breaker per source: after `threshold` consecutive failures the source is not
//! called for `cooldown`; then one probe call is let through, and its outcome closes the
//! circuit or opens it again. It only counts; it never calls anything itself.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    /// Never left half-updated (no call inside the lock can panic), so a poisoned lock's
    /// state is still good and is used as it is.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

/// What the breaker says about calling now.
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    /// Call normally.
    Closed,
    /// The cooldown passed: this call is the probe.
    Probe,
    /// Do not call.
    Open,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker { threshold: threshold.max(1), cooldown, state: Mutex::new(State::default()) }
    }

    pub fn permit(&self) -> Permit {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match s.open_until {
            None => Permit::Closed,
            Some(until) if Instant::now() < until => Permit::Open,
            Some(_) if s.probe_in_flight => Permit::Open,
            Some(_) => {
                s.probe_in_flight = true;
                Permit::Probe
            }
        }
    }

    pub fn record_success(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *s = State::default();
    }

    pub fn record_failure(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.consecutive_failures += 1;
        s.probe_in_flight = false;
        if s.consecutive_failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cooldown);
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).consecutive_failures
    }

    pub fn is_open(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_once() {
        let b = CircuitBreaker::new(2, Duration::from_millis(30));
        b.record_failure();
        assert_eq!(b.permit(), Permit::Closed);
        b.record_failure();
        assert_eq!(b.permit(), Permit::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit(), Permit::Probe);
        assert_eq!(b.permit(), Permit::Open, "only one probe at a time");
        b.record_failure();
        assert_eq!(b.permit(), Permit::Open, "a failed probe reopens");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.permit(), Permit::Probe);
        b.record_success();
        assert_eq!(b.permit(), Permit::Closed);
        assert_eq!(b.consecutive_failures(), 0);
    }
}
