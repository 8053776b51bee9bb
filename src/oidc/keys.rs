//! The OP's signing keys as a service (DESIGN.md §2.7, §3): one active key per algorithm,
//! rotation with overlap, and the JWKS (RFC 7517 §5) relying parties verify with.
//!
//! Keys live in the `signing_keys` aggregate, the PKCS#8 private key sealed for
//! ("signing_keys", "private_key", kid), so every process behind one PostgreSQL signs with
//! the same keys. The lifecycle:
//! - exactly one active key per algorithm (a partial unique index in the database);
//! - [`rotate`] makes a new active key and retires the previous one at `now`, in one
//!   transaction;
//! - a retired key's public half stays in the JWKS until `retired_at + overlap`, where the
//!   overlap is the longest lifetime of a token it signed plus a margin
//!   ([`crate::config::Config::oidc_key_overlap`]), so every token it signed still verifies;
//! - then [`sweep`] deletes it.
//!
//! [`KeyRing`] holds the published keys in memory for the handlers. It creates the first key
//! of each algorithm when there is none (race-safe across processes: the unique index lets one
//! insert win, and everyone re-reads), and [`KeyRing::maintain`] reloads every
//! [`RELOAD_EVERY`], so a rotation by `akaid keys rotate` in another process is picked up
//! within that time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::oidc::jose::{JoseError, Jwks, SigningAlg, SigningKey};
use crate::secret::{SealContext, SealError, Sealer};
use crate::store::{SigningKeyRow, SigningKeyStore, StoreError};

/// How often [`KeyRing::maintain`] re-reads the keys (and sweeps expired ones).
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Attempts [`rotate`] makes when concurrent rotations of the same algorithm keep winning.
const ROTATE_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {source}")]
    Seal { kid: String, source: SealError },
    #[error("signing key {kid}: {source}")]
    Key { kid: String, source: JoseError },
    #[error(transparent)]
    Jose(#[from] JoseError),
    #[error("there is no active {0} signing key")]
    NoActiveKey(SigningAlg),
    #[error("generating a signing key failed: {0}")]
    Task(String),
    #[error("concurrent rotations of the {0} key kept winning; try again")]
    RotationRaced(SigningAlg),
}

/// Where a key's private half is sealed: bound to its kid, so a sealed key copied into
/// another row does not open.
pub fn seal_context(kid: &str) -> SealContext<'_> {
    SealContext::new("signing_keys", "private_key", kid)
}

/// The row that stores `key`, its private half sealed.
pub fn seal(sealer: &Sealer, key: &SigningKey) -> SigningKeyRow {
    SigningKeyRow {
        kid: key.kid().to_owned(),
        alg: key.alg(),
        private_key_sealed: sealer.seal(seal_context(key.kid()), key.to_pkcs8_der().expose()),
        created_at: key.created_at(),
        retired_at: key.retired_at(),
    }
}

/// The key a row stores.
pub fn unseal(sealer: &Sealer, row: &SigningKeyRow) -> Result<SigningKey, KeyError> {
    let pkcs8 = sealer
        .open(seal_context(&row.kid), &row.private_key_sealed)
        .map_err(|source| KeyError::Seal {
            kid: row.kid.clone(),
            source,
        })?;
    SigningKey::from_pkcs8_der(
        row.alg,
        row.kid.clone(),
        pkcs8.expose(),
        row.created_at,
        row.retired_at,
    )
    .map_err(|source| KeyError::Key {
        kid: row.kid.clone(),
        source,
    })
}

/// Generates a key on a blocking thread: RSA generation takes up to seconds of CPU.
pub async fn generate(alg: SigningAlg, now: OffsetDateTime) -> Result<SigningKey, KeyError> {
    tokio::task::spawn_blocking(move || SigningKey::generate(alg, now))
        .await
        .map_err(|e| KeyError::Task(e.to_string()))?
        .map_err(KeyError::from)
}

/// What may be shown about a key: never its private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: OffsetDateTime,
    /// When it stopped signing; `None` for the active key of its algorithm.
    pub retired_at: Option<OffsetDateTime>,
    /// Until when its public half is in the JWKS; `None` while it is active.
    pub public_until: Option<OffsetDateTime>,
}

impl KeyInfo {
    fn of(row: &SigningKeyRow, overlap: time::Duration) -> Self {
        Self {
            kid: row.kid.clone(),
            alg: row.alg,
            created_at: row.created_at,
            retired_at: row.retired_at,
            public_until: row.retired_at.map(|at| at.saturating_add(overlap)),
        }
    }

    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }
}

/// Every stored key, retired ones included, oldest first.
pub async fn list(
    store: &dyn SigningKeyStore,
    overlap: time::Duration,
) -> Result<Vec<KeyInfo>, KeyError> {
    Ok(store
        .list()
        .await?
        .iter()
        .map(|row| KeyInfo::of(row, overlap))
        .collect())
}

/// Makes a new active key for `alg` and retires the previous one at `now`. When another
/// process rotates the same algorithm at the same moment, tries again: retiring the other's
/// fresh key costs nothing, since retired keys stay published.
pub async fn rotate(
    store: &dyn SigningKeyStore,
    sealer: &Sealer,
    alg: SigningAlg,
    now: OffsetDateTime,
) -> Result<SigningKey, KeyError> {
    for _ in 0..ROTATE_ATTEMPTS {
        let key = generate(alg, now).await?;
        if store.rotate(&seal(sealer, &key), now).await? {
            tracing::info!(%alg, kid = key.kid(), "rotated the signing key");
            return Ok(key);
        }
    }
    Err(KeyError::RotationRaced(alg))
}

/// Deletes keys whose public half is no longer published at `now` (retired more than
/// `overlap` ago); returns how many.
pub async fn sweep(
    store: &dyn SigningKeyStore,
    now: OffsetDateTime,
    overlap: time::Duration,
) -> Result<u64, KeyError> {
    Ok(store.sweep(now.saturating_sub(overlap)).await?)
}

/// The keys in force at one reload.
#[derive(Debug, Default)]
struct Snapshot {
    /// Published keys: the active ones and those retired within the overlap.
    keys: Vec<SigningKey>,
    active: HashMap<SigningAlg, SigningKey>,
    jwks: Arc<Jwks>,
}

/// The published signing keys, cached in memory; see the module documentation.
#[derive(Debug)]
pub struct KeyRing {
    store: Arc<dyn SigningKeyStore>,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    overlap: time::Duration,
    current: RwLock<Arc<Snapshot>>,
}

impl KeyRing {
    /// Loads the keys, first creating the active key of each algorithm that has none.
    /// Fails when a stored key does not open (the wrong master key, or a damaged row).
    pub async fn open(
        store: Arc<dyn SigningKeyStore>,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        overlap: time::Duration,
    ) -> Result<Self, KeyError> {
        let ring = Self::unloaded(store, sealer, clock, overlap);
        ring.reload().await?;
        Ok(ring)
    }

    /// A ring that holds no keys until [`Self::reload`]: for a process that serves no
    /// OpenID Connect (a BSF alone), or a state built without waiting for the database.
    /// Its JWKS is empty and [`Self::active`] fails.
    pub fn unloaded(
        store: Arc<dyn SigningKeyStore>,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        overlap: time::Duration,
    ) -> Self {
        Self {
            store,
            sealer,
            clock,
            overlap,
            current: RwLock::new(Arc::default()),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The key that signs for `alg` now.
    pub fn active(&self, alg: SigningAlg) -> Result<SigningKey, KeyError> {
        self.snapshot()
            .active
            .get(&alg)
            .cloned()
            .ok_or(KeyError::NoActiveKey(alg))
    }

    /// The JWK Set to publish: active keys and those retired within the overlap, RS256 first,
    /// each algorithm's active key before its retired ones.
    pub fn jwks(&self) -> Arc<Jwks> {
        self.snapshot().jwks.clone()
    }

    /// The published keys, in JWKS order.
    pub fn keys(&self) -> Vec<SigningKey> {
        self.snapshot().keys.clone()
    }

    /// How long retired keys stay published.
    pub fn overlap(&self) -> time::Duration {
        self.overlap
    }

    /// Re-reads the keys from the store (creating a missing active key, as [`Self::open`]).
    /// Only keys not cached already are unsealed.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let mut rows = self.store.list().await?;
        let now = self.clock.now();
        let mut created = false;
        for alg in SigningAlg::ALL {
            if rows.iter().any(|r| r.alg == alg && r.retired_at.is_none()) {
                continue;
            }
            let key = generate(alg, now).await?;
            if self.store.insert(&seal(&self.sealer, &key)).await? {
                tracing::info!(%alg, kid = key.kid(), "created a signing key");
            }
            // Else another process created one first; the re-read below finds it.
            created = true;
        }
        if created {
            rows = self.store.list().await?;
        }
        let snapshot = self.build(rows, now)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    fn build(&self, rows: Vec<SigningKeyRow>, now: OffsetDateTime) -> Result<Snapshot, KeyError> {
        let old = self.snapshot();
        let mut keys = Vec::new();
        for row in rows {
            let info = KeyInfo::of(&row, self.overlap);
            if info.public_until.is_some_and(|until| until <= now) {
                continue;
            }
            let key = match old.keys.iter().find(|k| k.kid() == row.kid) {
                Some(cached) => cached.with_times(row.created_at, row.retired_at),
                None => unseal(&self.sealer, &row)?,
            };
            keys.push(key);
        }
        keys.sort_by_key(|k| {
            (
                k.alg(),
                k.retired_at().is_some(),
                std::cmp::Reverse(k.created_at()),
            )
        });
        let active = keys
            .iter()
            .filter(|k| k.retired_at().is_none())
            .map(|k| (k.alg(), k.clone()))
            .collect();
        let jwks = Arc::new(Jwks::from_keys(&keys));
        Ok(Snapshot { keys, active, jwks })
    }

    /// Rotates each of `algs` ([`rotate`]) and reloads; returns the new keys.
    pub async fn rotate(&self, algs: &[SigningAlg]) -> Result<Vec<SigningKey>, KeyError> {
        let mut new = Vec::with_capacity(algs.len());
        for &alg in algs {
            new.push(rotate(self.store.as_ref(), &self.sealer, alg, self.clock.now()).await?);
        }
        self.reload().await?;
        Ok(new)
    }

    /// Deletes keys retired longer ago than the overlap ([`sweep`]); returns how many.
    pub async fn sweep(&self) -> Result<u64, KeyError> {
        sweep(self.store.as_ref(), self.clock.now(), self.overlap).await
    }

    /// Sweeps and reloads every `every`, for as long as the process runs; failures are
    /// logged and the keys in memory kept. Spawn it: `tokio::spawn(ring.clone().maintain(…))`.
    pub async fn maintain(self: Arc<Self>, every: std::time::Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed signing keys past their overlap"),
                Err(e) => tracing::warn!(error = %e, "sweeping signing keys failed"),
            }
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "reloading signing keys failed; keeping the old ones");
            }
        }
    }
}
