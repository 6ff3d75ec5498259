//! The bounded pool that password and client-secret hashing (argon2, deliberately slow)
//! runs on: off the async workers (`spawn_blocking`), at most `workers` at once, at most
//! `queue` more waiting. A flood of sign-ins therefore waits here — or, once the queue is
//! full, is refused at once with [`Busy`] (429 + Retry-After) — and never takes the threads
//! that serve `/fhir`. It only runs what it is given; it never sees where a secret came from
//! and never logs one.

use std::sync::Arc;
use tokio::sync::Semaphore;

/// The pool is full: try again in [`Busy::RETRY_AFTER_SECS`] seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins at once; try again in a moment")]
pub struct Busy;

impl Busy {
    /// What `Retry-After` says when the pool is full (a hash takes well under a second).
    pub const RETRY_AFTER_SECS: u64 = 1;
}

/// A cheap handle (clones share the pool).
#[derive(Clone, Debug)]
pub struct Hasher {
    /// One permit per hash that may run at once.
    running: Arc<Semaphore>,
    /// One permit per hash admitted (running or waiting).
    admitted: Arc<Semaphore>,
}

impl Default for Hasher {
    /// One worker per core, 64 waiting.
    fn default() -> Self {
        Hasher::new(0, 64)
    }
}

impl Hasher {
    /// `workers` at once (0: one per CPU core), `queue` more waiting (at least 1).
    pub fn new(workers: usize, queue: usize) -> Hasher {
        let workers = if workers == 0 { std::thread::available_parallelism().map_or(2, usize::from) } else { workers };
        Hasher {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a worker is free, or answers [`Busy`] at once
    /// when the queue is full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _admitted = self.admitted.clone().try_acquire_owned().map_err(|_| Busy)?;
        // The semaphore is never closed, so acquiring only waits.
        let _running = self.running.clone().acquire_owned().await.map_err(|_| Busy)?;
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            tracing::error!(error = %e, "a hashing task failed");
            Busy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_answers_busy_and_frees_up_again() {
        let pool = Hasher::new(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || rx.recv().is_ok()).await })
        };
        // Let the blocker take the worker, then one waits in the queue.
        while pool.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 2).await })
        };
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| 3).await, Err(Busy), "worker busy and queue full");
        tx.send(()).unwrap();
        assert_eq!(blocker.await.unwrap(), Ok(true));
        assert_eq!(waiting.await.unwrap(), Ok(2));
        assert_eq!(pool.run(|| 4).await, Ok(4), "room again");
    }
}
