//! The OpenID Provider's issuer and metadata (OpenID Connect Discovery 1.0 §3, §4; DESIGN.md
//! §2.7): what `/.well-known/openid-configuration` serves.
//!
//! The document is a plain serde struct serialised with `serde_json`, not the `openidconnect`
//! crate's `ProviderMetadata`: that crate would add a second copy of `sha2`, `rand` and their
//! kin to every build of the server for one struct, while the tests already parse this
//! document with it (as a relying party does) and so check that the two agree.
//!
//! The issuer is `public_url` without its trailing slash, and it is the same string in this
//! document, at every endpoint URL's start and in every token (Discovery §4.3 requires the
//! `issuer` here to equal the URL the document was fetched under, less the well-known path).
//! Outside loopback it must be `https://` (Discovery §3): [`check_issuer_url`].
//!
//! Pure: no I/O.

use serde::Serialize;
use url::Url;

use crate::oidc::jose::SigningAlg;

/// The authentication context class the OP asserts in `acr`: the login with the SIM (GBA,
/// Digest keyed by Ks_NAF, which is bound to the OP's host name) resists phishing. It is the
/// PAPE 1.0 §4 policy the OpenID 2.0 side asserts for the same login, so a site moving from
/// OpenID 2.0 keeps the value it checked.
pub const ACR_PHISHING_RESISTANT: &str = crate::openid2::ext::PAPE_PHISHING_RESISTANT;

/// The scopes the OP understands (Core §5.4; `openid2` is the OpenID 2.0 → OpenID Connect
/// Migration 1.0 scope).
pub const SCOPES_SUPPORTED: [&str; 5] = ["openid", "phone", "profile", "offline_access", "openid2"];

/// The claims the OP may put in ID tokens or the userinfo response (Core §2, §5.1; RFC 8176
/// for `amr`; `openid2_id` from OpenID 2.0 → OpenID Connect Migration 1.0 §4). The profile
/// claims are the subscriber profile fields that have an OpenID Connect name.
pub const CLAIMS_SUPPORTED: [&str; 20] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "phone_number",
    "phone_number_verified",
    "name",
    "nickname",
    "birthdate",
    "gender",
    "zoneinfo",
    "locale",
    "openid2_id",
];

/// The paths of the OP's OpenID Connect endpoints, below the issuer (DESIGN.md §2.7).
pub mod paths {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZE: &str = "/authorize";
    pub const TOKEN: &str = "/token";
    pub const USERINFO: &str = "/userinfo";
    pub const LOGOUT: &str = "/logout";
    pub const JWKS: &str = "/jwks";
}

/// The issuer identifier for a `public_url`: the URL without its trailing slash.
pub fn issuer(public_url: &Url) -> String {
    public_url.as_str().trim_end_matches('/').to_owned()
}

/// Why a `public_url` cannot be the issuer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "public_url {0} is plain http:// on a host that is not loopback, but an OpenID Connect \
     issuer must be https:// (Discovery 1.0 §3): give an https:// public_url (e.g. behind a \
     TLS-terminating proxy), or pass --insecure-http (insecure_http = true) to allow it for a \
     test network"
)]
pub struct InsecureIssuer(pub String);

/// Refuses an `http://` public URL outside loopback unless `insecure_http` allows it.
pub fn check_issuer_url(public_url: &Url, insecure_http: bool) -> Result<(), InsecureIssuer> {
    if public_url.scheme() == "http" && !super::is_loopback(public_url) && !insecure_http {
        return Err(InsecureIssuer(public_url.to_string()));
    }
    Ok(())
}

/// OpenID Provider Metadata (Discovery 1.0 §3, RFC 8414 §2 for the PKCE field, RP-Initiated
/// Logout 1.0 §2.1 for `end_session_endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub claim_types_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    /// Discovery §3: its default is `true`, so it is said explicitly.
    pub request_uri_parameter_supported: bool,
    /// RFC 9207 §3: every authorization response (codes and errors) carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
}

impl ProviderMetadata {
    /// The metadata of the OP whose issuer is `issuer` (see [`issuer`]).
    pub fn new(issuer: &str) -> Self {
        let at = |path: &str| format!("{issuer}{path}");
        Self {
            issuer: issuer.to_owned(),
            authorization_endpoint: at(paths::AUTHORIZE),
            token_endpoint: at(paths::TOKEN),
            userinfo_endpoint: at(paths::USERINFO),
            jwks_uri: at(paths::JWKS),
            end_session_endpoint: at(paths::LOGOUT),
            scopes_supported: SCOPES_SUPPORTED.to_vec(),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec!["authorization_code", "refresh_token"],
            acr_values_supported: vec![ACR_PHISHING_RESISTANT],
            subject_types_supported: vec!["pairwise", "public"],
            // RS256 first: the default for clients that registered none (Core §3.1.3.7).
            id_token_signing_alg_values_supported: SigningAlg::ALL
                .iter()
                .map(|a| a.as_str())
                .collect(),
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            // `plain` would let an intercepted code be redeemed (RFC 7636 §7.2).
            code_challenge_methods_supported: vec!["S256"],
            claims_supported: CLAIMS_SUPPORTED.to_vec(),
            claim_types_supported: vec!["normal"],
            prompt_values_supported: vec!["none", "login", "consent"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_the_public_url_without_its_slash() {
        let url = Url::parse("https://op.example/").unwrap();
        assert_eq!(issuer(&url), "https://op.example");
        let url = Url::parse("https://op.example/tenant/").unwrap();
        assert_eq!(issuer(&url), "https://op.example/tenant");
        let doc = ProviderMetadata::new(&issuer(&url));
        assert_eq!(doc.jwks_uri, "https://op.example/tenant/jwks");
        assert_eq!(
            doc.authorization_endpoint,
            "https://op.example/tenant/authorize"
        );
        assert_eq!(
            doc.id_token_signing_alg_values_supported,
            ["RS256", "ES256", "EdDSA"]
        );
    }

    #[test]
    fn plain_http_issuers_only_on_loopback_or_when_allowed() {
        for ok in [
            "https://op.example/",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://localhost:8080/",
            "http://[::1]:8080/",
        ] {
            check_issuer_url(&Url::parse(ok).unwrap(), false).unwrap();
        }
        for bad in [
            "http://op.example/",
            "http://10.0.0.1/",
            "http://0.0.0.0:8080/",
        ] {
            let url = Url::parse(bad).unwrap();
            let err = check_issuer_url(&url, false).unwrap_err();
            assert!(err.to_string().contains("--insecure-http"), "{err}");
            check_issuer_url(&url, true).unwrap();
        }
    }
}
