//! Giving freed memory back to the operating system.
//!
//! glibc's allocator keeps the pages freed by departed clients in its arenas:
//! 10,000 idle connections that come and go leave the process's resident memory
//! where their peak put it, although the memory is reused by the next ones. When
//! the broker has shrunk by many sessions or subscriptions since the last look,
//! `malloc_trim` hands those pages back, so that RSS follows the load down.

use std::sync::Arc;
use std::time::Duration;

use mqgate_broker::Broker;

/// How often the broker's size is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(10);
/// Sessions plus subscriptions gone since the high-water mark that make a trim
/// worth its cost (it walks the allocator's arenas, a few milliseconds).
const SHRINK_WORTH_TRIMMING: u64 = 1_000;

/// Watches `broker` while it runs, trimming after large shrinks.
pub fn trim_after_shrinks(broker: &Arc<Broker>) {
    let mut high = 0u64;
    broker.every(LOOK_EVERY, move |broker| {
        let stats = broker.stats();
        let size = stats.sessions + stats.subscriptions;
        high = high.max(size);
        if high - size >= SHRINK_WORTH_TRIMMING {
            high = size;
            // a few milliseconds of allocator work, off the runtime's threads
            tokio::task::spawn_blocking(trim);
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released != 0,
        "returned freed memory to the system"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
