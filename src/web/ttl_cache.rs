//! A short-lived read cache in each process, for what every login reads and what rarely
//! changes: consents, OpenID Connect clients, subscribers' MSISDNs. An entry is reused for
//! the cache's time to live; a change made through the owning wrapper is seen at once by
//! this process and within the time to live by the others (as the operator's realm policies
//! are). Time is a parameter, so expiry is exact in tests.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Entries kept at most; the cache is emptied when full (a flood of distinct keys costs
/// reads, never memory).
const MAX: usize = 100_000;

#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (V, OffsetDateTime)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value remembered for `key` if it was read less than the time to live before `now`
    /// (and not after it: a clock that went back does not extend an entry's life).
    pub fn fresh(&self, key: &str, now: OffsetDateTime) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (value, read) = entries.get(key)?;
        (now >= *read && now - *read < self.ttl).then(|| value.clone())
    }

    /// Remembers `value` as read at `now`.
    pub fn remember(&self, key: String, value: V, now: OffsetDateTime) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX {
                entries.clear();
            }
            entries.insert(key, (value, now));
        }
    }

    /// Forgets `key`, so the next read goes to the store.
    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_the_ttl_and_not_across_a_clock_going_back() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let cache = TtlCache::new(Duration::seconds(5));
        assert_eq!(cache.fresh("k", t0), None);
        cache.remember("k".into(), 7, t0);
        assert_eq!(cache.fresh("k", t0), Some(7));
        assert_eq!(
            cache.fresh("k", t0 + Duration::milliseconds(4_999)),
            Some(7)
        );
        assert_eq!(cache.fresh("k", t0 + Duration::seconds(5)), None);
        assert_eq!(cache.fresh("k", t0 - Duration::seconds(1)), None);
        cache.forget("k");
        assert_eq!(cache.fresh("k", t0), None);
    }
}
