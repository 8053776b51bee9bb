//! Test helpers: databases for both backends, test subscribers, the real binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::sync::Arc;

use akaid::clock::SystemClock;
use akaid::hss::{Hss, NewSubscriber, SubscriberFields};
use akaid::secret::{Sealer, Secret};
use akaid::store::{PgStore, SqliteStore, Store};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// A database for one test; the SQLite file lives as long as this value.
pub struct TestDb {
    pub store: Store,
    pub sqlite: Option<SqliteStore>,
    pub pg: Option<PgStore>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("akaid.db").display());
    let store = Store::open(&url).await.unwrap();
    let raw = SqliteStore::connect(&url).await.unwrap();
    TestDb {
        store,
        sqlite: Some(raw),
        pg: None,
        _dir: Some(dir),
    }
}

/// The test PostgreSQL URL, or `None` (the test is skipped) unless PostgreSQL is required.
fn test_postgres_url() -> Option<String> {
    match std::env::var("AKAID_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("AKAID_REQUIRE_POSTGRES").is_none(),
                "AKAID_REQUIRE_POSTGRES is set but AKAID_TEST_POSTGRES_URL is not"
            );
            eprintln!("skipped: set AKAID_TEST_POSTGRES_URL to run PostgreSQL tests");
            None
        }
    }
}

/// A fresh schema in the test PostgreSQL database, or `None` (test skipped) without one.
pub async fn postgres() -> Option<TestDb> {
    let url = test_postgres_url()?;
    let schema = fresh_schema(&url).await;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let store = Arc::new(PgStore::connect_with(options).await.unwrap());
    store.migrate().await.unwrap();
    Some(TestDb {
        store: Store::from_pg(store.clone()),
        sqlite: None,
        pg: Some((*store).clone()),
        _dir: None,
    })
}

/// Creates `akaid_test_<unix time>_<random>` and drops such schemas older than an hour, so
/// runs neither collide nor pile up.
async fn fresh_schema(url: &str) -> String {
    let mut admin = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("AKAID_TEST_POSTGRES_URL: cannot connect: {e}"));
    let now = akaid::clock::Clock::now(&akaid::clock::SystemClock)
        .unix_timestamp()
        .unsigned_abs();
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'akaid_test_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for name in old {
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if created + 3600 < now {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut admin)
                .await;
        }
    }
    let schema = format!("akaid_test_{now}_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    schema
}

pub fn sealer() -> Arc<Sealer> {
    Arc::new(Sealer::new(&Secret::new([0x5a; 32])))
}

pub fn hss(db: &TestDb) -> Hss {
    Hss::new(
        db.store.subscribers.clone(),
        sealer(),
        Arc::new(SystemClock),
    )
}

/// TS 35.208 test set 1's K and OPc.
pub const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
pub const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";

pub fn subscriber(impi: &str) -> NewSubscriber {
    SubscriberFields {
        impi,
        k: K,
        opc: Some(OPC),
        ..SubscriberFields::default()
    }
    .parse()
    .unwrap()
}

/// The USIM's keys for [`subscriber`]: K and OPc of TS 35.208 test set 1.
pub fn test_keys() -> akaid::aka::SubscriberKeys {
    subscriber("keys@x").keys
}

/// Runs the real `akaid` binary with `--data-dir dir`.
pub fn akaid(dir: &Path, args: &[&str]) -> Output {
    akaid_env(dir, args, &[])
}

pub fn akaid_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_akaid"));
    cmd.current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env_remove("AKAID_MASTER_KEY")
        .env_remove("AKAID_DATABASE_URL")
        .env("AKAID_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs both backends' versions of each named test body `async fn name(db: TestDb)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::sqlite().await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::support::postgres().await {
                        super::$name(db).await;
                    }
                }
            )+
        }
    };
}

/// The PostgreSQL URL with `search_path` pinned to a new schema, for child processes.
pub async fn postgres_url_with_fresh_schema() -> Option<String> {
    let url = test_postgres_url()?;
    let schema = fresh_schema(&url).await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-csearch_path%3D{schema}"))
}

/// A BSF (and OP) served in process on 127.0.0.1 ports of its own, on SQLite.
pub struct TestServer {
    pub bsf_url: url::Url,
    pub ctx: akaid::context::Context,
    _dir: tempfile::TempDir,
}

pub async fn bsf_server(
    tweak: impl FnOnce(&mut akaid::config::Config),
    clock: Option<Arc<dyn akaid::clock::Clock>>,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = akaid::config::Config::with_data_dir(&dir.path().join("data"));
    config.bsf_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    tweak(&mut config);
    let mut ctx = akaid::context::Context::open(config, &|_| None)
        .await
        .unwrap();
    if let Some(clock) = clock {
        ctx = ctx.with_clock(clock);
    }
    let app = akaid::bsf_router(akaid::AppState::new(ctx.clone()));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    TestServer {
        bsf_url: ctx.config.bsf_url.clone(),
        ctx,
        _dir: dir,
    }
}

/// A free port on 127.0.0.1 (bound, then released) for a child process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The OP and the BSF served in process, each on its own 127.0.0.1 port, on SQLite.
pub struct OpServer {
    pub op_url: url::Url,
    pub bsf_url: url::Url,
    pub ctx: akaid::context::Context,
    /// What the handlers share (the OpenID Connect key ring, for one).
    pub state: akaid::AppState,
    _dir: tempfile::TempDir,
}

/// The OP and BSF, with configuration changes made by `configure` before they start; the
/// OpenID Connect signing keys are loaded (and created on first use) as `serve` does.
pub async fn op_server_with(
    clock: Option<Arc<dyn akaid::clock::Clock>>,
    configure: impl FnOnce(&mut akaid::config::Config),
) -> OpServer {
    let dir = tempfile::tempdir().unwrap();
    let op = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bsf = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = akaid::config::Config::with_data_dir(&dir.path().join("data"));
    config.public_url = format!("http://127.0.0.1:{}/", op.local_addr().unwrap().port())
        .parse()
        .unwrap();
    config.bsf_url = format!("http://127.0.0.1:{}/", bsf.local_addr().unwrap().port())
        .parse()
        .unwrap();
    configure(&mut config);
    let mut ctx = akaid::context::Context::open(config, &|_| None)
        .await
        .unwrap();
    if let Some(clock) = clock {
        ctx = ctx.with_clock(clock);
    }
    let state = akaid::AppState::open(ctx.clone()).await.unwrap();
    for (listener, app) in [
        (op, akaid::op_router(state.clone())),
        (bsf, akaid::bsf_router(state.clone())),
    ] {
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap()
        });
    }
    OpServer {
        op_url: ctx.config.public_url.clone(),
        bsf_url: ctx.config.bsf_url.clone(),
        ctx,
        state,
        _dir: dir,
    }
}

/// A relying party from `tests/interop/` (python or node), running as a child process while
/// this lives. It prints `listening <url>` as its first line.
pub struct RpProcess {
    child: Child,
    pub url: String,
}

impl Drop for RpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RpProcess {
    /// `tests/interop/python/<script>`; `None` (the test is skipped) when no interpreter with
    /// tests/interop/python/requirements.txt is configured, unless `AKAID_REQUIRE_INTEROP=1`,
    /// as in CI.
    pub fn python(script: &str) -> Option<Self> {
        let python = match std::env::var("AKAID_TEST_PYTHON") {
            Ok(p) => p,
            Err(_) => {
                assert!(
                    std::env::var("AKAID_REQUIRE_INTEROP").as_deref() != Ok("1"),
                    "AKAID_REQUIRE_INTEROP=1 but AKAID_TEST_PYTHON (a python with \
                     tests/interop/python/requirements.txt) is not set"
                );
                eprintln!("skipped: AKAID_TEST_PYTHON is not set");
                return None;
            }
        };
        let script = format!(
            "{}/tests/interop/python/{script}",
            env!("CARGO_MANIFEST_DIR")
        );
        Some(Self::spawn(&python, &script))
    }

    /// `tests/interop/node/<script>` (after `npm ci` there): skipped unless
    /// `AKAID_TEST_NODE=1`, required with `AKAID_REQUIRE_INTEROP=1`.
    pub fn node(script: &str) -> Option<Self> {
        if std::env::var("AKAID_TEST_NODE").as_deref() != Ok("1") {
            assert!(
                std::env::var("AKAID_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "AKAID_REQUIRE_INTEROP=1 but AKAID_TEST_NODE=1 (npm ci in tests/interop/node) \
                 is not set"
            );
            eprintln!("skipped: AKAID_TEST_NODE is not set");
            return None;
        }
        let script = format!("{}/tests/interop/node/{script}", env!("CARGO_MANIFEST_DIR"));
        Some(Self::spawn("node", &script))
    }

    fn spawn(program: &str, script: &str) -> Self {
        let mut child = Command::new(program)
            .args([script, "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{script} printed {line:?}"))
            .to_owned();
        Self { child, url }
    }

    pub fn login_url(&self, op: &url::Url, query: &str) -> url::Url {
        let identifier: String =
            url::form_urlencoded::byte_serialize(op.as_str().as_bytes()).collect();
        format!("{}login?identifier={identifier}&{query}", self.url)
            .parse()
            .unwrap()
    }

    pub async fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path_and_query}", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
