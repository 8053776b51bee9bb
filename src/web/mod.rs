//! Shared HTTP: the application state, the routers of the OP and BSF listeners, the
//! health endpoint, and the client address behind trusted proxies.

pub mod account;
pub mod client_ip;
pub mod consent;
pub mod consent_cache;
pub mod i18n;
pub mod pages;
pub mod scrape;
pub mod session;
pub mod ttl_cache;
pub mod ua;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::context::Context;
use crate::gba::bsf::{Bsf, bsf_bootstrap_get, bsf_zn_post};

/// How long the per-process caches of [`Shared`] reuse a read: what the operator changes
/// (a client removed, an MSISDN changed) reaches every process within this time.
pub const READ_TTL: time::Duration = time::Duration::seconds(5);

/// What handlers share: one allocation behind an `Arc`, so the clone every extractor
/// makes is a reference count, not a copy of the configuration.
#[derive(Debug, Clone)]
pub struct AppState(std::sync::Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub ctx: Context,
    pub bsf: Bsf,
    /// Where the OP gets Ks_NAF: in process, or over Zn (DESIGN.md §2.4).
    pub keys: std::sync::Arc<dyn crate::gba::zn::KeyService>,
    /// The OP's Ua login (DESIGN.md §2.5).
    pub ua: ua::Ua,
    /// The OpenID 2.0 provider.
    pub op: crate::openid2::endpoint::Op,
    /// Remembered consents of both protocols, through a short-lived cache.
    pub consents: consent_cache::ConsentCache,
    /// Registered OpenID Connect clients, read at every `/authorize` and `/token`; a removed
    /// client stops working within [`READ_TTL`] in every process.
    pub clients: ttl_cache::TtlCache<crate::store::OidcClient>,
    /// Subscribers' MSISDNs (`None`: a subscriber without one), read at every login that may
    /// release the phone number.
    pub msisdns: ttl_cache::TtlCache<Option<String>>,
    /// The OpenID Connect signing keys: loaded by [`AppState::open`] and
    /// [`AppState::open_for_roles`]; empty in a state from [`AppState::new`].
    pub key_ring: std::sync::Arc<crate::oidc::keys::KeyRing>,
}

impl AppState {
    /// The state for a process running both roles (tests, the default), without the OpenID
    /// Connect signing keys (opening them is async: [`Self::open`] does): enough for the BSF
    /// and OpenID 2.0; `/jwks` answers 503 and nothing can be signed.
    pub fn new(ctx: Context) -> Self {
        let bsf = ctx.bsf();
        let keys: std::sync::Arc<dyn crate::gba::zn::KeyService> =
            std::sync::Arc::new(bsf.key_service().clone());
        let key_ring = unloaded_key_ring(&ctx);
        Self::assemble(ctx, bsf, keys, key_ring)
    }

    /// The state for a process running both roles, with the signing keys loaded (the first
    /// key of each algorithm is created when there is none).
    pub async fn open(ctx: Context) -> Result<Self, ServeError> {
        let key_ring = std::sync::Arc::new(ctx.key_ring().await?);
        let bsf = ctx.bsf();
        let keys: std::sync::Arc<dyn crate::gba::zn::KeyService> =
            std::sync::Arc::new(bsf.key_service().clone());
        Ok(Self::assemble(ctx, bsf, keys, key_ring))
    }

    /// The state for the roles `ctx.config.roles` names, the signing keys loaded when it runs
    /// the OP; fails when an OP without the BSF role has no Zn secret.
    pub async fn open_for_roles(ctx: Context) -> Result<Self, ServeError> {
        let key_ring = match ctx.config.roles.op {
            true => std::sync::Arc::new(ctx.key_ring().await?),
            false => unloaded_key_ring(&ctx),
        };
        let keys = ctx.key_service()?;
        let bsf = ctx.bsf();
        Ok(Self::assemble(ctx, bsf, keys, key_ring))
    }

    fn assemble(
        ctx: Context,
        bsf: Bsf,
        keys: std::sync::Arc<dyn crate::gba::zn::KeyService>,
        key_ring: std::sync::Arc<crate::oidc::keys::KeyRing>,
    ) -> Self {
        let host = ctx.config.public_url.host_str().unwrap_or("localhost");
        let ua = ua::Ua::new(host, keys.clone(), ctx.store.clone(), ctx.clock.clone())
            .unwrap_or_else(|_| {
                // A host name too long for a NAF_Id cannot come from a parsed URL's host;
                // fall back to a valid one rather than fail.
                #[allow(clippy::expect_used)]
                ua::Ua::new(
                    "localhost",
                    keys.clone(),
                    ctx.store.clone(),
                    ctx.clock.clone(),
                )
                .expect("localhost is a valid NAF FQDN")
            });
        let op = crate::openid2::endpoint::Op::new(&ctx.config);
        Self(std::sync::Arc::new(Shared {
            ctx,
            bsf,
            keys,
            ua,
            op,
            consents: consent_cache::ConsentCache::default(),
            clients: ttl_cache::TtlCache::new(READ_TTL),
            msisdns: ttl_cache::TtlCache::new(READ_TTL),
            key_ring,
        }))
    }

    /// The state for the roles `ctx.config.roles` names, without the signing keys (as
    /// [`Self::new`]; [`Self::open_for_roles`] loads them); fails when an OP without the BSF
    /// role has no Zn secret.
    pub fn for_roles(ctx: Context) -> Result<Self, crate::context::OpenError> {
        let keys = ctx.key_service()?;
        let bsf = ctx.bsf();
        let key_ring = unloaded_key_ring(&ctx);
        Ok(Self::assemble(ctx, bsf, keys, key_ring))
    }
}

fn unloaded_key_ring(ctx: &Context) -> std::sync::Arc<crate::oidc::keys::KeyRing> {
    std::sync::Arc::new(crate::oidc::keys::KeyRing::unloaded(
        ctx.store.signing_keys.clone(),
        ctx.sealer.clone(),
        ctx.clock.clone(),
        ctx.config.oidc_key_overlap(),
    ))
}

impl axum::extract::FromRef<AppState> for Bsf {
    fn from_ref(state: &AppState) -> Self {
        state.bsf.clone()
    }
}

/// The OP listener's routes.
pub fn op_router(state: AppState) -> Router {
    use crate::oidc::discovery::paths;
    use crate::oidc::endpoint as oidc;
    use crate::openid2::endpoint as openid2;
    let sessions = session::layer(
        session::SessionDb::new(
            state.ctx.store.login_sessions.clone(),
            state.ctx.clock.clone(),
        ),
        state.ctx.config.public_url.scheme() == "https",
    );
    Router::new()
        .route("/", get(openid2::openid2_op_identifier_get))
        .route("/xrds", get(openid2::openid2_xrds_get))
        .route(
            "/openid",
            get(openid2::openid2_endpoint).post(openid2::openid2_endpoint),
        )
        .route("/openid/consent", post(openid2::openid2_consent_post))
        .route("/id/{pseudonym}", get(openid2::openid2_identifier_get))
        .route(
            "/id/{pseudonym}/xrds",
            get(openid2::openid2_identifier_xrds_get),
        )
        .route(
            paths::AUTHORIZE,
            get(oidc::oidc_authorize_get).post(oidc::oidc_authorize_get),
        )
        .route("/authorize/consent", post(oidc::oidc_consent_post))
        .route(
            paths::LOGOUT,
            get(oidc::oidc_logout_get).post(oidc::oidc_logout_get),
        )
        .route("/account", get(account::account_get))
        .route("/account/revoke", post(account::account_revoke_post))
        .route("/static/{file}", get(pages::web_static_get))
        .layer(sessions)
        .route(paths::DISCOVERY, get(oidc::oidc_discovery_get))
        .route(paths::JWKS, get(oidc::oidc_jwks_get))
        .route(
            paths::TOKEN,
            post(oidc::oidc_token_post).options(oidc::oidc_api_options),
        )
        .route(
            paths::USERINFO,
            get(oidc::oidc_userinfo_get)
                .post(oidc::oidc_userinfo_get)
                .options(oidc::oidc_api_options),
        )
        .route("/healthz", get(web_healthz_get))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::finish,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state)
}

/// The BSF listener's routes: Ub at `/`, Zn at `/zn/bootstrapping-info`.
pub fn bsf_router(state: AppState) -> Router {
    Router::new()
        .route("/", get(bsf_bootstrap_get).post(bsf_bootstrap_get))
        .route("/zn/bootstrapping-info", axum::routing::post(bsf_zn_post))
        .route("/healthz", get(web_healthz_get))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers, 503 otherwise.
async fn web_healthz_get(State(state): State<AppState>) -> Response {
    match state.ctx.store.meta.get("key_check").await {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "database"})),
            )
                .into_response()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (from {what}): {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{0} has no host or port")]
    NoAddress(&'static str),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Open(#[from] crate::context::OpenError),
    #[error("cannot load the OpenID Connect signing keys: {0}")]
    Keys(#[from] crate::oidc::keys::KeyError),
    #[error(transparent)]
    InsecureIssuer(#[from] crate::oidc::discovery::InsecureIssuer),
}

/// Binds the listener for a configured URL (`host:port` of `public_url` or `bsf_url`).
pub async fn bind(
    what: &'static str,
    url: &url::Url,
) -> Result<tokio::net::TcpListener, ServeError> {
    let host = url.host_str().ok_or(ServeError::NoAddress(what))?;
    let port = url
        .port_or_known_default()
        .ok_or(ServeError::NoAddress(what))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|source| ServeError::Bind {
            what,
            addr: format!("{host}:{port}"),
            source,
        })
}

/// Refuses to serve an OP whose issuer would be plain `http://` outside loopback unless
/// `insecure_http` is set (DESIGN.md §2.7, Discovery 1.0 §3).
pub fn check_public_url(config: &crate::config::Config) -> Result<(), ServeError> {
    if config.roles.op {
        crate::oidc::discovery::check_issuer_url(&config.public_url, config.insecure_http)?;
    }
    Ok(())
}

/// Runs the OP and BSF listeners until Ctrl-C or SIGTERM.
pub async fn serve(ctx: Context) -> Result<(), ServeError> {
    check_public_url(&ctx.config)?;
    let op = match ctx.config.roles.op {
        true => Some(bind("public_url", &ctx.config.public_url).await?),
        false => None,
    };
    let bsf = match ctx.config.roles.bsf {
        true => Some(bind("bsf_url", &ctx.config.bsf_url).await?),
        false => None,
    };
    tracing::info!(
        op = %ctx.config.public_url,
        bsf = %ctx.config.bsf_url,
        database = %crate::store::redact_url(&ctx.config.database_url()),
        master_key = %ctx.key_source,
        roles = %ctx.config.roles,
        "akaid serving"
    );
    let state = AppState::open_for_roles(ctx).await?;
    if state.ctx.config.roles.op {
        tokio::spawn(
            state
                .key_ring
                .clone()
                .maintain(crate::oidc::keys::RELOAD_EVERY),
        );
    }
    let sweeper = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            sweep(&sweeper).await;
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let serve_one = |listener, router: Router| serve_until(listener, router, stop_rx.clone());
    let signalled = shutdown_signal();
    let mut tasks = Vec::new();
    if let Some(listener) = op {
        tasks.push(tokio::spawn(serve_one(listener, op_router(state.clone()))));
    }
    if let Some(listener) = bsf {
        tasks.push(tokio::spawn(serve_one(listener, bsf_router(state.clone()))));
    }
    signalled.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    for task in tasks {
        task.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// Deletes expired state: Ub challenges and bootstrapping sessions, login sessions, Ua
/// nonces, OpenID 2.0 associations and response nonces, OpenID Connect grants past their
/// codes and refresh tokens. Every process sweeps; the deletes
/// are idempotent.
pub async fn sweep(state: &AppState) {
    match state.bsf.sweep().await {
        Ok((c, s)) if c + s > 0 => {
            tracing::debug!(challenges = c, sessions = s, "swept expired GBA state");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "sweeping expired GBA state failed"),
    }
    let now = state.ctx.clock.now();
    let store = &state.ctx.store;
    let swept = async {
        Ok::<_, crate::store::StoreError>((
            store.login_sessions.sweep(now).await?,
            store.ua_nonces.sweep(now).await?,
            store.openid2.sweep(now).await?,
            store.grants.sweep(now).await?,
        ))
    };
    match swept.await {
        Ok((l, u, o, g)) if l + u + o + g > 0 => {
            tracing::debug!(
                login_sessions = l,
                ua_nonces = u,
                openid2 = o,
                oidc_grants = g,
                "swept expired OP state"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "sweeping expired OP state failed"),
    }
}

/// The `application/x-www-form-urlencoded` pairs of a body or a query string, in order.
pub fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// A protocol request's parameters: the form body of a POST, the query string otherwise
/// (OpenID 2.0 §4.1.2, OpenID Connect Core §3.1.2.1).
pub fn request_pairs(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Vec<(String, String)> {
    if method == axum::http::Method::POST {
        form_pairs(body)
    } else {
        form_pairs(uri.query().unwrap_or("").as_bytes())
    }
}

/// Serves `router` on `listener` (with the peer address for rate limits and logs) until
/// `stop` changes or its sender goes, then finishes the requests in flight.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop.changed().await;
    })
    .await
}

/// Resolves at Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives in between (say, right after a command
/// printed that it is ready) is not lost to the default action, which would kill the process
/// before it cleans up.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
