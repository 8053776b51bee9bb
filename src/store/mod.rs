//! Persistence: one trait per aggregate, one implementation per database (DESIGN.md §3).
//!
//! SQLite is the embedded default; PostgreSQL lets several `akaid` processes share state.
//! Migrations live in `migrations/sqlite/` and `migrations/postgres/`, numbered in lockstep,
//! and `tests/it/store.rs` runs one conformance suite against both implementations.
//!
//! Stores deal in sealed bytes: sealing and unsealing happen above them (in `hss`), so a
//! store never holds a key in the clear.

mod clients_sql;
mod common;
mod grants_sql;
mod keys_sql;
mod openid_sql;
mod postgres;
mod sqlite;
mod sqlite_reader;
mod sqlite_writer;

use clients_sql::impl_clients_sql;
use common::impl_common_sql;
use grants_sql::impl_grants_sql;
use keys_sql::impl_keys_sql;
use openid_sql::impl_openid_sql;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::aka::{Amf, Sqn};
use crate::ids::{Impi, Msisdn};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {key:?} already exists")]
    Duplicate { what: &'static str, key: String },
    #[error("row {index} of the batch: {what} {key:?} already exists")]
    DuplicateInBatch {
        index: usize,
        what: &'static str,
        key: String,
    },
    #[error("database URL {0:?} is not sqlite:// or postgres://")]
    UnknownScheme(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error (direct SQLite connection): {0}")]
    Writer(String),
}

/// A subscriber as stored: keys sealed (see `hss`), SQN the last one used.
#[derive(Debug, Clone)]
pub struct SubscriberRow {
    pub impi: Impi,
    pub msisdn: Option<Msisdn>,
    pub k_sealed: Vec<u8>,
    pub opc_sealed: Vec<u8>,
    pub amf: Amf,
    pub sqn: Sqn,
    pub created_at: OffsetDateTime,
}

/// What may be shown about a subscriber: everything but key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    pub impi: Impi,
    pub msisdn: Option<Msisdn>,
    pub amf: Amf,
    pub sqn: Sqn,
    pub created_at: OffsetDateTime,
}

/// A subscriber's sealed keys with the SQN and AMF a vector needs.
#[derive(Debug, Clone)]
pub struct SealedKeys {
    pub k_sealed: Vec<u8>,
    pub opc_sealed: Vec<u8>,
    pub amf: Amf,
    pub sqn: Sqn,
}

/// Subscriber records (the HSS's database).
#[async_trait]
pub trait SubscriberStore: Send + Sync + fmt::Debug {
    /// Adds one subscriber; an existing IMPI or MSISDN is [`StoreError::Duplicate`].
    async fn insert(&self, row: &SubscriberRow) -> Result<(), StoreError>;

    /// Adds all rows in one transaction, or none: the first row whose IMPI or MSISDN exists
    /// already is [`StoreError::DuplicateInBatch`]. `progress` is called with the number of
    /// rows written so far.
    async fn insert_all(
        &self,
        rows: &[SubscriberRow],
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(), StoreError>;

    async fn info(&self, impi: &Impi) -> Result<Option<SubscriberInfo>, StoreError>;

    /// Subscribers in IMPI order, starting after `after`.
    async fn list(
        &self,
        after: Option<&Impi>,
        limit: u32,
    ) -> Result<Vec<SubscriberInfo>, StoreError>;

    async fn count(&self) -> Result<u64, StoreError>;

    /// Removes a subscriber; `false` if there was none.
    async fn remove(&self, impi: &Impi) -> Result<bool, StoreError>;

    /// The sealed keys and current SQN, without changing anything.
    async fn sealed_keys(&self, impi: &Impi) -> Result<Option<SealedKeys>, StoreError>;

    /// Advances the SQN to the next one (SEQ + 1, IND + 1 mod 32; [`Sqn::next`]) in one
    /// atomic statement and returns it with the sealed keys: concurrent callers, in any
    /// process, each get a different SQN.
    async fn advance_sqn(&self, impi: &Impi) -> Result<Option<SealedKeys>, StoreError>;

    /// Raises the SQN to `at_least` if it is lower (it never goes down) and returns the SQN
    /// stored afterwards; `None` for an unknown IMPI.
    async fn raise_sqn(&self, impi: &Impi, at_least: Sqn) -> Result<Option<Sqn>, StoreError>;
}

/// Small values the whole deployment shares (the master-key check value, later the
/// pseudonym secret).
#[async_trait]
pub trait MetaStore: Send + Sync + fmt::Debug {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `value` unless `key` has one; returns the value stored afterwards, so two
    /// processes racing to create it agree on one.
    async fn get_or_insert(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// An outstanding Ub challenge (TS 24.109 §4.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// base64(RAND ‖ AUTN): the Digest nonce, and the key.
    pub nonce: String,
    /// The IMPI the challenge was issued to, as the handset sent it (it may be unknown).
    pub impi: String,
    pub opaque: String,
    /// XRES ‖ CK ‖ IK, sealed for ("ub_challenges", "secrets", nonce); `None` for the decoy
    /// an unknown IMPI gets.
    pub secrets_sealed: Option<Vec<u8>>,
    pub expires_at: OffsetDateTime,
}

/// Ub challenges, single use: whichever process takes one answers it.
#[async_trait]
pub trait ChallengeStore: Send + Sync + fmt::Debug {
    async fn insert(&self, row: &ChallengeRow) -> Result<(), StoreError>;

    /// Removes the challenge and returns it, expired or not; a second take finds nothing.
    async fn take(&self, nonce: &str) -> Result<Option<ChallengeRow>, StoreError>;

    /// Deletes challenges that expired before `before`; returns how many.
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// A bootstrapping session (TS 33.220 §4.5.2): B-TID, IMPI, RAND and Ks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapRow {
    pub btid: String,
    pub impi: Impi,
    pub rand: [u8; 16],
    /// Ks = CK ‖ IK, sealed for ("bootstrap_sessions", "ks", btid).
    pub ks_sealed: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[async_trait]
pub trait BootstrapStore: Send + Sync + fmt::Debug {
    /// Stores a session and removes the IMPI's earlier ones: a new bootstrap supersedes them.
    async fn insert_superseding(&self, row: &BootstrapRow) -> Result<(), StoreError>;

    async fn get(&self, btid: &str) -> Result<Option<BootstrapRow>, StoreError>;

    /// The IMPI's sessions, newest first.
    async fn for_impi(&self, impi: &Impi) -> Result<Vec<BootstrapRow>, StoreError>;

    /// Deletes sessions that expired before `before`; returns how many.
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// A NAF registered for Zn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NafRow {
    pub fqdn: String,
    /// SHA-256 of its bearer secret (a 256-bit random value, so a plain hash suffices).
    pub secret_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait NafStore: Send + Sync + fmt::Debug {
    /// Registers a NAF; an existing FQDN is [`StoreError::Duplicate`].
    async fn insert(&self, row: &NafRow) -> Result<(), StoreError>;

    async fn by_secret_hash(&self, hash: &[u8]) -> Result<Option<NafRow>, StoreError>;

    async fn list(&self) -> Result<Vec<NafRow>, StoreError>;

    async fn remove(&self, fqdn: &str) -> Result<bool, StoreError>;
}

/// Fixed-window counters that every process shares (abuse limits per IMPI, per client).
#[async_trait]
pub trait RateStore: Send + Sync + fmt::Debug {
    /// Counts one event for `key` in the window starting at `window_start` (unix seconds)
    /// and returns the events counted in that window so far, this one included.
    async fn hit(&self, key: &str, window_start: i64) -> Result<u64, StoreError>;

    /// Deletes counters whose window started before `before` (unix seconds); returns how
    /// many. Keys include IMPIs that callers invent, so ended windows must not pile up.
    async fn sweep(&self, before: i64) -> Result<u64, StoreError>;
}

/// Login sessions of the OP: opaque records (tower-sessions' JSON) with an expiry.
#[async_trait]
pub trait LoginSessionStore: Send + Sync + fmt::Debug {
    /// Inserts a new session; `false` when the id is taken (the caller draws another).
    async fn create(
        &self,
        id: &str,
        data: &[u8],
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Inserts or replaces.
    async fn save(
        &self,
        id: &str,
        data: &[u8],
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The record if it exists and has not expired at `now`.
    async fn load(&self, id: &str, now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, id: &str) -> Result<(), StoreError>;
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// What became of a Ua nonce-count (TS 24.109 §5; RFC 7616 §3.4: each nc once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    Accepted,
    /// This nc (or a higher one) was already accepted for the nonce.
    Replayed,
    /// Issued here, but expired: the client gets a fresh nonce with `stale=true`.
    Expired,
    Unknown,
}

/// Ua Digest nonces, shared by every process (a login may finish on another one).
#[async_trait]
pub trait UaNonceStore: Send + Sync + fmt::Debug {
    async fn issue(&self, nonce: &str, expires_at: OffsetDateTime) -> Result<(), StoreError>;
    /// Accepts `nc` for `nonce` when it is higher than every nc accepted before.
    async fn use_count(
        &self,
        nonce: &str,
        nc: u32,
        now: OffsetDateTime,
    ) -> Result<NonceUse, StoreError>;
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// An OpenID 2.0 association (§8) as stored; the MAC key is sealed for
/// ("openid2_associations", "secret", handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationRow {
    pub handle: String,
    pub assoc_type: String,
    pub secret_sealed: Vec<u8>,
    /// A private (stateless-mode) association: only check_authentication may use it.
    pub private: bool,
    pub expires_at: OffsetDateTime,
}

/// OpenID 2.0 associations and verified response nonces.
#[async_trait]
pub trait Openid2Store: Send + Sync + fmt::Debug {
    async fn insert_association(&self, row: &AssociationRow) -> Result<(), StoreError>;
    /// The association if it exists and has not expired at `now`.
    async fn association(
        &self,
        handle: &str,
        now: OffsetDateTime,
    ) -> Result<Option<AssociationRow>, StoreError>;
    async fn remove_association(&self, handle: &str) -> Result<bool, StoreError>;
    /// Records a response_nonce that check_authentication verified; `false` when it was
    /// recorded before (a replay).
    async fn record_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Deletes expired associations and nonces; returns how many.
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// A subscriber's decision for one relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub impi: Impi,
    /// `openid2:<realm>` or `oidc:<client_id>`.
    pub relying_party: String,
    /// What was allowed, space-separated (`identifier`, `phone`, SReg field names).
    pub shared: String,
    pub created_at: OffsetDateTime,
}

/// Remembered consent, one model for both protocols.
#[async_trait]
pub trait ConsentStore: Send + Sync + fmt::Debug {
    async fn get(&self, impi: &Impi, relying_party: &str)
    -> Result<Option<ConsentRow>, StoreError>;
    /// Inserts or replaces.
    async fn put(&self, row: &ConsentRow) -> Result<(), StoreError>;
    async fn list(&self, impi: &Impi) -> Result<Vec<ConsentRow>, StoreError>;
    async fn remove(&self, impi: &Impi, relying_party: &str) -> Result<bool, StoreError>;
}

/// Profile fields the operator keeps for subscribers (SReg 1.1 §4 names), released to relying
/// parties with consent.
#[async_trait]
pub trait ProfileStore: Send + Sync + fmt::Debug {
    /// The subscriber's profile; empty for a subscriber without one (or without a record).
    async fn profile(&self, impi: &Impi) -> Result<crate::profile::Profile, StoreError>;
    /// Sets (`Some`) or clears (`None`) one field; `false` when there is no such subscriber.
    /// The value must have passed [`crate::profile::ProfileField::validate`].
    async fn set_profile_field(
        &self,
        impi: &Impi,
        field: crate::profile::ProfileField,
        value: Option<&str>,
    ) -> Result<bool, StoreError>;
}

/// The operator's policy for one realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealmPolicy {
    /// Log in without a consent prompt.
    Allow,
    /// Ask the subscriber the first time (the default for realms without a row).
    Prompt,
    /// Refuse.
    Deny,
}

impl RealmPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Prompt => "prompt",
            Self::Deny => "deny",
        }
    }
}

impl std::str::FromStr for RealmPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Self::Allow),
            "prompt" => Ok(Self::Prompt),
            "deny" => Ok(Self::Deny),
            other => Err(format!("policy {other:?} is not allow, prompt or deny")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmPolicyRow {
    pub realm: String,
    pub policy: RealmPolicy,
    /// The realm gets the subscriber's stable identifier instead of a pairwise one.
    pub stable_identifier: bool,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait RealmPolicyStore: Send + Sync + fmt::Debug {
    /// Inserts or replaces.
    async fn put(&self, row: &RealmPolicyRow) -> Result<(), StoreError>;
    async fn get(&self, realm: &str) -> Result<Option<RealmPolicyRow>, StoreError>;
    async fn list(&self) -> Result<Vec<RealmPolicyRow>, StoreError>;
    async fn remove(&self, realm: &str) -> Result<bool, StoreError>;
}

/// A signing key of the OpenID Connect provider as stored (DESIGN.md §2.7): the PKCS#8
/// private key sealed for ("signing_keys", "private_key", kid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// The key's JWK thumbprint (RFC 7638), its `kid` in tokens and the JWKS.
    pub kid: String,
    pub alg: crate::oidc::jose::SigningAlg,
    pub private_key_sealed: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// When it stopped signing; `None` for the active key of its alg (at most one per alg).
    pub retired_at: Option<OffsetDateTime>,
}

/// Signing keys, shared by every process: at most one active key per alg, enforced by the
/// database, so processes racing to create or rotate keys agree on one.
#[async_trait]
pub trait SigningKeyStore: Send + Sync + fmt::Debug {
    /// Stores a key. Stores nothing and returns `false` when the row is active and its alg
    /// has an active key already (another process created one first), or its kid exists.
    async fn insert(&self, row: &SigningKeyRow) -> Result<bool, StoreError>;

    /// Every key, retired ones included, oldest first.
    async fn list(&self) -> Result<Vec<SigningKeyRow>, StoreError>;

    /// Marks a key retired at `at` (its not-after time) unless it is retired already;
    /// `false` when nothing changed.
    async fn retire(&self, kid: &str, at: OffsetDateTime) -> Result<bool, StoreError>;

    /// Retires the active key of `row.alg` at `at` and stores `row` (active) in its place, in
    /// one transaction. `false`, with nothing changed, when a concurrent rotation of the
    /// same alg got there first (or `row.kid` exists).
    async fn rotate(&self, row: &SigningKeyRow, at: OffsetDateTime) -> Result<bool, StoreError>;

    /// Deletes keys retired before `before` (their public half is no longer published);
    /// returns how many.
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// An OpenID Connect client as registered (DESIGN.md §2.7, §4; see [`crate::oidc::client`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    pub client_id: crate::ids::ClientId,
    /// Shown to subscribers on the consent and account pages.
    pub name: String,
    /// SHA-256 of the client secret ([`crate::oidc::client::secret_hash`]); `None` for a
    /// public client, which has no secret and uses PKCE.
    pub secret_hash: Option<Vec<u8>>,
    /// Exact strings, compared exactly; at least one.
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// How its ID tokens are signed (`id_token_signed_response_alg`).
    pub id_token_alg: crate::oidc::jose::SigningAlg,
    pub subject_type: crate::oidc::client::SubjectType,
    /// The host its pairwise `sub` is computed for; `None` for a public subject type.
    pub sector_host: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Registered OpenID Connect clients.
#[async_trait]
pub trait ClientStore: Send + Sync + fmt::Debug {
    /// Registers a client; an existing client_id is [`StoreError::Duplicate`].
    async fn add(&self, client: &OidcClient) -> Result<(), StoreError>;

    async fn get(&self, client_id: &crate::ids::ClientId)
    -> Result<Option<OidcClient>, StoreError>;

    /// Every client, oldest first.
    async fn list(&self) -> Result<Vec<OidcClient>, StoreError>;

    /// Removes a client and the consents subscribers gave it; `false` if there was none.
    async fn remove(&self, client_id: &crate::ids::ClientId) -> Result<bool, StoreError>;
}

/// The writes of every Ub bootstrap, for a backend that runs them on a path of its own
/// (SQLite's writer thread with group commit, `sqlite_writer`). Same meaning as the trait
/// methods they stand in for.
#[async_trait]
trait HotWrites: Send + Sync + fmt::Debug {
    async fn advance_sqn(&self, impi: &Impi) -> Result<Option<SealedKeys>, StoreError>;
    async fn insert_challenge(&self, row: &ChallengeRow) -> Result<(), StoreError>;
    async fn take_challenge(&self, nonce: &str) -> Result<Option<ChallengeRow>, StoreError>;
    async fn insert_bootstrap(&self, row: &BootstrapRow) -> Result<(), StoreError>;
    async fn rate_hit(&self, key: &str, window_start: i64) -> Result<u64, StoreError>;
    /// [`Openid2Store::record_nonce`]: one write per OpenID 2.0 check_authentication.
    async fn record_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// [`GrantStore::insert_grant`]: one write per OpenID Connect authorization.
    async fn insert_grant(
        &self,
        grant: &Grant,
        code: &CodeRow,
        created_at: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// [`GrantStore::take_code`]: one write per token request.
    async fn take_code(
        &self,
        hash: &crate::oidc::grant::TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError>;
}

/// The columns [`hot_sql::CODE_TAKE`] returns, as stored.
#[derive(Debug)]
struct TakenCode {
    code_hash: Vec<u8>,
    grant_id: String,
    client_id: String,
    impi: String,
    redirect_uri: String,
    scope: String,
    shared: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    auth_time: i64,
    acr: Option<String>,
    expires_at: i64,
    openid2_id: Option<String>,
}

/// The columns of [`hot_sql::CODE_WHY`] that say why a code was not taken.
#[derive(Debug)]
struct UntakenCode {
    grant_id: String,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// What `take_code` found, from the columns of its two statements (both database paths).
fn code_take_outcome(
    taken: Option<TakenCode>,
    why: Option<UntakenCode>,
) -> Result<CodeTake, StoreError> {
    use crate::oidc::grant::{CodeChallenge, GrantId, Scopes, TokenHash};
    let grant_id = |text: &str| -> Result<GrantId, StoreError> {
        text.parse()
            .map_err(|e| StoreError::Corrupt(format!("grant id: {e}")))
    };
    if let Some(t) = taken {
        let grant = Grant {
            id: grant_id(&t.grant_id)?,
            client_id: t
                .client_id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("client_id: {e}")))?,
            impi: parse_impi(&t.impi)?,
            scope: Scopes::from_stored(&t.scope)
                .map_err(|e| StoreError::Corrupt(format!("scope: {e}")))?,
            shared: t.shared,
            auth_time: time_from_db(t.auth_time)?,
            acr: t.acr,
            openid2_id: t.openid2_id,
        };
        let code = CodeRow {
            hash: TokenHash::from_slice(&t.code_hash).ok_or_else(|| {
                StoreError::Corrupt(format!("token hash of {} bytes", t.code_hash.len()))
            })?,
            redirect_uri: t.redirect_uri,
            nonce: t.nonce,
            code_challenge: t
                .code_challenge
                .map(|c| {
                    c.parse::<CodeChallenge>()
                        .map_err(|e| StoreError::Corrupt(format!("code_challenge: {e}")))
                })
                .transpose()?,
            expires_at: time_from_db(t.expires_at)?,
        };
        return Ok(CodeTake::Taken { grant, code });
    }
    let Some(why) = why else {
        return Ok(CodeTake::Unknown);
    };
    let id = grant_id(&why.grant_id)?;
    Ok(if why.used_at.is_some() {
        CodeTake::AlreadyUsed { grant_id: id }
    } else if why.revoked_at.is_some() {
        CodeTake::GrantRevoked { grant_id: id }
    } else {
        // Expired; or unused, live and unexpired yet not taken, which only a clock that moved
        // back between the two statements gets: refuse, change nothing.
        CodeTake::Expired
    })
}

/// The reads of every OpenID login, for a backend that runs them on a path of its own
/// (SQLite's direct reads, `sqlite_reader`). Same meaning as the trait methods.
#[async_trait]
trait HotReads: Send + Sync + fmt::Debug {
    async fn session_load(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    async fn consent_get(
        &self,
        impi: &Impi,
        relying_party: &str,
    ) -> Result<Option<ConsentRow>, StoreError>;
}

/// The SQL of [`HotWrites`] and [`HotReads`], shared by the pool and the SQLite writer thread.
mod hot_sql {
    pub const GRANT_INSERT: &str = "INSERT INTO oidc_grants (id, client_id, impi, scope, \
         shared, auth_time, acr, created_at, expires_at, openid2_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub const CODE_INSERT: &str = "INSERT INTO oidc_codes (code_hash, grant_id, client_id, \
         impi, redirect_uri, scope, shared, nonce, code_challenge, auth_time, acr, expires_at, \
         openid2_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    /// Takes an unused, unexpired code of a live grant: one caller ever gets the row.
    pub const CODE_TAKE: &str = "UPDATE oidc_codes SET used_at = $2 \
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
           AND EXISTS (SELECT 1 FROM oidc_grants g \
                       WHERE g.id = oidc_codes.grant_id AND g.revoked_at IS NULL) \
         RETURNING code_hash, grant_id, client_id, impi, redirect_uri, scope, \
           shared, nonce, code_challenge, auth_time, acr, expires_at, openid2_id";
    /// Why a code was not taken: read after the `UPDATE`, so a concurrent winner is seen.
    pub const CODE_WHY: &str = "SELECT c.grant_id, c.used_at, c.expires_at, g.revoked_at \
         FROM oidc_codes c JOIN oidc_grants g ON g.id = c.grant_id WHERE c.code_hash = $1";
    pub const CHALLENGE_INSERT: &str = "INSERT INTO ub_challenges \
         (nonce, impi, opaque, secrets_sealed, expires_at) VALUES ($1, $2, $3, $4, $5)";
    pub const CHALLENGE_TAKE: &str = "DELETE FROM ub_challenges WHERE nonce = $1 \
         RETURNING nonce, impi, opaque, secrets_sealed, expires_at";
    /// The trigger of migration 0003 removes the IMPI's earlier sessions.
    pub const BOOTSTRAP_INSERT: &str = "INSERT INTO bootstrap_sessions \
         (btid, impi, rand, ks_sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const SESSION_LOAD: &str =
        "SELECT data FROM login_sessions WHERE id = $1 AND expires_at > $2";
    pub const CONSENT_GET: &str = "SELECT impi, relying_party, shared, created_at \
         FROM consents WHERE impi = $1 AND relying_party = $2";
    pub const NONCE_RECORD: &str = "INSERT INTO openid2_nonces (nonce, expires_at) \
         VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING";
    pub const RATE_HIT: &str = "INSERT INTO rate_counters (key, window_start, count) \
         VALUES ($1, $2, 1) ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN rate_counters.window_start = excluded.window_start \
                        THEN rate_counters.count + 1 ELSE 1 END, \
           window_start = excluded.window_start \
         RETURNING count";
}

/// One authorization a subscriber gave an OpenID Connect client at `/authorize`, as every
/// code and token issued from it sees it (see [`GrantStore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: crate::oidc::grant::GrantId,
    pub client_id: crate::ids::ClientId,
    pub impi: Impi,
    /// The scopes granted (the token response names them, RFC 6749 §5.1).
    pub scope: crate::oidc::grant::Scopes,
    /// What the subscriber allowed the client to receive, space-separated, as
    /// [`ConsentRow::shared`].
    pub shared: String,
    /// When the subscriber logged in: `auth_time` of every ID token from this grant, refreshed
    /// ones included (Core §12.2).
    pub auth_time: OffsetDateTime,
    pub acr: Option<String>,
    /// The subscriber's OpenID 2.0 identifier at the request's `openid2_realm` (scope
    /// `openid2`; OpenID 2.0 → OpenID Connect Migration 1.0 §4), for every ID token's
    /// `openid2_id`.
    pub openid2_id: Option<String>,
}

/// An authorization code as stored: its hash, never the code (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub hash: crate::oidc::grant::TokenHash,
    /// The authorization request's `redirect_uri`, which the token request must repeat
    /// exactly (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// The authorization request's `nonce`, for the ID token (Core §3.1.2.1).
    pub nonce: Option<String>,
    /// The PKCE S256 challenge (RFC 7636 §4.2), if the client sent one.
    pub code_challenge: Option<crate::oidc::grant::CodeChallenge>,
    pub expires_at: OffsetDateTime,
}

/// What [`GrantStore::take_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per token request and matched at once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum CodeTake {
    /// This call redeemed the code; no other call ever will.
    Taken { grant: Grant, code: CodeRow },
    /// Redeemed before (RFC 6749 §4.1.2: "MUST deny the request and SHOULD revoke … all
    /// tokens previously issued based on that authorization code"): the caller answers
    /// `invalid_grant` and calls [`GrantStore::revoke_grant`] with this id.
    AlreadyUsed {
        grant_id: crate::oidc::grant::GrantId,
    },
    /// Unused, but its grant was revoked (the subscriber withdrew consent).
    GrantRevoked {
        grant_id: crate::oidc::grant::GrantId,
    },
    /// Unused and expired; nothing changed.
    Expired,
    /// No such code (or long swept).
    Unknown,
}

/// A refresh token as stored: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRow {
    pub hash: crate::oidc::grant::TokenHash,
    pub grant_id: crate::oidc::grant::GrantId,
    /// The token it replaced; `None` for the first one of a grant.
    pub parent: Option<crate::oidc::grant::TokenHash>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The successor a refresh request asks for; its grant and parent come from the old token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub hash: crate::oidc::grant::TokenHash,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What [`GrantStore::rotate_refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is now rotated and the new one stored: issue tokens from this grant.
    Rotated(Grant),
    /// The old token was rotated no more than `grace` ago: taken for a concurrent refresh by
    /// the same client (two requests in flight, or a retry after a lost response), not for a
    /// theft. The new token was stored as a second successor of the old one, and the caller
    /// answers exactly as for [`Rotation::Rotated`]: the client keeps whichever response it
    /// processes last, and the other successor expires unused. The old token itself stays
    /// dead; presented after the window it revokes the grant, and with it every successor.
    ReusedWithinGrace(Grant),
    /// The old token was rotated longer than `grace` ago: the grant has been revoked, in the
    /// same transaction (RFC 9700 §4.14.2). The caller answers `invalid_grant`.
    Reused {
        grant_id: crate::oidc::grant::GrantId,
    },
    /// Expired; nothing changed.
    Expired,
    /// Its grant is revoked; nothing changed.
    GrantRevoked {
        grant_id: crate::oidc::grant::GrantId,
    },
    /// No such token, or one issued to another client (RFC 6749 §6); nothing changed.
    Unknown,
}

/// OpenID Connect grants with their codes and refresh tokens (RFC 6749 §4.1, §6; RFC 9700
/// §2.2.2, §4.14). Codes and tokens are known only by their SHA-256. Every decision that
/// must happen once is made atomically by the database, so any number of processes agree.
#[async_trait]
pub trait GrantStore: Send + Sync + fmt::Debug {
    /// Stores a grant and its code in one transaction. The grant is kept until `keep_until`
    /// (at least the code's expiry; the caller passes the code's expiry plus the access-token
    /// lifetime) or while a refresh token of it lives, whichever is later.
    async fn insert_grant(
        &self,
        grant: &Grant,
        code: &CodeRow,
        created_at: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Redeems a code: [`CodeTake::Taken`] for exactly one call however many race, if the
    /// code is unused, unexpired at `now` and its grant live. The caller then checks client,
    /// `redirect_uri` and PKCE; a failed check leaves the code used.
    async fn take_code(
        &self,
        hash: &crate::oidc::grant::TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError>;

    /// Revokes a grant at `at`: no code of it is taken and no refresh token of it rotated any
    /// more, and [`GrantStore::is_grant_live`] says no. `false` if it was revoked already or
    /// does not exist.
    async fn revoke_grant(
        &self,
        id: &crate::oidc::grant::GrantId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Revokes every live grant a subscriber gave a client (consent withdrawn, client
    /// removed); returns how many.
    async fn revoke_grants_of(
        &self,
        impi: &Impi,
        client_id: &crate::ids::ClientId,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Whether the grant exists and is not revoked: `/userinfo` asks it for the grant an
    /// access token names.
    async fn is_grant_live(&self, id: &crate::oidc::grant::GrantId) -> Result<bool, StoreError>;

    /// The grant, if it exists and is not revoked.
    async fn grant(&self, id: &crate::oidc::grant::GrantId) -> Result<Option<Grant>, StoreError>;

    /// The live grant the refresh token with this hash was issued from, rotated or not;
    /// changes nothing (a refresh that asks for a scope the grant lacks is refused before
    /// the token is used up).
    async fn grant_of_refresh(
        &self,
        hash: &crate::oidc::grant::TokenHash,
    ) -> Result<Option<Grant>, StoreError>;

    /// Stores a grant's refresh token (the first, issued with the code's tokens). Stores
    /// nothing and returns `false` when the grant is revoked or gone (a second use of its
    /// code got there first).
    async fn insert_refresh(&self, row: &RefreshTokenRow) -> Result<bool, StoreError>;

    /// Exchanges the refresh token `old`, presented by `client_id`, for `new`: in one
    /// transaction, marks `old` rotated at `now` and stores `new` with `old`'s grant and
    /// `old` as its parent. See [`Rotation`] for the outcomes and `grace`.
    async fn rotate_refresh(
        &self,
        old: &crate::oidc::grant::TokenHash,
        client_id: &crate::ids::ClientId,
        new: &NewRefreshToken,
        now: OffsetDateTime,
        grace: time::Duration,
    ) -> Result<Rotation, StoreError>;

    /// Deletes refresh tokens that expired before `before`, then grants whose `keep_until`
    /// is before `before` and that have no refresh token left, with their codes; returns
    /// how many rows.
    async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// All aggregates of one database.
#[derive(Debug, Clone)]
pub struct Store {
    pub backend: Backend,
    pub subscribers: Arc<dyn SubscriberStore>,
    pub meta: Arc<dyn MetaStore>,
    pub signing_keys: Arc<dyn SigningKeyStore>,
    pub grants: Arc<dyn GrantStore>,
    pub clients: Arc<dyn ClientStore>,
    pub challenges: Arc<dyn ChallengeStore>,
    pub bootstraps: Arc<dyn BootstrapStore>,
    pub nafs: Arc<dyn NafStore>,
    pub rates: Arc<dyn RateStore>,
    pub login_sessions: Arc<dyn LoginSessionStore>,
    pub ua_nonces: Arc<dyn UaNonceStore>,
    pub openid2: Arc<dyn Openid2Store>,
    pub consents: Arc<dyn ConsentStore>,
    pub realm_policies: Arc<dyn RealmPolicyStore>,
    pub profiles: Arc<dyn ProfileStore>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let store = Arc::new(SqliteStore::connect(url).await?);
            store.migrate().await?;
            Ok(Self::from_sqlite(store))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let store = Arc::new(PgStore::connect(url).await?);
            store.migrate().await?;
            Ok(Self::from_pg(store))
        } else {
            Err(StoreError::UnknownScheme(redact_url(url)))
        }
    }

    pub fn from_sqlite(store: Arc<SqliteStore>) -> Self {
        Self {
            backend: Backend::Sqlite,
            subscribers: store.clone(),
            meta: store.clone(),
            signing_keys: store.clone(),
            grants: store.clone(),
            clients: store.clone(),
            challenges: store.clone(),
            bootstraps: store.clone(),
            nafs: store.clone(),
            rates: store.clone(),
            login_sessions: store.clone(),
            ua_nonces: store.clone(),
            openid2: store.clone(),
            consents: store.clone(),
            profiles: store.clone(),
            realm_policies: store,
        }
    }

    pub fn from_pg(store: Arc<PgStore>) -> Self {
        Self {
            backend: Backend::Postgres,
            subscribers: store.clone(),
            meta: store.clone(),
            signing_keys: store.clone(),
            grants: store.clone(),
            clients: store.clone(),
            challenges: store.clone(),
            bootstraps: store.clone(),
            nafs: store.clone(),
            rates: store.clone(),
            login_sessions: store.clone(),
            ua_nonces: store.clone(),
            openid2: store.clone(),
            consents: store.clone(),
            profiles: store.clone(),
            realm_policies: store,
        }
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // set_password fails only for URLs that cannot have one, which this one has.
            let _ = parsed.set_password(Some("[redacted]"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

/// The SQN step of [`Sqn::next`] in SQL, for both databases: SEQ + 1 (wrapping at 43 bits)
/// and IND + 1 mod 32. Both SQLite and PostgreSQL give `<<`, `>>`, `&`, `|` one precedence
/// level, so every step is parenthesised.
const NEXT_SQN_SQL: &str = "UPDATE subscribers \
     SET sqn = ((((sqn >> 5) + 1) & 8796093022207) << 5) | ((sqn + 1) & 31) \
     WHERE impi = $1 \
     RETURNING k_sealed, opc_sealed, amf, sqn";

const RAISE_SQN_SQL: &str = "UPDATE subscribers SET sqn = CASE WHEN sqn < $2 THEN $2 ELSE sqn END \
     WHERE impi = $1 RETURNING sqn";

const INFO_COLUMNS: &str = "impi, msisdn, amf, sqn, created_at";

/// Rows per multi-row INSERT in [`SubscriberStore::insert_all`]: 7 parameters a row stays
/// well below both databases' parameter limits.
const INSERT_CHUNK: usize = 500;

fn row_to_info(
    impi: String,
    msisdn: Option<String>,
    amf: i64,
    sqn: i64,
    created_at: i64,
) -> Result<SubscriberInfo, StoreError> {
    Ok(SubscriberInfo {
        impi: parse_impi(&impi)?,
        msisdn: msisdn
            .map(|m| {
                m.parse()
                    .map_err(|e| StoreError::Corrupt(format!("msisdn: {e}")))
            })
            .transpose()?,
        amf: amf_from_db(amf)?,
        sqn: sqn_from_db(sqn)?,
        created_at: time_from_db(created_at)?,
    })
}

fn parse_impi(text: &str) -> Result<Impi, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("impi: {e}")))
}

fn amf_from_db(value: i64) -> Result<Amf, StoreError> {
    u16::try_from(value)
        .map(|v| Amf(v.to_be_bytes()))
        .map_err(|_| StoreError::Corrupt(format!("amf {value} is not 16 bits")))
}

fn amf_to_db(amf: Amf) -> i64 {
    i64::from(u16::from_be_bytes(amf.0))
}

fn sqn_from_db(value: i64) -> Result<Sqn, StoreError> {
    u64::try_from(value)
        .ok()
        .and_then(Sqn::new)
        .ok_or_else(|| StoreError::Corrupt(format!("sqn {value} is not 48 bits")))
}

fn sqn_to_db(sqn: Sqn) -> i64 {
    // 48 bits always fit in i64.
    sqn.value() as i64
}

fn time_from_db(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(value)
        .map_err(|_| StoreError::Corrupt(format!("timestamp {value} is out of range")))
}

fn rand_from_db(bytes: Vec<u8>) -> Result<[u8; 16], StoreError> {
    <[u8; 16]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("rand of {} bytes", bytes.len())))
}

fn sealed_keys(
    k_sealed: Vec<u8>,
    opc_sealed: Vec<u8>,
    amf: i64,
    sqn: i64,
) -> Result<SealedKeys, StoreError> {
    Ok(SealedKeys {
        k_sealed,
        opc_sealed,
        amf: amf_from_db(amf)?,
        sqn: sqn_from_db(sqn)?,
    })
}

/// Maps a unique-constraint violation on `subscribers` to [`StoreError::Duplicate`], naming
/// the column the database reports.
fn subscriber_duplicate(err: sqlx::Error, row: &SubscriberRow) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let message = db.message().to_owned() + db.constraint().unwrap_or("");
            if message.contains("msisdn") {
                StoreError::Duplicate {
                    what: "MSISDN",
                    key: row
                        .msisdn
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                }
            } else {
                StoreError::Duplicate {
                    what: "IMPI",
                    key: row.impi.to_string(),
                }
            }
        }
        _ => StoreError::Database(err),
    }
}

/// Tracks the IMPIs and MSISDNs a batch insert must not collide with: those already in the
/// database (looked up chunk by chunk) and those of earlier rows of the same batch.
#[derive(Debug, Default)]
struct DuplicateCheck {
    impis: std::collections::HashSet<String>,
    msisdns: std::collections::HashSet<String>,
}

impl DuplicateCheck {
    fn existing(&mut self, impi: String, msisdn: Option<String>) {
        self.impis.insert(impi);
        self.msisdns.extend(msisdn);
    }

    /// Checks `rows` (starting at batch index `offset`) and remembers them.
    fn admit(&mut self, rows: &[SubscriberRow], offset: usize) -> Result<(), StoreError> {
        for (i, row) in rows.iter().enumerate() {
            if !self.impis.insert(row.impi.to_string()) {
                return Err(StoreError::DuplicateInBatch {
                    index: offset + i,
                    what: "IMPI",
                    key: row.impi.to_string(),
                });
            }
            if let Some(msisdn) = &row.msisdn
                && !self.msisdns.insert(msisdn.to_string())
            {
                return Err(StoreError::DuplicateInBatch {
                    index: offset + i,
                    what: "MSISDN",
                    key: msisdn.to_string(),
                });
            }
        }
        Ok(())
    }
}
