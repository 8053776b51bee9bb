//! Remembered consents (one record model for both protocols, DESIGN.md §3), read through a
//! short-lived cache in each process: every login of a signed-in subscriber asks whether the
//! relying party was allowed, and the answer rarely changes. A change made through this cache
//! (Allow on the consent page, Revoke on the account page) is seen at once by this process and
//! within [`TTL`] by the others, as the operator's realm policies are.

use time::{Duration, OffsetDateTime};

use super::ttl_cache::TtlCache;
use crate::ids::Impi;
use crate::store::{ConsentRow, ConsentStore, StoreError};

/// How long a read is reused.
pub const TTL: Duration = Duration::seconds(5);

#[derive(Debug)]
pub struct ConsentCache(TtlCache<Option<ConsentRow>>);

impl Default for ConsentCache {
    fn default() -> Self {
        Self(TtlCache::new(TTL))
    }
}

fn key(impi: &Impi, relying_party: &str) -> String {
    // NUL cannot occur in either part.
    let mut key = String::with_capacity(impi.as_str().len() + relying_party.len() + 1);
    key.push_str(impi.as_str());
    key.push('\0');
    key.push_str(relying_party);
    key
}

impl ConsentCache {
    pub async fn get(
        &self,
        store: &dyn ConsentStore,
        impi: &Impi,
        relying_party: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ConsentRow>, StoreError> {
        let key = key(impi, relying_party);
        if let Some(row) = self.0.fresh(&key, now) {
            return Ok(row);
        }
        let row = store.get(impi, relying_party).await?;
        self.0.remember(key, row.clone(), now);
        Ok(row)
    }

    /// Stores `row` and remembers it.
    pub async fn put(
        &self,
        store: &dyn ConsentStore,
        row: &ConsentRow,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        store.put(row).await?;
        self.0
            .remember(key(&row.impi, &row.relying_party), Some(row.clone()), now);
        Ok(())
    }

    /// Forgets a consent; `false` if there was none.
    pub async fn remove(
        &self,
        store: &dyn ConsentStore,
        impi: &Impi,
        relying_party: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let removed = store.remove(impi, relying_party).await?;
        self.0.remember(key(impi, relying_party), None, now);
        Ok(removed)
    }
}
