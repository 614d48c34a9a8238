//! One mutating operation at a time per key: the rule AKS (409 `OperationNotAllowed`) and GKE
//! (400 `FAILED_PRECONDITION`) enforce per cluster.
//!
//! ## Overview
//!
//! The engine runs independent resources concurrently, and the node pools of one cluster are
//! independent of each other. The cloud refuses a second operation on a cluster while one is in
//! progress, so a backend holds [`Serial::lock`] for the cluster's key from the request that
//! starts an operation until the poll that sees it finish. Calls on other keys go on in parallel.
//! The cloud's own conflict error stays a retryable [`crate::ProviderError::Conflict`] for what
//! the lock cannot see (another tool, the console, a second Tessera process).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Async locks by key, made on first use.
#[derive(Debug, Default)]
pub struct Serial {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

impl Serial {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until no other holder of `key` is left, and holds it until the guard drops.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holders_of_one_key_never_overlap_and_other_keys_run_alongside() {
        let serial = Arc::new(Serial::new());
        let (inside, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (serial, inside, most) = (serial.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _held = serial.lock("cluster-a").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(10)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        let started = tokio::time::Instant::now();
        let other = serial.clone();
        let b = tokio::spawn(async move {
            let _held = other.lock("cluster-b").await;
            tokio::time::Instant::now()
        });
        let b_at = b.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "one holder of cluster-a at a time");
        assert!(started.elapsed() >= Duration::from_secs(30), "three 10 s operations in a row");
        assert!(b_at - started < Duration::from_secs(10), "cluster-b does not wait for cluster-a");
    }
}
