//! Opening a deployment: the data directory, the database (with migrations), the master key
//! and its check against the database, and the services built on them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::hss::Hss;
use crate::secret::{KEY_CHECK_PLAINTEXT, MasterKeyError, Sealer, key_check_context};
use crate::store::{Backend, Store, StoreError};

/// The environment variable that carries the master key as 64 hex digits.
pub const MASTER_KEY_ENV: &str = "AKAID_MASTER_KEY";
const KEY_FILE_NAME: &str = "master.key";
const KEY_CHECK: &str = "key_check";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(
        "the master key from {0} is not the key this database was created with \
         (its key check does not open); give the right key in {MASTER_KEY_ENV} or \
         master_key_file"
    )]
    WrongMasterKey(String),
    #[error(
        "this database already holds sealed secrets but the master key file {0} is missing; \
         restore it, or give the key in {MASTER_KEY_ENV} or master_key_file"
    )]
    KeyFileMissing(PathBuf),
    #[error(
        "an OP without the BSF role reaches the BSF over Zn and needs zn_secret \
         (AKAID_ZN_SECRET): register this OP with `akaid naf add <its host>` on the BSF"
    )]
    ZnSecretMissing,
    #[error("cannot set up the Zn client: {0}")]
    ZnClient(String),
    #[error(
        "a PostgreSQL database is shared by several processes, which need the same master key: \
         give it in {MASTER_KEY_ENV} (64 hex digits) or with --master-key-file"
    )]
    PostgresNeedsKey,
}

/// Where the master key came from; said in logs and errors, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
    /// A new key file, created because this is the first run on this data directory.
    Created(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str(MASTER_KEY_ENV),
            Self::File(p) | Self::Created(p) => write!(f, "key file {}", p.display()),
        }
    }
}

/// An open deployment.
#[derive(Debug, Clone)]
pub struct Context {
    pub config: Config,
    pub store: Store,
    pub sealer: Arc<Sealer>,
    pub clock: Arc<dyn Clock>,
    pub hss: Hss,
    pub key_source: KeySource,
}

impl Context {
    /// Opens the deployment `config` describes; `env` looks up `AKAID_MASTER_KEY`.
    pub async fn open(
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, OpenError> {
        let url = config.database_url();
        if config.is_sqlite() {
            create_private_dir(&config.data_dir)?;
            if let Some(file) = sqlite_file(&url) {
                if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                    create_private_dir(parent)?;
                }
                create_private_file(&file)?;
            }
        }
        let store = Store::open(&url).await?;
        let has_check = store.meta.get(KEY_CHECK).await?.is_some();
        let (sealer, key_source) = load_master_key(&config, store.backend, env, has_check)?;
        verify_key_check(&store, &sealer, &key_source).await?;
        if let KeySource::Created(path) = &key_source {
            tracing::warn!(
                path = %path.display(),
                "created a new master key file; back it up: without it the sealed subscriber \
                 keys in this database cannot be opened"
            );
        }
        let sealer = Arc::new(sealer);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let hss = Hss::new(store.subscribers.clone(), sealer.clone(), clock.clone());
        Ok(Self {
            config,
            store,
            sealer,
            clock,
            hss,
            key_source,
        })
    }
}

impl Context {
    /// The BSF service over this deployment, set up from the configuration.
    pub fn bsf(&self) -> crate::gba::bsf::Bsf {
        let c = &self.config;
        crate::gba::bsf::Bsf::new(
            self.hss.clone(),
            self.store.clone(),
            self.sealer.clone(),
            self.clock.clone(),
            crate::gba::bsf::BsfSettings {
                host: c.bsf_url.host_str().unwrap_or_default().to_owned(),
                challenge_ttl: time::Duration::seconds(
                    i64::try_from(c.ub_challenge_ttl_secs).unwrap_or(i64::MAX),
                ),
                lifetime: time::Duration::seconds(
                    i64::try_from(c.bootstrap_lifetime_secs).unwrap_or(i64::MAX),
                ),
                limit_per_impi: c.ub_limit_per_impi,
                limit_per_ip: c.ub_limit_per_ip,
                trusted_proxies: c.trusted_proxies.clone(),
            },
        )
    }

    /// The key service the OP uses: the BSF in this process when this process runs it,
    /// else the BSF at `bsf_url` over Zn with `zn_secret`.
    pub fn key_service(&self) -> Result<Arc<dyn crate::gba::zn::KeyService>, OpenError> {
        if self.config.roles.bsf {
            return Ok(Arc::new(self.bsf().key_service().clone()));
        }
        let secret = self
            .config
            .zn_secret
            .as_ref()
            .ok_or(OpenError::ZnSecretMissing)?;
        crate::gba::zn::HttpKeyService::new(&self.config.bsf_url, secret.0.clone())
            .map(|k| Arc::new(k) as Arc<dyn crate::gba::zn::KeyService>)
            .map_err(|e| OpenError::ZnClient(e.to_string()))
    }

    /// The OpenID Connect signing keys, loaded; the first key of each algorithm is created
    /// when there is none. Whoever serves them spawns [`crate::oidc::keys::KeyRing::maintain`].
    pub async fn key_ring(
        &self,
    ) -> Result<crate::oidc::keys::KeyRing, crate::oidc::keys::KeyError> {
        crate::oidc::keys::KeyRing::open(
            self.store.signing_keys.clone(),
            self.sealer.clone(),
            self.clock.clone(),
            self.config.oidc_key_overlap(),
        )
        .await
    }

    /// Replaces the clock (tests fix time with [`crate::clock::FixedClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.hss = Hss::new(
            self.store.subscribers.clone(),
            self.sealer.clone(),
            clock.clone(),
        );
        self.clock = clock;
        self
    }
}

fn create_private_dir(path: &Path) -> Result<(), OpenError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path).map_err(|source| OpenError::DataDir {
        path: path.to_owned(),
        source,
    })
}

/// The SQLite database file a URL names, if it names one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Creates an empty database file readable by its owner only, unless it exists. SQLite
/// gives its -wal and -shm files the same mode.
fn create_private_file(path: &Path) -> Result<(), OpenError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(OpenError::DataDir {
            path: path.to_owned(),
            source,
        }),
    }
}

fn load_master_key(
    config: &Config,
    backend: Backend,
    env: &dyn Fn(&str) -> Option<String>,
    has_check: bool,
) -> Result<(Sealer, KeySource), OpenError> {
    if let Some(hex) = env(MASTER_KEY_ENV).filter(|v| !v.trim().is_empty()) {
        let hex = crate::secret::Secret::new(hex);
        return Ok((Sealer::from_hex(hex.expose())?, KeySource::Env));
    }
    if let Some(path) = &config.master_key_file {
        return Ok((Sealer::from_file(path)?, KeySource::File(path.clone())));
    }
    if backend == Backend::Postgres {
        return Err(OpenError::PostgresNeedsKey);
    }
    let path = config.data_dir.join(KEY_FILE_NAME);
    if path.exists() {
        Ok((Sealer::from_file(&path)?, KeySource::File(path)))
    } else if has_check {
        Err(OpenError::KeyFileMissing(path))
    } else {
        Ok((Sealer::create_file(&path)?, KeySource::Created(path)))
    }
}

/// Stores the key-check value on first use; afterwards, opening it proves the key is right.
async fn verify_key_check(
    store: &Store,
    sealer: &Sealer,
    source: &KeySource,
) -> Result<(), OpenError> {
    let fresh = sealer.seal(key_check_context(), KEY_CHECK_PLAINTEXT);
    // get_or_insert returns the stored value: ours, or one another process stored first.
    let stored = store.meta.get_or_insert(KEY_CHECK, &fresh).await?;
    match sealer.open(key_check_context(), &stored) {
        Ok(plain) if plain.expose() == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => Err(OpenError::WrongMasterKey(source.to_string())),
    }
}
