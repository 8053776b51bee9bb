//! Configuration: defaults → `akaid.toml` → `AKAID_*` environment → command-line flags.
//!
//! Zero configuration works: data in `./akaid-data/`, SQLite in `./akaid-data/akaid.db`, the
//! OP on `http://127.0.0.1:8080/` and the BSF on `http://127.0.0.1:8081/`. Every field is
//! listed once, in [`config_fields!`], with its documentation, its default, its key in the
//! file and its environment variable (`AKAID_` + the key in upper case). An unknown key in
//! the file is an error that names it. `akaid config` prints the resolved configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use url::Url;

use crate::secret::Secret;
use crate::web::client_ip::CidrList;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// A value that can come from an environment variable as well as from the TOML file.
pub trait EnvValue: Sized {
    fn from_env(text: &str) -> Result<Self, String>;
}

macro_rules! env_value_from_str {
    ($($ty:ty),*) => {$(
        impl EnvValue for $ty {
            fn from_env(text: &str) -> Result<Self, String> {
                <$ty>::from_str(text).map_err(|e| e.to_string())
            }
        }
    )*};
}
env_value_from_str!(
    String,
    PathBuf,
    Url,
    u32,
    u64,
    bool,
    LogFormat,
    RpDiscovery,
    Roles,
    CidrList
);

impl EnvValue for SecretString {
    fn from_env(text: &str) -> Result<Self, String> {
        Ok(SecretString(Secret::new(text.to_owned())))
    }
}

/// A configured secret: redacted in `Debug` and in `akaid config`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(#[serde(deserialize_with = "secret_string")] pub Secret<String>);

fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    String::deserialize(d).map(Secret::new)
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which network functions a process runs (DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Roles {
    pub op: bool,
    pub bsf: bool,
}

impl FromStr for Roles {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut roles = Roles {
            op: false,
            bsf: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "op" => roles.op = true,
                "bsf" => roles.bsf = true,
                other => return Err(format!("{other:?} is not a role (op, bsf)")),
            }
        }
        Ok(roles)
    }
}

impl TryFrom<String> for Roles {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.op, "op"), (self.bsf, "bsf")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

impl<T: EnvValue> EnvValue for Option<T> {
    fn from_env(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Ok(None)
        } else {
            T::from_env(text).map(Some)
        }
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("{other:?} is not a log format (text, json)")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Whether the OpenID 2.0 provider checks a `return_to` URL against the relying party's own
/// published list (OpenID Authentication 2.0 §9.2.1, §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RpDiscovery {
    /// Never fetch anything from relying parties.
    Off,
    /// Fetch the realm's XRDS; a `return_to` the site does not list is refused, a site that
    /// lists nothing (or cannot be reached) is served.
    #[default]
    Check,
    /// As `check`, and a site that lists nothing (or cannot be reached) is refused too.
    Require,
}

impl FromStr for RpDiscovery {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "check" => Ok(Self::Check),
            "require" => Ok(Self::Require),
            other => Err(format!(
                "{other:?} is not a discovery mode (off, check, require)"
            )),
        }
    }
}

impl fmt::Display for RpDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Check => "check",
            Self::Require => "require",
        })
    }
}

macro_rules! config_fields {
    ($( $(#[doc = $doc:expr])+ $name:ident: $ty:ty = $default:expr; )+) => {
        /// The resolved configuration.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        /// One source's contribution: what it sets, and nothing for what it leaves alone.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Layer {
            $( pub $name: Option<$ty>, )+
        }

        impl Layer {
            /// `self` over `base`: what `self` sets wins.
            pub fn over(self, base: Layer) -> Layer {
                Layer { $( $name: self.$name.or(base.$name), )+ }
            }

            /// The `AKAID_*` variables that `lookup` knows.
            pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
                Ok(Layer { $( $name: env_field(lookup, stringify!($name))?, )+ })
            }

            fn resolve(self) -> Config {
                Config { $( $name: self.$name.unwrap_or_else(|| $default), )+ }
            }
        }

        /// Every field: (key, its documentation, its value in `config`).
        pub fn describe(config: &Config) -> Vec<(&'static str, String, String)> {
            vec![ $( (
                stringify!($name),
                [$($doc),+].iter().map(|line| line.trim()).collect::<Vec<_>>().join(" "),
                DisplayValue::show(&config.$name),
            ), )+ ]
        }
    };
}

config_fields! {
    /// Directory for the SQLite database and the master key file. Created on first use.
    data_dir: PathBuf = PathBuf::from("./akaid-data");
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST/DB`. Empty means
    /// `sqlite://<data_dir>/akaid.db`. Several processes need PostgreSQL.
    database_url: Option<String> = None;
    /// The OP's public URL (issuer, OpenID endpoint base, NAF FQDN). Ends with `/`.
    public_url: Url = default_url("http://127.0.0.1:8080/");
    /// Serve an `http://` public_url whose host is not loopback. For test networks only: an
    /// OpenID Connect issuer must be `https://` (Discovery 1.0 §3), and logins would cross the
    /// network unprotected; without it `serve` refuses such a URL (`serve --insecure-http`).
    insecure_http: bool = false;
    /// The BSF's URL (Ub and Zn). Its host names the BSF realm and the B-TID domain.
    bsf_url: Url = default_url("http://127.0.0.1:8081/");
    /// File holding the 64-hex-digit master key. Empty: `AKAID_MASTER_KEY` if set, else
    /// `<data_dir>/master.key` (created on first run, SQLite only).
    master_key_file: Option<PathBuf> = None;
    /// Log filter, in `tracing` env-filter syntax (e.g. `info`, `akaid=debug,sqlx=warn`).
    log: String = "info".to_owned();
    /// Log line format: `text` or `json`.
    log_format: LogFormat = LogFormat::Text;
    /// Which roles this process runs: `op,bsf` (both, the default), `op` or `bsf`. An OP
    /// without the BSF reaches it over Zn at bsf_url with zn_secret.
    roles: Roles = Roles { op: true, bsf: true };
    /// Seconds a Ub challenge stays answerable (TS 24.109 §4.4); later answers get a fresh
    /// challenge with stale=true.
    ub_challenge_ttl_secs: u64 = 30;
    /// Seconds a bootstrapping session (B-TID and its keys) lives (TS 33.220 §4.5.2).
    bootstrap_lifetime_secs: u64 = 3600;
    /// Seconds an OpenID Connect ID token is valid: its `exp` after `iat` (Core §2). Short,
    /// because relying parties check it once, at login.
    oidc_id_token_ttl_secs: u64 = 300;
    /// Seconds an OpenID Connect access token (a JWT, RFC 9068) is valid at /userinfo.
    oidc_access_token_ttl_secs: u64 = 600;
    /// Seconds an OpenID Connect refresh token stays usable (RFC 6749 §6).
    oidc_refresh_token_ttl_secs: u64 = 2592000;
    /// Seconds an authorization code may wait to be redeemed, once (RFC 6749 §4.1.2 allows
    /// at most ten minutes).
    oidc_code_ttl_secs: u64 = 60;
    /// Seconds a retired signing key stays in the JWKS beyond the longest ID or access token
    /// lifetime, so every token it signed can still be verified: covers clock skew and
    /// relying parties that cache the JWKS. After that `akaid` deletes the key.
    oidc_key_overlap_margin_secs: u64 = 600;
    /// Ub challenges one IMPI may get per minute, counted in the database so that all
    /// processes share the budget; 0 means no limit.
    ub_limit_per_impi: u64 = 30;
    /// Ub requests one client address may make per second, counted in each process; 0 means
    /// no limit. Generous by default: handsets share addresses behind carrier NAT.
    ub_limit_per_ip: u64 = 500;
    /// OpenID 2.0 `associate` requests one client address may make per second, counted in
    /// each process (a Diffie-Hellman association costs the OP a modular exponentiation);
    /// 0 means no limit. Relying parties associate once per `expires_in`, not per login.
    openid2_associate_limit_per_ip: u64 = 20;
    /// Allow `no-encryption` associations over plain HTTP. For local testing only: the MAC key
    /// then crosses the network in the clear (OpenID Authentication 2.0 §8.4.1). Over HTTPS
    /// they are always allowed.
    openid2_no_encryption_over_http: bool = false;
    /// Relying-party discovery (OpenID Authentication 2.0 §13): `check` (the default) fetches
    /// the realm's XRDS and refuses a `return_to` the site does not list; `require` also
    /// refuses sites that list nothing; `off` fetches nothing.
    openid2_rp_discovery: RpDiscovery = RpDiscovery::Check;
    /// Address blocks outside the public internet that relying-party discovery may still
    /// reach (`127.0.0.0/8` for local testing, or an intranet). By default only globally
    /// routable addresses are fetched, so a realm cannot point the OP at internal services.
    openid2_rp_discovery_allow: CidrList = CidrList::default();
    /// Milliseconds one relying-party discovery may take, redirects included.
    openid2_rp_discovery_timeout_ms: u64 = 3000;
    /// Proxies whose `X-Forwarded-For` is believed, as comma-separated address blocks
    /// (`10.0.0.0/8,2001:db8::/32`); per-address limits then count the client behind them.
    /// Empty: the connection's peer is the client.
    trusted_proxies: CidrList = CidrList::default();
    /// The bearer secret this OP presents on Zn when the BSF runs in another process (from
    /// `akaid naf add` on the BSF's database). Not needed when one process runs both roles.
    zn_secret: Option<SecretString> = None;
}

fn default_url(text: &str) -> Url {
    // The defaults are literals checked by the tests below.
    Url::parse(text).unwrap_or_else(|_| unreachable!("bad default URL {text}"))
}

fn env_field<T: EnvValue>(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError> {
    let var = format!("AKAID_{}", name.to_ascii_uppercase());
    lookup(&var)
        .map(|text| T::from_env(&text).map_err(|message| ConfigError::Env { var, message }))
        .transpose()
}

/// How `describe` shows a value.
trait DisplayValue {
    fn show(&self) -> String;
}

impl DisplayValue for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl DisplayValue for String {
    fn show(&self) -> String {
        self.clone()
    }
}

impl DisplayValue for Url {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for LogFormat {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for Option<String> {
    fn show(&self) -> String {
        // A database URL may carry a password.
        self.as_deref()
            .map(crate::store::redact_url)
            .unwrap_or_default()
    }
}

impl DisplayValue for Roles {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for RpDiscovery {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for bool {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for CidrList {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for u64 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl DisplayValue for Option<SecretString> {
    fn show(&self) -> String {
        match self {
            Some(_) => "[redacted]".to_owned(),
            None => String::new(),
        }
    }
}

impl DisplayValue for Option<PathBuf> {
    fn show(&self) -> String {
        self.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

/// The configuration file read when none is named.
pub const DEFAULT_FILE: &str = "akaid.toml";

impl Layer {
    /// Parses a TOML configuration file's text.
    pub fn from_toml(path: &Path, text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })
    }
}

impl Config {
    /// Resolves the layers: defaults, then the file (`file`, else `./akaid.toml` if it
    /// exists), then the environment, then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: Layer,
    ) -> Result<Config, ConfigError> {
        let file_layer = match file {
            Some(path) => Some(read_file(path)?),
            None if Path::new(DEFAULT_FILE).exists() => Some(read_file(Path::new(DEFAULT_FILE))?),
            None => None,
        };
        let env_layer = Layer::from_env(env)?;
        let config = flags
            .over(env_layer)
            .over(file_layer.unwrap_or_default())
            .resolve();
        config.validate()?;
        Ok(config)
    }

    /// The default configuration with `data_dir` set: what tests and the demo start from.
    pub fn with_data_dir(data_dir: &Path) -> Config {
        Layer {
            data_dir: Some(data_dir.to_owned()),
            ..Layer::default()
        }
        .resolve()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (field, url) in [("public_url", &self.public_url), ("bsf_url", &self.bsf_url)] {
            let invalid = |message: String| ConfigError::Invalid { field, message };
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(format!("{url} is not an http:// or https:// URL")));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid(format!("{url} has no host")));
            }
            if !url.path().ends_with('/') {
                return Err(invalid(format!("{url} must end with '/'")));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(format!("{url} must not have a query or fragment")));
            }
        }
        if let Some(db) = &self.database_url
            && !(db.starts_with("sqlite:")
                || db.starts_with("postgres:")
                || db.starts_with("postgresql:"))
        {
            return Err(ConfigError::Invalid {
                field: "database_url",
                message: format!(
                    "{} is not sqlite:// or postgres://",
                    crate::store::redact_url(db)
                ),
            });
        }
        for (field, secs) in [
            ("oidc_id_token_ttl_secs", self.oidc_id_token_ttl_secs),
            (
                "oidc_access_token_ttl_secs",
                self.oidc_access_token_ttl_secs,
            ),
            (
                "oidc_refresh_token_ttl_secs",
                self.oidc_refresh_token_ttl_secs,
            ),
            ("oidc_code_ttl_secs", self.oidc_code_ttl_secs),
        ] {
            if secs == 0 || i64::try_from(secs).is_err() {
                return Err(ConfigError::Invalid {
                    field,
                    message: format!("{secs} is not a usable lifetime in seconds"),
                });
            }
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("akaid.db").display()),
        }
    }

    /// Whether the database is the embedded SQLite (the data directory holds it).
    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// How long a retired signing key's public half stays in the JWKS: the longest lifetime
    /// of a token it signed (ID or access token) plus `oidc_key_overlap_margin_secs`.
    pub fn oidc_key_overlap(&self) -> time::Duration {
        let secs = self
            .oidc_id_token_ttl_secs
            .max(self.oidc_access_token_ttl_secs)
            .saturating_add(self.oidc_key_overlap_margin_secs);
        time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

fn read_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Layer::from_toml(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn zero_configuration_has_working_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        assert!(Config::load(Some(&missing), &no_env, Layer::default()).is_err());
        let config = Layer::default().resolve();
        config.validate().unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./akaid-data"));
        assert_eq!(config.database_url(), "sqlite://./akaid-data/akaid.db");
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.bsf_url.as_str(), "http://127.0.0.1:8081/");
        assert!(config.is_sqlite());
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("akaid.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlog = \"debug\"\npublic_url = \"https://file.example/\"\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = [
            ("AKAID_LOG", "warn"),
            ("AKAID_PUBLIC_URL", "https://env.example/"),
        ]
        .into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let flags = Layer {
            public_url: Some(Url::parse("https://flag.example/").unwrap()),
            ..Layer::default()
        };
        let config = Config::load(Some(&file), &lookup, flags).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.log, "warn");
        assert_eq!(config.public_url.as_str(), "https://flag.example/");
    }

    #[test]
    fn unknown_key_in_the_file_is_named() {
        let err = Layer::from_toml(Path::new("akaid.toml"), "data_dri = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("akaid.toml") && text.contains("data_dri"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let env = |k: &str| (k == "AKAID_LOG_FORMAT").then(|| "xml".to_owned());
        let err = Config::load(None, &env, Layer::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AKAID_LOG_FORMAT") && err.contains("xml"),
            "{err}"
        );
        let flags = Layer {
            public_url: Some(Url::parse("http://127.0.0.1:8080/op").unwrap()),
            ..Layer::default()
        };
        let err = Config::load(None, &no_env, flags).unwrap_err().to_string();
        assert!(
            err.starts_with("public_url:") && err.contains("end with '/'"),
            "{err}"
        );
        let flags = Layer {
            database_url: Some(Some("mysql://x".into())),
            ..Layer::default()
        };
        let err = Config::load(None, &no_env, flags).unwrap_err().to_string();
        assert!(err.starts_with("database_url:"), "{err}");
    }

    #[test]
    fn every_field_is_documented() {
        let config = Layer::default().resolve();
        for (key, doc, _) in describe(&config) {
            assert!(doc.len() > 20, "{key} needs documentation");
        }
    }

    #[test]
    fn described_database_url_hides_its_password() {
        let config = Config {
            database_url: Some("postgres://akaid:hunter2@db.example/akaid".into()),
            ..Layer::default().resolve()
        };
        let shown = describe(&config)
            .into_iter()
            .find(|(k, _, _)| *k == "database_url")
            .unwrap()
            .2;
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
