//! What the controller and the sealer ask of one partition's loop, and what the loop shows
//! back: force-commit and pause requests, the row threshold chosen at commit, the frozen
//! segments it holds in memory, and a sealer failure that must stop it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::status::PartitionError;

/// Frozen segments not yet swapped for their sealed copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frozen {
    /// How many.
    pub count: u64,
    /// Bytes they hold.
    pub bytes: u64,
}

impl Frozen {
    /// Whether consumption must wait for the sealer: more than one frozen segment, holding
    /// more than `cap` bytes together.
    pub fn over(&self, cap: u64) -> bool {
        self.count > 1 && self.bytes > cap
    }
}

/// One partition's requests and signals.
#[derive(Debug)]
pub struct PartitionControl {
    /// Force-commit requests so far; the loop seals when this exceeds what it handled.
    force: AtomicU64,
    /// Commit the consuming segment and stop (pause).
    pause: AtomicBool,
    /// Wakes the loop out of a fetch or a wait.
    wake: Notify,
    /// The row threshold the controller chose at commit for a segment: (sequence, rows).
    threshold: Mutex<Option<(u32, u64)>>,
    /// Frozen segments held.
    frozen: watch::Sender<Frozen>,
    /// A sealing failure that stops the partition.
    failure: Mutex<Option<PartitionError>>,
}

impl Default for PartitionControl {
    fn default() -> PartitionControl {
        PartitionControl {
            force: AtomicU64::new(0),
            pause: AtomicBool::new(false),
            wake: Notify::new(),
            threshold: Mutex::new(None),
            frozen: watch::Sender::new(Frozen::default()),
            failure: Mutex::new(None),
        }
    }
}

impl PartitionControl {
    /// Asks the loop to commit its consuming segment now.
    pub fn force_commit(&self) {
        self.force.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Force-commit requests so far.
    pub fn forces(&self) -> u64 {
        self.force.load(Ordering::SeqCst)
    }

    /// Asks the loop to commit its consuming segment and stop (or not).
    pub fn set_pause(&self, pause: bool) {
        self.pause.store(pause, Ordering::SeqCst);
        if pause {
            self.wake.notify_one();
        }
    }

    /// Whether a pause is asked.
    pub fn pausing(&self) -> bool {
        self.pause.load(Ordering::SeqCst)
    }

    /// Asks the loop to look again (its table's spec changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when something asks the loop to look again.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Records the threshold the controller chose for segment `sequence`.
    pub fn set_threshold(&self, sequence: u32, rows: u64) {
        *self.threshold.lock() = Some((sequence, rows));
    }

    /// The threshold chosen for segment `sequence`, if any.
    pub fn threshold_for(&self, sequence: u32) -> Option<u64> {
        self.threshold
            .lock()
            .filter(|(s, _)| *s == sequence)
            .map(|(_, t)| t)
    }

    /// Forgets frozen segments of an earlier run of the partition (committed or dropped
    /// with it).
    pub fn reset_frozen(&self) {
        self.frozen.send_replace(Frozen::default());
    }

    /// Counts a frozen segment of `bytes` as held until [`PartitionControl::release`].
    pub fn hold(&self, bytes: usize) {
        self.frozen.send_modify(|f| {
            f.count += 1;
            f.bytes += bytes as u64;
        });
    }

    /// The sealer swapped a frozen segment of `bytes`: no longer held.
    pub fn release(&self, bytes: usize) {
        self.frozen.send_modify(|f| {
            f.count = f.count.saturating_sub(1);
            f.bytes = f.bytes.saturating_sub(bytes as u64);
        });
    }

    /// Frozen segments held now.
    pub fn frozen(&self) -> Frozen {
        *self.frozen.borrow()
    }

    /// Waits until frozen segments hold at most `cap` bytes (beyond the first), a pause or
    /// a failure is asked, or the partition is woken for another reason.
    pub async fn wait_frozen_within(&self, cap: u64) {
        let mut rx = self.frozen.subscribe();
        tokio::select! {
            _ = rx.wait_for(|f| !f.over(cap)) => {}
            _ = self.wake.notified() => {}
        }
    }

    /// Records a sealing failure that stops the partition, and wakes the loop.
    pub fn fail(&self, e: PartitionError) {
        self.failure.lock().get_or_insert(e);
        self.wake.notify_one();
    }

    /// The sealing failure, if any.
    pub fn failure(&self) -> Option<PartitionError> {
        self.failure.lock().clone()
    }

    /// Clears a failure of an earlier run (the partition is started again).
    pub fn clear_failure(&self) {
        *self.failure.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_waiting_for_frozen_segments_ends_on_release() {
        let c = std::sync::Arc::new(PartitionControl::default());
        c.hold(600);
        c.hold(600);
        assert!(c.frozen().over(1000));
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.wait_frozen_within(1000).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        c.release(600);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the wait ends when a segment is released")
            .unwrap();
        assert_eq!(
            c.frozen(),
            Frozen {
                count: 1,
                bytes: 600
            }
        );
    }

    #[test]
    fn test_threshold_is_per_sequence() {
        let c = PartitionControl::default();
        c.set_threshold(3, 500);
        assert_eq!(c.threshold_for(3), Some(500));
        assert_eq!(c.threshold_for(4), None);
    }
}
