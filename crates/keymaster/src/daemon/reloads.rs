//! The queue of cluster zones waiting to be reloaded after a change.
//!
//! Reloading a signed cluster zone can take long: a large zone is signed
//! again, and a member without the cluster key transfers it from a signer.
//! The watch thread therefore only queues the zone, and a few worker
//! threads reload queued zones, so one slow zone does not hold back the
//! changes of the others. A zone is reloaded by one worker at a time. A
//! change that arrives while the zone is queued is merged into the queued
//! reload. One that arrives during a reload queues the zone once more, so
//! every change is followed by a reload that starts after it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Maximum number of worker threads that reload cluster zones.
const MAX_WORKERS: usize = 4;

/// A zone reload as queued: the zone and whether its role record changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    pub zone: String,
    pub role_changed: bool,
}

/// Queue of zones waiting for a reload. [`Reloads::push`] queues each
/// zone at most once.
#[derive(Default)]
pub struct Reloads {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    /// Zones in the order they were queued. Each is in `waiting` and not
    /// in `running`.
    order: VecDeque<String>,
    /// Zones waiting for a reload, with whether their role changed.
    waiting: HashMap<String, bool>,
    /// Zones a worker is reloading now.
    running: HashSet<String>,
    closed: bool,
}

impl Reloads {
    /// Returns the number of worker threads to start on this machine.
    pub fn workers() -> usize {
        std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, MAX_WORKERS)
    }

    /// Queues a reload of `zone`, or merges it into the one already queued.
    pub fn push(&self, zone: &str, role_changed: bool) {
        let mut state = self.lock();
        if let Some(role) = state.waiting.get_mut(zone) {
            *role |= role_changed;
            return;
        }
        state.waiting.insert(zone.to_string(), role_changed);
        // A zone being reloaded is queued again when that reload ends.
        if !state.running.contains(zone) {
            state.order.push_back(zone.to_string());
            self.ready.notify_one();
        }
    }

    /// Waits for the next zone to reload and marks it as running. Returns
    /// `None` once the queue is closed.
    pub fn next(&self) -> Option<Reload> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(zone) = state.order.pop_front() {
                let role_changed = state.waiting.remove(&zone).unwrap_or(false);
                state.running.insert(zone.clone());
                return Some(Reload { zone, role_changed });
            }
            state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Marks the reload of `zone` as finished and queues the zone again
    /// when a change arrived meanwhile.
    pub fn done(&self, zone: &str) {
        let mut state = self.lock();
        state.running.remove(zone);
        if state.waiting.contains_key(zone) {
            state.order.push_back(zone.to_string());
            self.ready.notify_one();
        }
    }

    /// Stops the workers: each returns from [`Reloads::next`] once it has
    /// finished the reload it is running.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reload(zone: &str, role_changed: bool) -> Option<Reload> {
        Some(Reload {
            zone: zone.to_string(),
            role_changed,
        })
    }

    #[test]
    fn queued_changes_are_merged() {
        let reloads = Reloads::default();
        reloads.push("a.test.", false);
        reloads.push("b.test.", false);
        reloads.push("a.test.", true);
        assert_eq!(reloads.next(), reload("a.test.", true));
        assert_eq!(reloads.next(), reload("b.test.", false));
    }

    #[test]
    fn change_during_reload_queues_once_more() {
        let reloads = Reloads::default();
        reloads.push("a.test.", false);
        assert_eq!(reloads.next(), reload("a.test.", false));

        // Queued while running: no second worker gets it before `done`.
        reloads.push("a.test.", true);
        reloads.push("b.test.", false);
        assert_eq!(reloads.next(), reload("b.test.", false));
        reloads.done("a.test.");
        assert_eq!(reloads.next(), reload("a.test.", true));
    }

    #[test]
    fn close_wakes_waiting_workers() {
        let reloads = Reloads::default();
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| reloads.next());
            std::thread::sleep(std::time::Duration::from_millis(50));
            reloads.close();
            assert_eq!(worker.join().unwrap(), None);
        });
    }
}
