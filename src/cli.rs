//! The operator's command line (DESIGN.md §4): the clap definitions and, for each command,
//! a handler that writes what it prints to a writer (so tests can read it).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::aka::{Auts, Rand};
use crate::config::{self, Config, Layer};
use crate::context::{Context, OpenError};
use crate::hss::import::{self, ImportError};
use crate::hss::{FieldError, Hss, HssError, SubscriberFields};
use crate::ids::Impi;
use crate::store::{StoreError, SubscriberInfo};

#[derive(Debug, Parser)]
#[command(
    name = "akaid",
    version,
    about = "SIM-based identity provider (GBA/AKA, OpenID 2.0, OpenID Connect)"
)]
pub struct Cli {
    /// Directory for the SQLite database and the master key file [default: ./akaid-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: ./akaid.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the master key (64 hex digits, mode 0600)
    #[arg(long, global = true, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the OP on public_url and the BSF on bsf_url
    Serve(ServeArgs),
    /// A first look on this machine: the OP and BSF with a demo subscriber, a demo
    /// relying-party site and the GBA proxy for a browser; prints what to open
    Demo(DemoArgs),
    /// Bring the database schema up to date
    Migrate,
    /// Print the configuration in force, with each field's documentation
    Config,
    /// Provision and inspect subscribers
    #[command(subcommand)]
    Subscriber(SubscriberCommand),
    /// The HSS's vector functions, as osmo-auc-gen offers them
    #[command(subcommand)]
    Hss(HssCommand),
    /// NAFs allowed to fetch keys on Zn
    #[command(subcommand)]
    Naf(NafCommand),
    /// The software handset: bootstrap against a BSF, load-test one
    #[command(subcommand)]
    Ue(UeCommand),
    /// The operator's policy per OpenID 2.0 realm
    #[command(subcommand)]
    Realm(RealmCommand),
    /// OpenID Connect signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// OpenID Connect clients (relying parties)
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and, for a confidential client, its secret
    /// (shown once: only its hash is stored)
    Add(ClientAddArgs),
    /// List clients: client_id, type, ID token algorithm, subject type, name
    List,
    /// Show one client (never its secret)
    Show {
        client_id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a client and the consents subscribers gave it
    Remove { client_id: String },
}

#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// The name subscribers see when asked to consent
    #[arg(long)]
    pub name: String,
    /// A redirect URI, compared exactly: https://, or http:// on a loopback host (repeatable)
    #[arg(long = "redirect-uri", value_name = "URI", required = true)]
    pub redirect_uri: Vec<String>,
    /// Where the client may send subscribers after logout (repeatable)
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uri: Vec<String>,
    /// A public client (native or single-page app): no secret, PKCE required
    #[arg(long)]
    pub public: bool,
    /// How its ID tokens are signed: RS256, ES256 or EdDSA [default: RS256]
    #[arg(long, value_name = "ALG")]
    pub id_token_alg: Option<crate::oidc::jose::SigningAlg>,
    /// pairwise (a different sub per site, the default) or public (the same everywhere)
    #[arg(long, value_name = "TYPE")]
    pub subject: Option<crate::oidc::client::SubjectType>,
    /// The host a pairwise sub is computed for, needed when the redirect URIs are on several
    /// hosts [default: the redirect URIs' host]
    #[arg(long, value_name = "HOST")]
    pub sector_host: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new active signing key; the previous one stays in the JWKS until every token it
    /// signed has expired, then it is removed
    Rotate {
        /// Only this algorithm: RS256, ES256 or EdDSA [default: all three]
        #[arg(long, value_name = "ALG")]
        alg: Option<crate::oidc::jose::SigningAlg>,
    },
    /// List signing keys: kid, algorithm, created, retired, in the JWKS until (never the
    /// private key)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RealmCommand {
    /// Let a realm log subscribers in without a consent prompt
    Allow {
        /// The realm exactly as relying parties send it, e.g. https://*.example.com/
        realm: String,
        /// Give the realm the subscriber's stable identifier instead of a pairwise one
        #[arg(long)]
        stable_identifier: bool,
    },
    /// Ask subscribers for consent the first time (the default for a realm without a policy)
    Prompt {
        realm: String,
        #[arg(long)]
        stable_identifier: bool,
    },
    /// Refuse every login to a realm: a person sees a "blocked" page (`checkid_immediate` gets
    /// `cancel`); nothing is sent to the site
    Deny { realm: String },
    /// List realm policies
    List,
    /// Remove a realm's policy (back to prompting)
    Remove { realm: String },
}

#[derive(Debug, Subcommand)]
pub enum NafCommand {
    /// Register a NAF; prints its Zn bearer secret once (only its hash is stored)
    Add {
        /// The NAF's FQDN (the host of its public URL)
        fqdn: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List registered NAFs
    List,
    /// Remove a NAF; its secret stops working at once
    Remove { fqdn: String },
}

#[derive(Debug, Subcommand)]
pub enum UeCommand {
    /// Bootstrap with a BSF over Ub as a handset would; prints the B-TID and lifetime
    Bootstrap(UeBootstrapArgs),
    /// Load-test a BSF with handsets from `subscriber generate --seed`
    Bench(UeBenchArgs),
    /// Open a URL as a handset's browser: follow redirects, sign in with GBA, answer consent
    Login(UeLoginArgs),
    /// An HTTP forward proxy for a desktop browser: adds `3gpp-gba` to its User-Agent and
    /// answers GBA sign-in challenges with this handset (http:// sites; https:// tunnels
    /// pass through untouched)
    Proxy(UeProxyArgs),
}

#[derive(Debug, Args)]
pub struct UeProxyArgs {
    /// Address to listen on (loopback: whoever reaches the proxy signs in as this handset)
    #[arg(long, default_value = "127.0.0.1:8083", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub handset: HandsetArgs,
}

#[derive(Debug, Args)]
pub struct UeLoginArgs {
    /// Where to start, e.g. a relying party's "Sign in with your operator" link
    pub url: url::Url,
    #[command(flatten)]
    pub handset: HandsetArgs,
    /// Answer a consent page with Deny instead of Allow
    #[arg(long)]
    pub deny: bool,
    /// Stop at a redirect into this URL prefix (e.g. the relying party's return_to) and
    /// print the redirect's target instead of following it
    #[arg(long, value_name = "PREFIX")]
    pub stop_before: Option<String>,
    /// Also print the Cookie header the browser holds for this URL (e.g. the OP's), for
    /// load tools that reuse the signed-in session
    #[arg(long, value_name = "URL")]
    pub cookies_for: Option<url::Url>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// The software handset's identity, USIM keys and SQN state file.
#[derive(Debug, Args)]
pub struct HandsetArgs {
    /// The BSF's URL
    #[arg(long, default_value = "http://127.0.0.1:8081/")]
    pub bsf: url::Url,
    /// The handset's IMPI
    #[arg(long)]
    pub impi: String,
    /// The USIM's K, 32 hex digits
    #[arg(long)]
    pub k: String,
    /// The USIM's OPc, 32 hex digits
    #[arg(long)]
    pub opc: String,
    /// File keeping the USIM's SQN state between runs [default: none, a fresh USIM]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

impl HandsetArgs {
    /// The handset, its USIM state read from `--state` (a fresh USIM without it).
    fn load(&self) -> Result<crate::ue::ub::Handset, CommandError> {
        let fields = SubscriberFields {
            impi: &self.impi,
            k: &self.k,
            opc: Some(&self.opc),
            ..SubscriberFields::default()
        }
        .parse()?;
        let usim = match &self.state {
            Some(path) => crate::ue::state::load(path)?,
            None => crate::aka::UsimState::default(),
        };
        Ok(crate::ue::ub::Handset {
            impi: fields.impi,
            keys: fields.keys,
            usim,
        })
    }

    /// Writes the USIM state back to `--state`. It changes even when the run fails later (an
    /// accepted SQN stays accepted), so callers save either way.
    fn save(&self, usim: &crate::aka::UsimState) -> Result<(), CommandError> {
        if let Some(path) = &self.state {
            crate::ue::state::save(path, usim)?;
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct UeBootstrapArgs {
    #[command(flatten)]
    pub handset: HandsetArgs,
    /// Also derive Ks_NAF for this NAF FQDN (Ua over plain HTTP)
    #[arg(long, value_name = "FQDN")]
    pub naf: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UeBenchArgs {
    /// The BSF's URL
    #[arg(long, default_value = "http://127.0.0.1:8081/")]
    pub bsf: url::Url,
    /// The seed given to `akaid subscriber generate`
    #[arg(long)]
    pub seed: String,
    /// Measure full OpenID 2.0 logins at this OP endpoint (e.g. http://127.0.0.1:8080/openid)
    /// instead of bootstraps: each handset signs in and consents once, then every login is a
    /// checkid_setup and the relying party's check_authentication
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "oidc")]
    pub login: Option<url::Url>,
    /// Measure complete OpenID Connect code flows against this issuer instead (authorize
    /// with the session, PKCE, code, token with client_secret_basic, ID token verified here):
    /// each handset signs in and consents once first
    #[arg(long, value_name = "ISSUER", requires_all = ["client_id", "client_secret", "redirect_uri"])]
    pub oidc: Option<url::Url>,
    /// The confidential client the OIDC mode uses (`akaid client add`)
    #[arg(long)]
    pub client_id: Option<String>,
    /// That client's secret
    #[arg(long)]
    pub client_secret: Option<String>,
    /// That client's registered redirect URI (nothing needs to listen there)
    #[arg(long)]
    pub redirect_uri: Option<String>,
    /// How many of the generated subscribers to use
    #[arg(long, default_value_t = 1000)]
    pub subscribers: u64,
    /// Bootstraps in flight at once
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to run
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The OP's public URL (issuer)
    #[arg(long, value_name = "URL")]
    pub public_url: Option<url::Url>,
    /// The BSF's URL
    #[arg(long, value_name = "URL")]
    pub bsf_url: Option<url::Url>,
    /// Which roles to run: op,bsf (both), op or bsf
    #[arg(long, value_name = "ROLES")]
    pub roles: Option<crate::config::Roles>,
    /// A proxy whose X-Forwarded-For is believed (address or address/prefix; repeatable)
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxy: Vec<crate::web::client_ip::Cidr>,
    /// Allow a plain http:// public URL on a host that is not loopback (test networks only:
    /// an OpenID Connect issuer must be https://)
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The address every listener binds and every printed URL names
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// The OP's port (OpenID 2.0 and OpenID Connect)
    #[arg(long, default_value_t = 8080)]
    pub op_port: u16,
    /// The BSF's port (GBA bootstrapping)
    #[arg(long, default_value_t = 8081)]
    pub bsf_port: u16,
    /// The demo relying-party site's port
    #[arg(long, default_value_t = 8090)]
    pub rp_port: u16,
    /// The GBA proxy's port (the browser's --proxy-server)
    #[arg(long, default_value_t = 8083)]
    pub proxy_port: u16,
}

#[derive(Debug, Subcommand)]
pub enum SubscriberCommand {
    /// Add one subscriber
    Add(AddArgs),
    /// Add subscribers from a CSV file (impi,msisdn,k,opc,op,amf,sqn), all or none
    Import {
        /// The CSV file
        file: PathBuf,
    },
    /// List subscribers (never their keys)
    List,
    /// Write test subscribers whose keys derive from a seed, as import CSV (test use only)
    Generate {
        /// How many subscribers
        #[arg(long)]
        count: u64,
        /// The seed their keys derive from; `akaid ue bench --seed` derives the same keys
        #[arg(long)]
        seed: String,
    },
    /// Show one subscriber (never its keys)
    Show {
        impi: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a subscriber
    Remove { impi: String },
    /// Show or change the profile fields relying parties may receive with consent
    /// (nickname, email, fullname, dob, gender, postcode, country, language, timezone)
    Profile {
        impi: String,
        /// Set a field, e.g. `--set email=ada@example.org` (repeatable)
        #[arg(long = "set", value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Clear a field (repeatable)
        #[arg(long, value_name = "FIELD")]
        unset: Vec<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// IMS private identity, user@realm
    #[arg(long)]
    pub impi: String,
    /// Subscriber key K, 32 hex digits
    #[arg(long)]
    pub k: String,
    /// OPc, 32 hex digits
    #[arg(long, conflicts_with = "op", required_unless_present = "op")]
    pub opc: Option<String>,
    /// OP, 32 hex digits (OPc is computed once and only OPc is stored)
    #[arg(long)]
    pub op: Option<String>,
    /// AMF, 4 hex digits [default: 8000]
    #[arg(long)]
    pub amf: Option<String>,
    /// The last SQN used, 12 hex digits [default: 000000000000]
    #[arg(long)]
    pub sqn: Option<String>,
    /// Phone number, E.164 (+ and digits)
    #[arg(long)]
    pub msisdn: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum HssCommand {
    /// Make an authentication vector (advances the SQN, like a real HSS)
    Vector {
        impi: String,
        /// RAND, 32 hex digits [default: random]
        #[arg(long)]
        rand: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Apply a re-synchronisation from a USIM's AUTS; prints the recovered SQN_MS
    Resync {
        impi: String,
        /// The RAND of the challenge the USIM refused, 32 hex digits
        #[arg(long)]
        rand: String,
        /// AUTS, 28 hex digits
        #[arg(long)]
        auts: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// The configuration layer the global flags make.
    pub fn flag_layer(&self) -> Layer {
        let mut layer = Layer {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone().map(Some),
            master_key_file: self.master_key_file.clone().map(Some),
            ..Layer::default()
        };
        if let Command::Serve(args) = &self.command {
            layer.public_url = args.public_url.clone();
            layer.bsf_url = args.bsf_url.clone();
            layer.roles = args.roles;
            if args.insecure_http {
                layer.insecure_http = Some(true);
            }
            if !args.trusted_proxy.is_empty() {
                layer.trusted_proxies =
                    Some(crate::web::client_ip::CidrList(args.trusted_proxy.clone()));
            }
        }
        layer
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("{file}: {error}")]
    Import { file: PathBuf, error: ImportError },
    #[error(transparent)]
    Hss(#[from] HssError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no subscriber with IMPI {0}")]
    UnknownImpi(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write output: {0}")]
    Write(#[from] std::io::Error),
    #[error(transparent)]
    Ue(#[from] crate::ue::ub::UeError),
    #[error(transparent)]
    UeState(#[from] crate::ue::state::StateError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("no NAF {0} is registered")]
    UnknownNaf(String),
    #[error("no policy for realm {0}")]
    UnknownRealm(String),
    #[error(transparent)]
    Keys(#[from] crate::oidc::keys::KeyError),
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error(transparent)]
    Registration(#[from] crate::oidc::client::RegistrationError),
    #[error("no client with client_id {0}")]
    UnknownClient(String),
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
}

/// `akaid realm allow|prompt|deny`
pub async fn realm_set(
    ctx: &Context,
    realm: &str,
    policy: crate::store::RealmPolicy,
    stable_identifier: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let parsed = crate::openid2::realm::Realm::parse(realm)
        .map_err(|e| FieldError::new("realm", e.to_string()))?;
    if parsed.is_overbroad() {
        return Err(FieldError::new("realm", "is over-broad: no relying party may use it").into());
    }
    ctx.store
        .realm_policies
        .put(&crate::store::RealmPolicyRow {
            realm: parsed.as_str().to_owned(),
            policy,
            stable_identifier,
            created_at: ctx.clock.now(),
        })
        .await?;
    writeln!(
        out,
        "{}: {}{}",
        parsed.as_str(),
        policy.as_str(),
        if stable_identifier {
            ", stable identifier"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// `akaid realm list`
pub async fn realm_list(ctx: &Context, out: &mut dyn Write) -> Result<(), CommandError> {
    for row in ctx.store.realm_policies.list().await? {
        writeln!(
            out,
            "{}\t{}\t{}",
            row.realm,
            row.policy.as_str(),
            if row.stable_identifier {
                "stable"
            } else {
                "pairwise"
            }
        )?;
    }
    Ok(())
}

/// `akaid realm remove`
pub async fn realm_remove(
    ctx: &Context,
    realm: &str,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    if ctx.store.realm_policies.remove(realm).await? {
        writeln!(out, "removed the policy for {realm}")?;
        Ok(())
    } else {
        Err(CommandError::UnknownRealm(realm.to_owned()))
    }
}

/// `akaid keys rotate [--alg ALG]`: a new active key per algorithm; the previous one stays
/// published for the overlap. Also removes keys past their overlap.
pub async fn keys_rotate(
    ctx: &Context,
    alg: Option<crate::oidc::jose::SigningAlg>,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    use crate::oidc::{jose::SigningAlg, keys};
    let algs = match alg {
        Some(alg) => vec![alg],
        None => SigningAlg::ALL.to_vec(),
    };
    let store = ctx.store.signing_keys.as_ref();
    let overlap = ctx.config.oidc_key_overlap();
    for alg in algs {
        let key = keys::rotate(store, &ctx.sealer, alg, ctx.clock.now()).await?;
        writeln!(out, "{alg}: new active key {}", key.kid())?;
    }
    let removed = keys::sweep(store, ctx.clock.now(), overlap).await?;
    if removed > 0 {
        writeln!(out, "removed {removed} retired keys past their overlap")?;
    }
    writeln!(
        out,
        "retired keys stay in the JWKS for {} s; running servers load the new keys within {} s",
        overlap.whole_seconds(),
        keys::RELOAD_EVERY.as_secs()
    )?;
    Ok(())
}

/// `akaid keys list [--json]`: never the private keys.
pub async fn keys_list(ctx: &Context, json: bool, out: &mut dyn Write) -> Result<(), CommandError> {
    let keys = crate::oidc::keys::list(
        ctx.store.signing_keys.as_ref(),
        ctx.config.oidc_key_overlap(),
    )
    .await?;
    if json {
        let doc: Vec<_> = keys
            .iter()
            .map(|k| {
                json!({
                    "kid": k.kid,
                    "alg": k.alg,
                    "active": k.is_active(),
                    "created_at": rfc3339(k.created_at),
                    "retired_at": k.retired_at.map(rfc3339),
                    "public_until": k.public_until.map(rfc3339),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(doc))?;
    } else {
        for k in &keys {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}",
                k.kid,
                k.alg,
                rfc3339(k.created_at),
                k.retired_at.map_or_else(|| "active".to_owned(), rfc3339),
                k.public_until.map_or_else(|| "-".to_owned(), rfc3339),
            )?;
        }
    }
    Ok(())
}

/// `akaid client add`: checks everything before storing; the secret is printed once.
pub async fn client_add(
    ctx: &Context,
    args: &ClientAddArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    use crate::oidc::client::{ClientRandom, Registration, register};
    let new = register(
        &Registration {
            name: &args.name,
            redirect_uris: &args.redirect_uri,
            post_logout_redirect_uris: &args.post_logout_redirect_uri,
            public: args.public,
            id_token_alg: args.id_token_alg,
            subject_type: args.subject,
            sector_host: args.sector_host.as_deref(),
        },
        &ClientRandom::draw(),
        ctx.clock.now(),
    )?;
    ctx.store.clients.add(&new.client).await?;
    let secret = new.secret.as_ref().map(|s| s.expose().as_str());
    if args.json {
        let mut doc = client_json(&new.client);
        doc["client_secret"] = json!(secret);
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "client_id:      {}", new.client.client_id)?;
        match secret {
            Some(secret) => {
                writeln!(out, "client_secret:  {secret}")?;
                writeln!(
                    out,
                    "(shown once: only its hash is stored; give it to the relying party)"
                )?;
            }
            None => writeln!(
                out,
                "(public client: no secret; it must use PKCE with S256)"
            )?,
        }
    }
    Ok(())
}

/// A client as JSON, with the names of OpenID Connect Dynamic Client Registration 1.0 §2;
/// never the secret or its hash.
fn client_json(client: &crate::store::OidcClient) -> serde_json::Value {
    json!({
        "client_id": client.client_id.as_str(),
        "client_name": client.name,
        "client_type": if client.is_public() { "public" } else { "confidential" },
        "token_endpoint_auth_method":
            if client.is_public() { "none" } else { "client_secret_basic" },
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "id_token_signed_response_alg": client.id_token_alg.as_str(),
        "subject_type": client.subject_type.as_str(),
        "sector_host": client.sector_host,
        "created_at": rfc3339(client.created_at),
    })
}

fn parse_client_id(text: &str) -> Result<crate::ids::ClientId, CommandError> {
    text.parse()
        .map_err(|_| CommandError::UnknownClient(text.to_owned()))
}

/// `akaid client list`
pub async fn client_list(ctx: &Context, out: &mut dyn Write) -> Result<(), CommandError> {
    for c in ctx.store.clients.list().await? {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            c.client_id,
            if c.is_public() {
                "public"
            } else {
                "confidential"
            },
            c.id_token_alg,
            c.subject_type,
            c.name
        )?;
    }
    Ok(())
}

/// `akaid client show ID [--json]`: everything but the secret's hash.
pub async fn client_show(
    ctx: &Context,
    client_id: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let id = parse_client_id(client_id)?;
    let c = ctx
        .store
        .clients
        .get(&id)
        .await?
        .ok_or_else(|| CommandError::UnknownClient(client_id.to_owned()))?;
    if json {
        writeln!(out, "{}", client_json(&c))?;
        return Ok(());
    }
    writeln!(out, "client_id:      {}", c.client_id)?;
    writeln!(out, "name:           {}", c.name)?;
    writeln!(
        out,
        "type:           {}",
        if c.is_public() {
            "public (no secret, PKCE)"
        } else {
            "confidential (client secret)"
        }
    )?;
    for uri in &c.redirect_uris {
        writeln!(out, "redirect_uri:   {uri}")?;
    }
    for uri in &c.post_logout_redirect_uris {
        writeln!(out, "post_logout:    {uri}")?;
    }
    writeln!(out, "id_token_alg:   {}", c.id_token_alg)?;
    match &c.sector_host {
        Some(host) => writeln!(out, "subject:        {} (sector {host})", c.subject_type)?,
        None => writeln!(out, "subject:        {}", c.subject_type)?,
    }
    writeln!(out, "created:        {}", rfc3339(c.created_at))?;
    Ok(())
}

/// `akaid client remove ID`
pub async fn client_remove(
    ctx: &Context,
    client_id: &str,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let id = parse_client_id(client_id)?;
    if ctx.store.clients.remove(&id).await? {
        writeln!(out, "removed client {id}")?;
        Ok(())
    } else {
        Err(CommandError::UnknownClient(client_id.to_owned()))
    }
}

fn parse_impi(text: &str) -> Result<Impi, CommandError> {
    text.parse()
        .map_err(|e: crate::ids::InvalidId| FieldError::new("impi", e.to_string()).into())
}

fn hex_arg<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], CommandError> {
    let mut out = [0u8; N];
    if text.len() != 2 * N || hex::decode_to_slice(text, &mut out).is_err() {
        return Err(FieldError::new(field, format!("must be {} hex digits", 2 * N)).into());
    }
    Ok(out)
}

/// `akaid config`
pub fn config_show(config: &Config, out: &mut dyn Write) -> Result<(), CommandError> {
    for (key, doc, value) in config::describe(config) {
        writeln!(out, "# {doc}")?;
        writeln!(out, "# (environment: AKAID_{})", key.to_ascii_uppercase())?;
        writeln!(out, "{key} = {}\n", toml_string(&value))?;
    }
    Ok(())
}

/// The value as it would be written in akaid.toml: numbers bare, the rest quoted.
fn toml_string(value: &str) -> String {
    match value.parse::<u64>() {
        Ok(n) => n.to_string(),
        Err(_) => toml::Value::String(value.to_owned()).to_string(),
    }
}

/// `akaid subscriber add`
pub async fn subscriber_add(
    ctx: &Context,
    args: &AddArgs,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let sub = SubscriberFields {
        impi: &args.impi,
        msisdn: args.msisdn.as_deref(),
        k: &args.k,
        opc: args.opc.as_deref(),
        op: args.op.as_deref(),
        amf: args.amf.as_deref(),
        sqn: args.sqn.as_deref(),
    }
    .parse()?;
    ctx.hss.add(&sub).await?;
    writeln!(out, "added {}", sub.impi)?;
    Ok(())
}

/// `akaid subscriber import FILE`: checks the whole file, seals every key, then stores all
/// rows in one transaction.
pub async fn subscriber_import(
    ctx: &Context,
    file: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let started = Instant::now();
    let read_err = |source| CommandError::Read {
        path: file.to_owned(),
        source,
    };
    let size = std::fs::metadata(file).map_err(read_err)?.len();
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(read_err)?);
    let bar = progress_bar(size, "checking");
    let rows = import::parse_csv(reader, |bytes| bar.set_position(bytes)).map_err(|error| {
        CommandError::Import {
            file: file.to_owned(),
            error,
        }
    })?;
    bar.finish_and_clear();
    let sealed: Vec<_> = rows.iter().map(|r| ctx.hss.seal(&r.subscriber)).collect();
    let bar = progress_bar(sealed.len() as u64, "storing");
    let stored = ctx
        .hss
        .add_all(&sealed, &|n| bar.set_position(n as u64))
        .await;
    bar.finish_and_clear();
    match stored {
        Ok(()) => {}
        Err(HssError::Store(StoreError::DuplicateInBatch { index, what, key })) => {
            return Err(CommandError::Import {
                file: file.to_owned(),
                error: ImportError::Row {
                    line: rows.get(index).map_or(0, |r| r.line),
                    reason: format!("{what} {key} is already provisioned; nothing was imported"),
                },
            });
        }
        Err(other) => return Err(other.into()),
    }
    writeln!(
        out,
        "imported {} subscribers in {:.2} s",
        sealed.len(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

fn progress_bar(len: u64, what: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {percent:>3}% {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

/// `akaid subscriber list`
pub async fn subscriber_list(ctx: &Context, out: &mut dyn Write) -> Result<(), CommandError> {
    const PAGE: u32 = 1000;
    let mut after: Option<Impi> = None;
    loop {
        let page = ctx.store.subscribers.list(after.as_ref(), PAGE).await?;
        for sub in &page {
            writeln!(
                out,
                "{}\t{}\t{}",
                sub.impi,
                sub.msisdn.as_ref().map_or("-", |m| m.as_str()),
                sub.sqn
            )?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.impi.clone()),
            _ => return Ok(()),
        }
    }
}

fn info_json(sub: &SubscriberInfo) -> serde_json::Value {
    json!({
        "impi": sub.impi.as_str(),
        "msisdn": sub.msisdn.as_ref().map(|m| m.as_str()),
        "amf": sub.amf.to_string(),
        "sqn": sub.sqn.to_string(),
        "seq": sub.sqn.seq(),
        "ind": sub.sqn.ind(),
        "created_at": rfc3339(sub.created_at),
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// `akaid subscriber show IMPI`: everything but K and OPc.
pub async fn subscriber_show(
    ctx: &Context,
    impi: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let impi = parse_impi(impi)?;
    let sub = ctx
        .store
        .subscribers
        .info(&impi)
        .await?
        .ok_or_else(|| CommandError::UnknownImpi(impi.to_string()))?;
    if json {
        writeln!(out, "{}", info_json(&sub))?;
    } else {
        writeln!(out, "IMPI:     {}", sub.impi)?;
        writeln!(
            out,
            "MSISDN:   {}",
            sub.msisdn.as_ref().map_or("-", |m| m.as_str())
        )?;
        writeln!(out, "AMF:      {}", sub.amf)?;
        writeln!(
            out,
            "SQN:      {} (SEQ {}, IND {}; the last one used)",
            sub.sqn,
            sub.sqn.seq(),
            sub.sqn.ind()
        )?;
        writeln!(out, "Created:  {}", rfc3339(sub.created_at))?;
    }
    Ok(())
}

/// `akaid subscriber profile IMPI [--set FIELD=VALUE]… [--unset FIELD]…`: every change is
/// checked before the first is written; prints the profile as it then is.
pub async fn subscriber_profile(
    ctx: &Context,
    impi: &str,
    set: &[String],
    unset: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    use crate::profile::{ProfileError, ProfileField, parse_assignment};
    let impi = parse_impi(impi)?;
    let mut changes: Vec<(ProfileField, Option<String>)> = Vec::new();
    for text in set {
        let (field, value) = parse_assignment(text)?;
        changes.push((field, Some(value)));
    }
    for name in unset {
        let field =
            ProfileField::parse(name).ok_or_else(|| ProfileError::UnknownField(name.clone()))?;
        changes.push((field, None));
    }
    if ctx.store.subscribers.info(&impi).await?.is_none() {
        return Err(CommandError::UnknownImpi(impi.to_string()));
    }
    for (field, value) in &changes {
        let profiles = &ctx.store.profiles;
        if !profiles
            .set_profile_field(&impi, *field, value.as_deref())
            .await?
        {
            return Err(CommandError::UnknownImpi(impi.to_string()));
        }
    }
    let profile = ctx.store.profiles.profile(&impi).await?;
    if json {
        let map: serde_json::Map<String, serde_json::Value> = profile
            .iter()
            .map(|(f, v)| (f.as_str().to_owned(), json!(v)))
            .collect();
        writeln!(out, "{}", serde_json::Value::Object(map))?;
    } else if profile.is_empty() {
        writeln!(out, "{impi} has no profile fields")?;
    } else {
        for (field, value) in &profile {
            writeln!(out, "{:<9} {value}", field.as_str())?;
        }
    }
    Ok(())
}

/// `akaid subscriber remove IMPI`
pub async fn subscriber_remove(
    ctx: &Context,
    impi: &str,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let impi = parse_impi(impi)?;
    if ctx.store.subscribers.remove(&impi).await? {
        writeln!(out, "removed {impi}")?;
        Ok(())
    } else {
        Err(CommandError::UnknownImpi(impi.to_string()))
    }
}

/// `akaid hss vector IMPI`: RAND, AUTN, XRES, CK, IK and the SQN used.
pub async fn hss_vector(
    ctx: &Context,
    impi: &str,
    rand: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let impi = parse_impi(impi)?;
    let rand = match rand {
        Some(text) => Rand(hex_arg("rand", text)?),
        None => Hss::random_rand(),
    };
    let v = ctx.hss.vector(&impi, rand).await?;
    if json {
        let doc = json!({
            "impi": impi.as_str(),
            "rand": v.rand.to_string(),
            "autn": v.autn.to_string(),
            "xres": hex::encode(v.xres.expose()),
            "ck": hex::encode(v.ck.expose()),
            "ik": hex::encode(v.ik.expose()),
            "sqn": v.sqn.to_string(),
            "amf": v.amf.to_string(),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "RAND:\t{}", v.rand)?;
        writeln!(out, "AUTN:\t{}", v.autn)?;
        writeln!(out, "XRES:\t{}", hex::encode(v.xres.expose()))?;
        writeln!(out, "CK:\t{}", hex::encode(v.ck.expose()))?;
        writeln!(out, "IK:\t{}", hex::encode(v.ik.expose()))?;
        writeln!(
            out,
            "SQN:\t{} (SEQ {}, IND {})",
            v.sqn,
            v.sqn.seq(),
            v.sqn.ind()
        )?;
    }
    Ok(())
}

/// `akaid hss resync IMPI --rand --auts`
pub async fn hss_resync(
    ctx: &Context,
    impi: &str,
    rand: &str,
    auts: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let impi = parse_impi(impi)?;
    let rand = Rand(hex_arg("rand", rand)?);
    let auts = Auts(hex_arg("auts", auts)?);
    let sqn_ms = ctx.hss.resync(&impi, rand, &auts).await?;
    let stored = ctx
        .store
        .subscribers
        .info(&impi)
        .await?
        .ok_or_else(|| CommandError::UnknownImpi(impi.to_string()))?
        .sqn;
    if json {
        let doc = json!({
            "impi": impi.as_str(),
            "sqn_ms": sqn_ms.to_string(),
            "sqn": stored.to_string(),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(
            out,
            "SQN_MS:\t{} (SEQ {}, IND {})",
            sqn_ms,
            sqn_ms.seq(),
            sqn_ms.ind()
        )?;
        writeln!(
            out,
            "SQN:\t{stored} (stored; the next vector uses the one after)"
        )?;
    }
    Ok(())
}

/// `akaid naf add FQDN`: the secret is shown once; only its SHA-256 is stored.
pub async fn naf_add(
    ctx: &Context,
    fqdn: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let naf_id = crate::gba::NafId::new(fqdn, crate::gba::UaProtocolId::HTTP_DIGEST)
        .map_err(|e| FieldError::new("fqdn", e.to_string()))?;
    let secret = crate::gba::zn::new_secret();
    ctx.store
        .nafs
        .insert(&crate::store::NafRow {
            fqdn: naf_id.fqdn().to_owned(),
            secret_hash: crate::gba::zn::secret_hash(secret.expose()),
            created_at: ctx.clock.now(),
        })
        .await?;
    if json {
        let doc = json!({"fqdn": naf_id.fqdn(), "secret": secret.expose()});
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "NAF:     {}", naf_id.fqdn())?;
        writeln!(out, "secret:  {}", secret.expose())?;
        writeln!(
            out,
            "(shown once: give it to the NAF as its Zn bearer secret, zn_secret)"
        )?;
    }
    Ok(())
}

/// `akaid naf list`
pub async fn naf_list(ctx: &Context, out: &mut dyn Write) -> Result<(), CommandError> {
    for naf in ctx.store.nafs.list().await? {
        writeln!(out, "{}\t{}", naf.fqdn, rfc3339(naf.created_at))?;
    }
    Ok(())
}

/// `akaid naf remove FQDN`
pub async fn naf_remove(
    ctx: &Context,
    fqdn: &str,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let fqdn = fqdn.to_ascii_lowercase();
    if ctx.store.nafs.remove(&fqdn).await? {
        writeln!(out, "removed {fqdn}")?;
        Ok(())
    } else {
        Err(CommandError::UnknownNaf(fqdn))
    }
}

/// `akaid ue bootstrap`: runs Ub as a handset, keeping the USIM state in `--state`.
pub async fn ue_bootstrap(args: &UeBootstrapArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    use crate::ue::ub::UbClient;
    let mut handset = args.handset.load()?;
    let result = UbClient::new()?
        .bootstrap(&args.handset.bsf, &mut handset)
        .await;
    args.handset.save(&handset.usim)?;
    let done = result?;
    let ks_naf = match &args.naf {
        Some(fqdn) => {
            let naf_id = crate::gba::NafId::new(fqdn, crate::gba::UaProtocolId::HTTP_DIGEST)
                .map_err(|e| FieldError::new("naf", e.to_string()))?;
            Some(crate::gba::ks_naf(
                &done.ks,
                &done.rand,
                handset.impi.as_str(),
                &naf_id,
            ))
        }
        None => None,
    };
    use base64::Engine as _;
    let b64 = |k: &crate::gba::KsNaf| base64::engine::general_purpose::STANDARD.encode(k.expose());
    if args.json {
        let doc = json!({
            "btid": done.btid.as_str(),
            "lifetime": rfc3339(done.lifetime),
            "ksNaf": ks_naf.as_ref().map(b64),
            "naf": args.naf,
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "B-TID:     {}", done.btid)?;
        writeln!(out, "lifetime:  {}", rfc3339(done.lifetime))?;
        if let (Some(key), Some(fqdn)) = (&ks_naf, &args.naf) {
            writeln!(
                out,
                "Ks_NAF:    {} (for {fqdn}, Ua over HTTP; base64, the Ua password)",
                b64(key)
            )?;
        }
    }
    Ok(())
}

/// `akaid demo`: runs until Ctrl-C or SIGTERM. Without `data_dir` it keeps its state in a new
/// temporary directory, removed on exit.
pub async fn demo(
    config: &Config,
    args: &DemoArgs,
    data_dir: Option<&std::path::Path>,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let temporary = data_dir.is_none();
    let dir = match data_dir {
        Some(dir) => dir.to_owned(),
        None => std::env::temp_dir().join(format!(
            "akaid-demo-{}",
            hex::encode(rand::random::<[u8; 6]>())
        )),
    };
    let mut config = config.clone();
    config.data_dir = dir.clone();
    let started = crate::demo::start(crate::demo::DemoSettings {
        host: args.host,
        op_port: args.op_port,
        bsf_port: args.bsf_port,
        rp_port: args.rp_port,
        proxy_port: args.proxy_port,
        config,
    })
    .await;
    let result = match started {
        Ok(demo) => {
            // Listening for the signal before saying "Stop with Ctrl-C".
            let stop = crate::web::shutdown_signal();
            let printed = write!(out, "{}", demo.instructions(temporary))
                .and_then(|()| out.flush())
                .map_err(CommandError::from);
            if printed.is_ok() {
                stop.await;
            }
            let stopped = demo.shutdown().await.map_err(CommandError::from);
            printed.and(stopped)
        }
        Err(e) => Err(e.into()),
    };
    if temporary && let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(path = %dir.display(), "cannot remove the demo's data directory: {e}");
    }
    result
}

/// `akaid ue login`
pub async fn ue_login(args: &UeLoginArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    use crate::ue::browser::{Browser, Decision};
    let mut browser = Browser::new(args.handset.bsf.clone(), args.handset.load()?)?;
    browser.stop_before = args.stop_before.clone();
    let decision = if args.deny {
        Decision::Deny
    } else {
        Decision::Allow
    };
    let result = browser.login(&args.url, decision).await;
    args.handset.save(&browser.handset().usim)?;
    let landing = result?;
    let cookies = args.cookies_for.as_ref().and_then(|u| browser.cookies(u));
    if args.json {
        let doc = json!({
            "url": landing.url.as_str(),
            "status": landing.status,
            "authenticated": landing.authenticated,
            "consented": landing.consented,
            "body": landing.body,
            "cookies": cookies,
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "landed:  {} (HTTP {})", landing.url, landing.status)?;
        if let Some(c) = cookies {
            writeln!(out, "cookies: {c}")?;
        }
        writeln!(out, "{}", landing.body)?;
    }
    Ok(())
}

/// `akaid ue proxy`: prints where it listens and how to point a browser at it, then serves
/// until the process is stopped.
pub async fn ue_proxy(args: &UeProxyArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    let handset = args.handset.load()?;
    let listen_error = |source| CommandError::Listen {
        addr: args.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the proxy listens beyond loopback: anyone who reaches it signs in as this handset"
        );
    }
    // What a browser on this machine connects to (an unspecified address is reachable there).
    let mut browser_addr = addr;
    if addr.ip().is_unspecified() {
        browser_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    writeln!(out, "akaid ue proxy listening on http://{addr}")?;
    writeln!(
        out,
        "GBA handset: {} (BSF {})",
        args.handset.impi, args.handset.bsf
    )?;
    writeln!(
        out,
        "Start a browser on this machine with (Chromium skips a proxy for loopback otherwise):"
    )?;
    writeln!(
        out,
        "  chromium --proxy-server=http://{browser_addr} --proxy-bypass-list=\"<-loopback>\""
    )?;
    writeln!(
        out,
        "Only http:// sites get GBA sign-in; https:// goes through untouched CONNECT tunnels."
    )?;
    out.flush()?;
    crate::ue::proxy::serve(
        listener,
        crate::ue::proxy::ProxySettings {
            bsf: args.handset.bsf.clone(),
            handset,
            usim_state_file: args.handset.state.clone(),
        },
    )
    .await?;
    Ok(())
}

/// `akaid ue bench`
pub async fn ue_bench(args: &UeBenchArgs, out: &mut dyn Write) -> Result<(), CommandError> {
    if let (Some(issuer), Some(client_id), Some(client_secret), Some(redirect_uri)) = (
        &args.oidc,
        &args.client_id,
        &args.client_secret,
        &args.redirect_uri,
    ) {
        let report = crate::ue::oidc_bench::run_flows(crate::ue::oidc_bench::OidcBenchSettings {
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            redirect_uri: redirect_uri.clone(),
            bsf: args.bsf.clone(),
            seed: args.seed.clone(),
            subscribers: args.subscribers,
            concurrency: args.concurrency,
            duration: std::time::Duration::from_secs(args.duration),
        })
        .await?;
        write!(out, "{report}")?;
        return Ok(());
    }
    if let Some(endpoint) = &args.login {
        let report = crate::ue::bench::run_logins(crate::ue::bench::LoginBenchSettings {
            endpoint: endpoint.clone(),
            bsf: args.bsf.clone(),
            seed: args.seed.clone(),
            subscribers: args.subscribers,
            concurrency: args.concurrency,
            duration: std::time::Duration::from_secs(args.duration),
        })
        .await?;
        write!(out, "{report}")?;
        return Ok(());
    }
    let report = crate::ue::bench::run(crate::ue::bench::BenchSettings {
        bsf: args.bsf.clone(),
        seed: args.seed.clone(),
        subscribers: args.subscribers,
        concurrency: args.concurrency,
        duration: std::time::Duration::from_secs(args.duration),
    })
    .await?;
    write!(out, "{report}")?;
    Ok(())
}
