//! `akaid demo` (DESIGN.md §4): a first look at akaid on one machine. It starts the OP and the
//! BSF on SQLite in a data directory of their own, provisions a demo subscriber (published
//! test keys, so the software handset and the GBA proxy can play its SIM), registers the demo
//! site as an OpenID Connect client, and serves the demo relying-party site ([`site`]), which
//! signs in with both protocols and shows what it verified.
//!
//! Everything here is for demonstration: the subscriber's K and OPc are TS 35.208 test set 1,
//! printed on purpose. Nothing about the demo is special inside the OP: the site is a relying
//! party like any other, found by relying-party discovery (it serves its own XRDS) and held to
//! the same consent.

pub mod site;

use std::net::IpAddr;
use std::path::PathBuf;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::aka::UsimState;
use crate::config::{Config, RpDiscovery};
use crate::context::{Context, OpenError};
use crate::hss::SubscriberFields;
use crate::ids::{ClientId, Impi};
use crate::oidc::client::{ClientRandom, Registration, register};
use crate::profile::ProfileField;
use crate::secret::Secret;
use crate::ue::ub::Handset;
use crate::web::{AppState, ServeError, bsf_router, op_router};

/// The demo subscriber's IMPI (a TS 23.003 §13.3 private identity of the test network
/// MCC 001, MNC 01).
pub const IMPI: &str = "demo@ims.mnc001.mcc001.3gppnetwork.org";
/// The demo subscriber's number: from the UK range Ofcom keeps for drama (07700 900xxx).
pub const MSISDN: &str = "+447700900123";
/// K of TS 35.208 test set 1: a published test key, never a real SIM's.
pub const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
/// OPc of TS 35.208 test set 1.
pub const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
/// The demo subscriber's profile, released with consent by SReg, AX and OIDC claims.
pub const PROFILE: [(ProfileField, &str); 3] = [
    (ProfileField::Nickname, "demo"),
    (ProfileField::Fullname, "Dana Demo"),
    (ProfileField::Email, "dana.demo@example.net"),
];
/// The demo site's name as the consent and account pages show it.
pub const CLIENT_NAME: &str = "akaid demo site";
/// The USIM state file of the GBA proxy's handset, in the data directory.
pub const USIM_STATE_FILE: &str = "demo-usim.json";

/// Where the demo listens, and the configuration it starts from.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// The address every listener binds, and the host of every URL the demo prints.
    pub host: IpAddr,
    /// Each 0 picks a free port.
    pub op_port: u16,
    pub bsf_port: u16,
    pub rp_port: u16,
    pub proxy_port: u16,
    /// The configuration to start from (its `data_dir` is where the demo keeps its state); the
    /// demo sets the URLs, the database (SQLite in `data_dir`) and relying-party discovery.
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--host {0} is not an address a browser can open: give one address, e.g. 127.0.0.1")]
    Unspecified(IpAddr),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot provision the demo: {0}")]
    Provision(String),
    #[error("a demo server failed: {0}")]
    Server(#[from] std::io::Error),
}

/// A running demo: its URLs, the demo client's credentials, and its server tasks.
#[derive(Debug)]
pub struct Demo {
    pub op_url: Url,
    pub bsf_url: Url,
    pub site_url: Url,
    /// The GBA proxy for browsers (`akaid ue proxy`).
    pub proxy_url: Url,
    pub client_id: ClientId,
    pub client_secret: Secret<String>,
    pub data_dir: PathBuf,
    /// The OP's and BSF's shared state.
    pub state: AppState,
    stop: watch::Sender<()>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Demo {
    /// The demo subscriber's handset with a fresh USIM: what the software handset
    /// ([`crate::ue::browser::Browser`]) needs to sign in as the demo subscriber.
    pub fn handset() -> Result<Handset, DemoError> {
        let sub = subscriber_fields()
            .parse()
            .map_err(|e| DemoError::Provision(e.to_string()))?;
        Ok(Handset {
            impi: sub.impi,
            keys: sub.keys,
            usim: UsimState::default(),
        })
    }

    /// What to open and how, for a person at a terminal.
    pub fn instructions(&self, temporary: bool) -> String {
        let mut text = String::new();
        let line = |text: &mut String, s: &str| {
            text.push_str(s);
            text.push('\n');
        };
        line(&mut text, "akaid demo is running.");
        line(&mut text, "");
        line(
            &mut text,
            &format!("  demo site (relying party)  {}", self.site_url),
        );
        line(
            &mut text,
            &format!("  OP (OpenID 2.0 + OIDC)     {}", self.op_url),
        );
        line(
            &mut text,
            &format!("  BSF (GBA bootstrapping)    {}", self.bsf_url),
        );
        line(
            &mut text,
            &format!("  GBA proxy for the browser  {}", self.proxy_url),
        );
        line(
            &mut text,
            &format!(
                "  data directory             {}{}",
                self.data_dir.display(),
                if temporary { " (removed on exit)" } else { "" }
            ),
        );
        line(&mut text, "");
        line(
            &mut text,
            "Demo subscriber (TS 35.208 test set 1 keys; demo only):",
        );
        line(&mut text, &format!("  IMPI    {IMPI}"));
        line(&mut text, &format!("  MSISDN  {MSISDN}"));
        line(&mut text, &format!("  K       {K}"));
        line(&mut text, &format!("  OPc     {OPC}"));
        line(&mut text, "");
        line(
            &mut text,
            &format!(
                "Demo OIDC client: client_id {} client_secret {}",
                self.client_id,
                self.client_secret.expose()
            ),
        );
        line(&mut text, "");
        let proxy_origin = self.proxy_url.as_str().trim_end_matches('/');
        line(
            &mut text,
            "Open the demo site in Chromium through the GBA proxy, which plays the demo \
             subscriber's SIM for the browser:",
        );
        line(&mut text, "");
        line(
            &mut text,
            &format!(
                "  chromium --proxy-server={proxy_origin} \
                 --proxy-bypass-list=\"<-loopback>\" --user-data-dir=$(mktemp -d) {}",
                self.site_url
            ),
        );
        line(&mut text, "");
        line(
            &mut text,
            "(--proxy-bypass-list=\"<-loopback>\" is needed because Chromium sends loopback \
             traffic past any proxy otherwise.)",
        );
        line(
            &mut text,
            "Tap \"Sign in with your operator\", allow on the operator's page, and the site \
             shows who signed in and what it verified. Sign in again: no question this time. \
             Revoke the site on the operator's account page and the question comes back:",
        );
        line(&mut text, &format!("  {}account", self.op_url));
        line(&mut text, "");
        line(&mut text, "Stop with Ctrl-C.");
        text
    }

    /// Stops every listener and waits for them.
    pub async fn shutdown(self) -> Result<(), DemoError> {
        let _ = self.stop.send(());
        for task in self.tasks {
            task.await.map_err(std::io::Error::other)??;
        }
        Ok(())
    }
}

fn subscriber_fields() -> SubscriberFields<'static> {
    SubscriberFields {
        impi: IMPI,
        msisdn: Some(MSISDN),
        k: K,
        opc: Some(OPC),
        ..SubscriberFields::default()
    }
}

async fn bind(host: IpAddr, port: u16) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|source| ServeError::Bind {
            what: "the demo",
            addr: std::net::SocketAddr::new(host, port).to_string(),
            source,
        })
}

fn url_of(listener: &tokio::net::TcpListener) -> Result<Url, DemoError> {
    let addr = listener.local_addr()?;
    Url::parse(&format!("http://{addr}/")).map_err(|e| DemoError::Provision(e.to_string()))
}

/// Starts the demo: the OP and BSF, the demo subscriber and client, the demo site.
pub async fn start(settings: DemoSettings) -> Result<Demo, DemoError> {
    let host = settings.host;
    if host.is_unspecified() || host.is_multicast() {
        return Err(DemoError::Unspecified(host));
    }
    let op = bind(host, settings.op_port).await?;
    let bsf = bind(host, settings.bsf_port).await?;
    let rp = bind(host, settings.rp_port).await?;
    let proxy = bind(host, settings.proxy_port).await?;
    let op_url = url_of(&op)?;
    let bsf_url = url_of(&bsf)?;
    let site_url = url_of(&rp)?;
    let proxy_url = url_of(&proxy)?;

    let mut config = settings.config;
    config.public_url = op_url.clone();
    config.bsf_url = bsf_url.clone();
    config.database_url = None;
    config.master_key_file = None;
    config.roles = crate::config::Roles {
        op: true,
        bsf: true,
    };
    // A demo on a LAN address is a test network by definition (DESIGN.md §2.7).
    config.insecure_http = true;
    // The demo site publishes its return_to in its XRDS, so the OP can insist on it; the
    // site is on this machine, which discovery may reach only when allowed.
    config.openid2_rp_discovery = RpDiscovery::Require;
    let prefix = if host.is_ipv4() { 32 } else { 128 };
    config.openid2_rp_discovery_allow = format!("127.0.0.0/8,::1/128,{host}/{prefix}")
        .parse()
        .map_err(|e| DemoError::Provision(format!("discovery allow list: {e}")))?;
    let data_dir = config.data_dir.clone();
    let ctx = Context::open(config, &|_| None).await?;
    let (client_id, client_secret) = provision(&ctx, &site_url).await?;

    let state = AppState::open(ctx).await?;
    let site = site::Site::new(site::SiteSettings {
        site_url: site_url.clone(),
        op_url: op_url.clone(),
        client_id: client_id.to_string(),
        client_secret: Secret::new(client_secret.expose().clone()),
        clock: state.ctx.clock.clone(),
    })
    .map_err(|e| DemoError::Provision(e.to_string()))?;

    let maintain = tokio::spawn(
        state
            .key_ring
            .clone()
            .maintain(crate::oidc::keys::RELOAD_EVERY),
    );
    let sweeper = state.clone();
    let sweep = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            crate::web::sweep(&sweeper).await;
        }
    });

    let (stop, stop_rx) = watch::channel(());
    let mut tasks = Vec::new();
    for (listener, router) in [
        (op, op_router(state.clone())),
        (bsf, bsf_router(state.clone())),
        (rp, site.router()),
    ] {
        tasks.push(tokio::spawn(crate::web::serve_until(
            listener,
            router,
            stop_rx.clone(),
        )));
    }
    // The GBA proxy plays the demo subscriber's handset for a browser (`akaid ue proxy`).
    let (handset, usim_state_file) = proxy_handset(&data_dir)?;
    let proxy_task = tokio::spawn(crate::ue::proxy::serve(
        proxy,
        crate::ue::proxy::ProxySettings {
            bsf: bsf_url.clone(),
            handset,
            usim_state_file: Some(usim_state_file),
        },
    ));
    let mut stop_background = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let _ = stop_background.changed().await;
        maintain.abort();
        sweep.abort();
        // The proxy serves until its task is dropped; an error it stopped with is reported.
        if proxy_task.is_finished() {
            if let Ok(Err(e)) = proxy_task.await {
                return Err(std::io::Error::other(format!("the GBA proxy: {e}")));
            }
        } else {
            proxy_task.abort();
        }
        Ok(())
    }));
    tracing::info!(op = %op_url, bsf = %bsf_url, site = %site_url, "akaid demo serving");
    Ok(Demo {
        op_url,
        bsf_url,
        site_url,
        proxy_url,
        client_id,
        client_secret,
        data_dir,
        state,
        stop,
        tasks,
    })
}

/// The demo subscriber (added once per data directory) with its profile, and a fresh demo
/// client for this run's site URL (earlier runs' demo clients are removed: their secrets are
/// gone and their ports may have changed).
async fn provision(ctx: &Context, site_url: &Url) -> Result<(ClientId, Secret<String>), DemoError> {
    let fail = |e: &dyn std::fmt::Display| DemoError::Provision(e.to_string());
    let sub = subscriber_fields().parse().map_err(|e| fail(&e))?;
    let impi: Impi = sub.impi.clone();
    if ctx
        .store
        .subscribers
        .info(&impi)
        .await
        .map_err(|e| fail(&e))?
        .is_none()
    {
        ctx.hss.add(&sub).await.map_err(|e| fail(&e))?;
    }
    for (field, value) in PROFILE {
        ctx.store
            .profiles
            .set_profile_field(&impi, field, Some(value))
            .await
            .map_err(|e| fail(&e))?;
    }
    for old in ctx.store.clients.list().await.map_err(|e| fail(&e))? {
        if old.name == CLIENT_NAME {
            ctx.store
                .clients
                .remove(&old.client_id)
                .await
                .map_err(|e| fail(&e))?;
        }
    }
    let callback = site_url
        .join(site::paths::OIDC_CALLBACK)
        .map_err(|e| fail(&e))?;
    let new = register(
        &Registration {
            name: CLIENT_NAME,
            redirect_uris: &[callback.to_string()],
            post_logout_redirect_uris: &[site_url.to_string()],
            ..Registration::default()
        },
        &ClientRandom::draw(),
        ctx.clock.now(),
    )
    .map_err(|e| fail(&e))?;
    ctx.store
        .clients
        .add(&new.client)
        .await
        .map_err(|e| fail(&e))?;
    let secret = new
        .secret
        .ok_or_else(|| DemoError::Provision("the demo client has no secret".into()))?;
    Ok((new.client.client_id, secret))
}

/// The handset the GBA proxy plays for the browser: the demo subscriber, its USIM state kept
/// in the data directory.
pub fn proxy_handset(data_dir: &std::path::Path) -> Result<(Handset, PathBuf), DemoError> {
    let path = data_dir.join(USIM_STATE_FILE);
    let mut handset = Demo::handset()?;
    handset.usim =
        crate::ue::state::load(&path).map_err(|e| DemoError::Provision(e.to_string()))?;
    Ok((handset, path))
}
