//! OpenID Connect clients (relying parties) as the operator registers them with
//! `akaid client add` (DESIGN.md §2.7, §4): what a registration must satisfy, the client
//! secret, and the questions the protocol asks of a stored client.
//!
//! - Redirect URIs (Core 1.0 §3.1.2.1, RFC 6749 §3.1.2) are kept as the exact strings given
//!   and compared exactly; each must be an absolute `https://` URL without a fragment, or
//!   `http://` on a loopback host (native apps and development, RFC 8252 §7.3). The same rules
//!   hold for post-logout redirect URIs (RP-Initiated Logout 1.0 §2).
//! - The `sub` is pairwise by default (Core §8.1): computed per sector host, the host of the
//!   redirect URIs, so a pairwise client whose redirect URIs are on several hosts must name one
//!   sector host. The sector host is stored with the client (NULL for `public` subjects) so its
//!   subscribers' `sub` never changes.
//! - ID tokens are RS256 unless the client registered ES256 or EdDSA (Core §3.1.3.7,
//!   Registration 1.0 §2 `id_token_signed_response_alg`).
//! - A confidential client's secret is 32 random bytes, base64url (RFC 6749 §2.3.1), shown
//!   once; only its SHA-256 is stored, checked in constant time by [`verify_secret`].
//!
//! Pure: the random bytes and the time are arguments ([`ClientRandom`] draws them).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;
use url::Url;

use crate::ids::ClientId;
use crate::oidc::jose::SigningAlg;
use crate::secret::Secret;
use crate::store::OidcClient;

/// How the OP computes a client's `sub` (Core 1.0 §8, Discovery `subject_types_supported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectType {
    /// Different for every sector, so relying parties cannot link their users (the default).
    #[default]
    Pairwise,
    /// The subscriber's one stable identifier, the same at every client that has it.
    Public,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pairwise => "pairwise",
            Self::Public => "public",
        }
    }
}

impl fmt::Display for SubjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubjectType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pairwise" => Ok(Self::Pairwise),
            "public" => Ok(Self::Public),
            other => Err(format!(
                "{other:?} is not a subject type (pairwise, public)"
            )),
        }
    }
}

/// A registration that cannot be stored, and why; `field` is the `akaid client add` flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RegistrationError {
    pub field: &'static str,
    pub reason: String,
}

impl RegistrationError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The longest client name shown on the consent page.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest redirect URI accepted; longer ones do not survive every browser and proxy.
pub const MAX_URI_LEN: usize = 2000;

/// What the operator asks for; [`register`] checks it.
#[derive(Debug, Clone, Default)]
pub struct Registration<'a> {
    /// Shown to subscribers on the consent page and the account page.
    pub name: &'a str,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    /// A public client (a native app or single-page app) has no secret and must use PKCE.
    pub public: bool,
    /// RS256 when `None`.
    pub id_token_alg: Option<SigningAlg>,
    /// Pairwise when `None`.
    pub subject_type: Option<SubjectType>,
    /// The sector of a pairwise client whose redirect URIs are on several hosts.
    pub sector_host: Option<&'a str>,
}

/// The random values a new client needs.
pub struct ClientRandom {
    pub client_id: [u8; 16],
    pub secret: Secret<[u8; 32]>,
}

impl fmt::Debug for ClientRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientRandom([redacted])")
    }
}

impl ClientRandom {
    /// Fresh values from the operating system's generator.
    pub fn draw() -> Self {
        let mut rng = rand::rng();
        let mut secret = Secret::new([0u8; 32]);
        rand::Rng::fill(&mut rng, &mut secret.expose_mut()[..]);
        Self {
            client_id: rand::Rng::random(&mut rng),
            secret,
        }
    }
}

/// A registered client and, for a confidential one, its secret: shown once, never stored.
#[derive(Debug)]
pub struct NewClient {
    pub client: OidcClient,
    pub secret: Option<Secret<String>>,
}

/// Checks a registration and makes the client row (with the secret's hash) and the secret.
pub fn register(
    reg: &Registration<'_>,
    random: &ClientRandom,
    now: OffsetDateTime,
) -> Result<NewClient, RegistrationError> {
    let name = check_name(reg.name)?;
    if reg.redirect_uris.is_empty() {
        return Err(RegistrationError::new(
            "--redirect-uri",
            "a client needs at least one redirect URI",
        ));
    }
    let redirect_uris = check_uris("--redirect-uri", reg.redirect_uris)?;
    let post_logout_redirect_uris =
        check_uris("--post-logout-redirect-uri", reg.post_logout_redirect_uris)?;
    let subject_type = reg.subject_type.unwrap_or_default();
    let sector_host = match (subject_type, reg.sector_host) {
        (SubjectType::Public, Some(_)) => {
            return Err(RegistrationError::new(
                "--sector-host",
                "only a pairwise client has a sector; a public client's sub is the same \
                 everywhere",
            ));
        }
        (SubjectType::Public, None) => None,
        (SubjectType::Pairwise, Some(host)) => Some(check_sector_host(host)?),
        (SubjectType::Pairwise, None) => Some(single_host(&redirect_uris)?),
    };
    let secret = (!reg.public).then(|| new_secret(random.secret.expose()));
    Ok(NewClient {
        client: OidcClient {
            client_id: ClientId::from_random(&random.client_id),
            name,
            secret_hash: secret.as_ref().map(|s| secret_hash(s.expose())),
            redirect_uris,
            post_logout_redirect_uris,
            id_token_alg: reg.id_token_alg.unwrap_or(SigningAlg::RS256),
            subject_type,
            sector_host,
            created_at: now,
        },
        secret,
    })
}

fn check_name(name: &str) -> Result<String, RegistrationError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(RegistrationError::new(
            "--name",
            "is empty; subscribers see it when they are asked to consent",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(RegistrationError::new(
            "--name",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(RegistrationError::new(
            "--name",
            "contains control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Each URI checked, duplicates dropped, order kept.
fn check_uris(field: &'static str, uris: &[String]) -> Result<Vec<String>, RegistrationError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(uris.len());
    for uri in uris {
        check_uri(field, uri)?;
        if seen.insert(uri.as_str()) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// Checks one redirect (or post-logout redirect) URI; returns it parsed.
pub fn check_uri(field: &'static str, uri: &str) -> Result<Url, RegistrationError> {
    let refuse = |reason: String| RegistrationError::new(field, format!("{uri:?} {reason}"));
    if uri.len() > MAX_URI_LEN {
        return Err(refuse(format!("is longer than {MAX_URI_LEN} characters")));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(
            "contains spaces or control characters; it is compared exactly, so give it \
             percent-encoded"
                .into(),
        ));
    }
    let url = Url::parse(uri).map_err(|e| refuse(format!("is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(refuse("is not an https:// URL".into()));
    }
    if uri.contains('#') {
        return Err(refuse(
            "has a fragment (#…), which a redirect URI must not have (Core §3.1.2.1)".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("carries a user name or password".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("has no host".into()));
    }
    if url.scheme() == "http" && !super::is_loopback(&url) {
        return Err(refuse(
            "is plain http://, allowed only on loopback hosts (localhost, 127.0.0.1, [::1]) \
             for native apps and development; use https://"
                .into(),
        ));
    }
    Ok(url)
}

/// The host of a parsed, checked URI, lower-case and without the port.
fn host_of(uri: &str) -> Option<String> {
    Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
}

/// The one host all redirect URIs share: a pairwise client's sector (Core §8.1).
fn single_host(redirect_uris: &[String]) -> Result<String, RegistrationError> {
    let hosts: BTreeSet<String> = redirect_uris.iter().filter_map(|u| host_of(u)).collect();
    let mut iter = hosts.iter();
    match (iter.next(), iter.next()) {
        (Some(host), None) => Ok(host.clone()),
        _ => Err(RegistrationError::new(
            "--redirect-uri",
            format!(
                "the redirect URIs are on several hosts ({}); a pairwise client's sub is \
                 computed per host, so give the one sector host they share with \
                 --sector-host HOST (Core §8.1), or register them as separate clients",
                hosts.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn check_sector_host(host: &str) -> Result<String, RegistrationError> {
    let refuse =
        |reason: &str| RegistrationError::new("--sector-host", format!("{host:?} {reason}"));
    if host.is_empty() || (host.contains(['/', ':', '@', '?', '#']) && !host.starts_with('[')) {
        return Err(refuse(
            "is not a host name (give the host only, e.g. example.com)",
        ));
    }
    let url = Url::parse(&format!("https://{host}/"))
        .map_err(|_| refuse("is not a host name (give the host only, e.g. example.com)"))?;
    match url.host_str() {
        Some(parsed) if parsed.eq_ignore_ascii_case(host) && url.port().is_none() => {
            Ok(parsed.to_ascii_lowercase())
        }
        _ => Err(refuse(
            "is not a host name (give the host only, e.g. example.com)",
        )),
    }
}

/// A new client secret: 256 random bits, base64url without padding (43 characters).
pub fn new_secret(random: &[u8; 32]) -> Secret<String> {
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

/// What is stored of a client secret: its SHA-256. A plain hash (not a password hash such as
/// Argon2) suffices because the secret is 256 random bits that no one chose: nothing short
/// of the whole space can be guessed, so slowing down guesses buys nothing, and `/token`
/// stays cheap.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `presented` is the secret whose hash is `stored_hash`, compared in constant time.
pub fn verify_secret(presented: &str, stored_hash: &[u8]) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    stored_hash.len() == presented.len() && bool::from(presented.as_slice().ct_eq(stored_hash))
}

impl OidcClient {
    /// A public client has no secret: it authenticates with PKCE alone.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Whether `presented` is this client's secret; always `false` for a public client.
    pub fn verify_secret(&self, presented: &str) -> bool {
        self.secret_hash
            .as_deref()
            .is_some_and(|hash| verify_secret(presented, hash))
    }

    /// Whether `uri` is one of the registered redirect URIs, compared exactly.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether `uri` is one of the registered post-logout redirect URIs, compared exactly.
    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random() -> ClientRandom {
        ClientRandom {
            client_id: [7; 16],
            secret: Secret::new([9; 32]),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn reg<'a>(redirects: &'a [String]) -> Registration<'a> {
        Registration {
            name: "Example",
            redirect_uris: redirects,
            ..Registration::default()
        }
    }

    #[test]
    fn defaults_are_confidential_rs256_pairwise_on_the_redirect_host() {
        let r = uris(&["https://rp.example/cb", "https://RP.example:8443/other?x=1"]);
        let new = register(&reg(&r), &random(), now()).unwrap();
        let c = &new.client;
        assert_eq!(c.id_token_alg, SigningAlg::RS256);
        assert_eq!(c.subject_type, SubjectType::Pairwise);
        assert_eq!(c.sector_host.as_deref(), Some("rp.example"));
        assert_eq!(c.redirect_uris, r, "kept exactly as given");
        let secret = new.secret.unwrap();
        assert_eq!(secret.expose().len(), 43);
        assert!(c.verify_secret(secret.expose()));
        assert!(!c.verify_secret("wrong"));
        assert!(!c.verify_secret(""));
        assert!(c.has_redirect_uri("https://rp.example/cb"));
        assert!(!c.has_redirect_uri("https://rp.example/cb/"));
        assert!(!c.has_redirect_uri("https://rp.example/CB"));
    }

    #[test]
    fn public_clients_have_no_secret() {
        let r = uris(&["http://127.0.0.1:9000/cb"]);
        let new = register(
            &Registration {
                public: true,
                subject_type: Some(SubjectType::Public),
                ..reg(&r)
            },
            &random(),
            now(),
        )
        .unwrap();
        assert!(new.secret.is_none());
        assert!(new.client.is_public());
        assert!(!new.client.verify_secret(""));
        assert_eq!(new.client.sector_host, None);
    }

    #[test]
    fn redirect_uris_are_refused_with_reasons() {
        for (bad, why) in [
            ("http://rp.example/cb", "loopback"),
            ("https://rp.example/cb#x", "fragment"),
            ("https://rp.example/cb#", "fragment"),
            ("/cb", "absolute"),
            ("rp.example/cb", "absolute"),
            ("ftp://rp.example/cb", "https://"),
            ("com.example.app:/cb", "https://"),
            ("https://user:pw@rp.example/cb", "user name"),
            ("https://rp.example/a b", "spaces"),
        ] {
            let r = uris(&[bad]);
            let err = register(&reg(&r), &random(), now()).unwrap_err();
            assert_eq!(err.field, "--redirect-uri", "{bad}");
            assert!(err.reason.contains(why), "{bad}: {err}");
        }
        for ok in [
            "http://localhost:8000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:1234/cb",
            "https://rp.example/cb?tenant=1",
        ] {
            let r = uris(&[ok]);
            register(&reg(&r), &random(), now()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let none: Vec<String> = Vec::new();
        assert!(register(&reg(&none), &random(), now()).is_err());
        let r = uris(&["https://rp.example/cb"]);
        let logout = uris(&["http://rp.example/bye"]);
        let err = register(
            &Registration {
                post_logout_redirect_uris: &logout,
                ..reg(&r)
            },
            &random(),
            now(),
        )
        .unwrap_err();
        assert_eq!(err.field, "--post-logout-redirect-uri");
    }

    #[test]
    fn pairwise_clients_on_several_hosts_need_a_sector_host() {
        let r = uris(&["https://a.example/cb", "https://b.example/cb"]);
        let err = register(&reg(&r), &random(), now()).unwrap_err();
        assert!(err.reason.contains("--sector-host"), "{err}");
        assert!(err.reason.contains("a.example, b.example"), "{err}");
        let new = register(
            &Registration {
                sector_host: Some("Example.COM"),
                ..reg(&r)
            },
            &random(),
            now(),
        )
        .unwrap();
        assert_eq!(new.client.sector_host.as_deref(), Some("example.com"));
        // Public clients need none, and may not have one.
        let public = Registration {
            subject_type: Some(SubjectType::Public),
            ..reg(&r)
        };
        assert!(register(&public, &random(), now()).is_ok());
        let err = register(
            &Registration {
                sector_host: Some("example.com"),
                ..public
            },
            &random(),
            now(),
        )
        .unwrap_err();
        assert_eq!(err.field, "--sector-host");
        for bad in [
            "https://example.com",
            "example.com/x",
            "example.com:443",
            "",
            "a b",
        ] {
            let err = register(
                &Registration {
                    sector_host: Some(bad),
                    ..reg(&r)
                },
                &random(),
                now(),
            )
            .unwrap_err();
            assert_eq!(err.field, "--sector-host", "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        let r = uris(&["https://rp.example/cb"]);
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(101)] {
            let err = register(
                &Registration {
                    name: bad,
                    ..reg(&r)
                },
                &random(),
                now(),
            )
            .unwrap_err();
            assert_eq!(err.field, "--name");
        }
    }

    #[test]
    fn secrets_verify_in_constant_time_against_the_hash() {
        let secret = new_secret(&[1; 32]);
        let hash = secret_hash(secret.expose());
        assert_eq!(hash.len(), 32);
        assert!(verify_secret(secret.expose(), &hash));
        assert!(!verify_secret(&secret.expose()[1..], &hash));
        assert!(!verify_secret(secret.expose(), &hash[..31]));
    }
}
