//! The authorization request (OpenID Connect Core 1.0 §3.1.2.1, RFC 6749 §4.1.1, RFC 7636
//! §4.3), pure: parameters in, a checked request or the error to answer out.
//!
//! Validation happens in two stages, because where an error may be sent depends on it
//! (RFC 6749 §4.1.2.1, Core §3.1.2.6):
//! 1. [`Target::parse`]: `client_id` and `redirect_uri`. Until the caller has found the client
//!    and the redirect URI among its registered ones (compared exactly), every error is shown
//!    to the person as a page and nothing is sent anywhere.
//! 2. [`AuthRequest::parse`]: everything else. Its errors go back to the redirect URI with
//!    `error`, `error_description`, `state` and `iss` (RFC 9207).
//!
//! Choices where the specifications leave room:
//! - `response_type=code` only; `response_mode` may only be `query`.
//! - `request` and `request_uri` are refused (`request_not_supported`,
//!   `request_uri_not_supported`, Core §6), as discovery says.
//! - A parameter sent twice is refused (RFC 6749 §3.1).
//! - PKCE: S256 only; required for public clients (RFC 9700 §2.1.1), honoured for all.
//! - `prompt=none` with any other value is `invalid_request` (Core §3.1.2.1);
//!   `select_account` is accepted and means nothing here (one SIM, one account).
//! - `max_age=0` is the same as `prompt=login` (Core §3.1.2.1).
//! - `login_hint` is an MSISDN (E.164, `+` and digits); anything else is ignored as the
//!   hint it is. The endpoint compares it with the signed-in subscriber's MSISDN.
//! - `acr_values`: every login with the SIM is phishing-resistant, so the one `acr` the OP
//!   asserts satisfies any request; unknown values are ignored (they are voluntary, §5.5.1.1).

use std::collections::HashMap;

use time::Duration;

use crate::ids::{ClientId, Msisdn};
use crate::oidc::grant::{CodeChallenge, Scope, Scopes};
use crate::openid2::realm::Realm;

/// The first stage: who the request is for and where answers go. Its errors are pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub client_id: ClientId,
    pub redirect_uri: String,
}

/// Why a request cannot be answered at its redirect URI: shown as a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("The request does not name the site (client_id is missing).")]
    MissingClientId,
    #[error("The request names a site in a way this service does not accept: {0}")]
    BadClientId(String),
    #[error("The request does not say where to send the answer (redirect_uri is missing).")]
    MissingRedirectUri,
    #[error("The request repeats the parameter {0}.")]
    Repeated(&'static str),
}

/// An error to send to the redirect URI (RFC 6749 §4.1.2.1, Core §3.1.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub error: &'static str,
    pub description: String,
}

impl AuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
}

/// `prompt` (Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub target: Target,
    pub state: Option<String>,
    pub scope: Scopes,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// `max_age`, or zero for `prompt=login`: how old a login may be.
    pub max_age: Option<Duration>,
    pub login_hint: Option<Msisdn>,
    pub code_challenge: Option<CodeChallenge>,
    /// `openid2_realm` (OpenID 2.0 → OpenID Connect Migration 1.0 §3), with scope `openid2`:
    /// a realm the redirect URI is inside (OpenID 2.0 §9.2), not an over-broad wildcard.
    pub openid2_realm: Option<Realm>,
}

/// The parameters once each, or the name of one sent twice.
fn single(pairs: &[(String, String)]) -> Result<HashMap<&str, &str>, &'static str> {
    const NAMES: [&str; 16] = [
        "client_id",
        "redirect_uri",
        "response_type",
        "response_mode",
        "scope",
        "state",
        "nonce",
        "prompt",
        "max_age",
        "login_hint",
        "acr_values",
        "code_challenge",
        "code_challenge_method",
        "openid2_realm",
        "request",
        "request_uri",
    ];
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k.as_str(), v.as_str()).is_some()
            && let Some(name) = NAMES.iter().find(|n| **n == k.as_str())
        {
            return Err(name);
        }
    }
    Ok(map)
}

impl Target {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, TargetError> {
        // Other repeated parameters are the redirect's business (AuthRequest::parse).
        let map = match single(pairs) {
            Err(name @ ("client_id" | "redirect_uri")) => return Err(TargetError::Repeated(name)),
            Err(_) | Ok(_) => pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<HashMap<_, _>>(),
        };
        let client_id = map
            .get("client_id")
            .filter(|c| !c.is_empty())
            .ok_or(TargetError::MissingClientId)?
            .parse::<ClientId>()
            .map_err(|e| TargetError::BadClientId(e.to_string()))?;
        let redirect_uri = map
            .get("redirect_uri")
            .filter(|r| !r.is_empty())
            .ok_or(TargetError::MissingRedirectUri)?;
        Ok(Self {
            client_id,
            redirect_uri: (*redirect_uri).to_owned(),
        })
    }
}

/// The `state` to echo, read even from a request that fails (RFC 6749 §4.1.2.1).
pub fn state_of(pairs: &[(String, String)]) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
}

impl AuthRequest {
    /// The second stage, for a `target` whose client and redirect URI were found;
    /// `public_client` requires PKCE.
    pub fn parse(
        pairs: &[(String, String)],
        target: Target,
        public_client: bool,
    ) -> Result<Self, AuthError> {
        let map = single(pairs).map_err(|name| {
            AuthError::new("invalid_request", format!("{name} is sent more than once"))
        })?;
        let get = |name: &str| map.get(name).copied().filter(|v| !v.is_empty());
        if get("request").is_some() {
            return Err(AuthError::new(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if get("request_uri").is_some() {
            return Err(AuthError::new(
                "request_uri_not_supported",
                "request_uri is not supported",
            ));
        }
        match get("response_type") {
            None => {
                return Err(AuthError::new(
                    "invalid_request",
                    "response_type is missing",
                ));
            }
            Some("code") => {}
            Some(other) => {
                return Err(AuthError::new(
                    "unsupported_response_type",
                    format!("response_type {other:?} is not supported; only code is"),
                ));
            }
        }
        if let Some(mode) = get("response_mode")
            && mode != "query"
        {
            return Err(AuthError::new(
                "invalid_request",
                format!("response_mode {mode:?} is not supported; only query is"),
            ));
        }
        let scope = Scopes::from_request(get("scope").unwrap_or(""))
            .map_err(|e| AuthError::new(e.oauth_error(), e.to_string()))?;
        let code_challenge =
            CodeChallenge::from_request(get("code_challenge"), get("code_challenge_method"))
                .map_err(|e| AuthError::new(e.oauth_error(), e.to_string()))?;
        if public_client && code_challenge.is_none() {
            return Err(AuthError::new(
                "invalid_request",
                "a public client must send code_challenge with code_challenge_method S256 \
                 (PKCE, RFC 7636)",
            ));
        }
        let mut prompt = Prompt::default();
        for value in get("prompt")
            .unwrap_or("")
            .split(' ')
            .filter(|v| !v.is_empty())
        {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => {}
                other => {
                    return Err(AuthError::new(
                        "invalid_request",
                        format!("prompt value {other:?} is not supported"),
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(AuthError::new(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
        let mut max_age = match get("max_age") {
            None => None,
            Some(text) => match text.parse::<u32>() {
                Ok(secs) => Some(Duration::seconds(i64::from(secs))),
                Err(_) => {
                    return Err(AuthError::new(
                        "invalid_request",
                        "max_age must be a non-negative number of seconds",
                    ));
                }
            },
        };
        if prompt.login {
            max_age = Some(Duration::ZERO);
        }
        let login_hint = get("login_hint").and_then(|h| h.parse::<Msisdn>().ok());
        let openid2_realm = match get("openid2_realm").filter(|_| scope.contains(Scope::Openid2)) {
            None => None,
            Some(text) => {
                let bad = |why: String| {
                    AuthError::new("invalid_request", format!("openid2_realm {text:?}: {why}"))
                };
                let realm = Realm::parse(text).map_err(|e| bad(e.to_string()))?;
                if realm.is_overbroad() {
                    return Err(bad("the realm is too broad".into()));
                }
                // Migration 1.0 §3: the redirect URI must be inside the realm, as return_to.
                realm
                    .check(&target.redirect_uri)
                    .map_err(|e| bad(e.to_string()))?;
                Some(realm)
            }
        };
        Ok(Self {
            target,
            state: get("state").map(str::to_owned),
            scope,
            nonce: get("nonce").map(str::to_owned),
            prompt,
            max_age,
            login_hint,
            code_challenge,
            openid2_realm,
        })
    }
}

/// `redirect_uri` with `params` added to its query (Core §3.1.2.5, §3.1.2.6); `None` if it is
/// not a URL (it was registered, so it always is).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(redirect_uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const BASE: [(&str, &str); 4] = [
        ("client_id", "c1"),
        ("redirect_uri", "https://rp.example/cb"),
        ("response_type", "code"),
        ("scope", "openid phone"),
    ];

    fn parse(extra: &[(&str, &str)], public: bool) -> Result<AuthRequest, AuthError> {
        let mut p = pairs(&BASE);
        p.extend(pairs(extra));
        let target = Target::parse(&p).unwrap();
        AuthRequest::parse(&p, target, public)
    }

    #[test]
    fn a_plain_request_parses() {
        let r = parse(&[("state", "s"), ("nonce", "n")], false).unwrap();
        assert_eq!(r.target.client_id.as_str(), "c1");
        assert_eq!(r.scope.to_string(), "openid phone");
        assert_eq!(r.state.as_deref(), Some("s"));
        assert_eq!(r.nonce.as_deref(), Some("n"));
        assert!(r.max_age.is_none());
    }

    #[test]
    fn target_errors_are_pages() {
        assert_eq!(
            Target::parse(&pairs(&[("redirect_uri", "x")])),
            Err(TargetError::MissingClientId)
        );
        assert_eq!(
            Target::parse(&pairs(&[("client_id", "c")])),
            Err(TargetError::MissingRedirectUri)
        );
        assert_eq!(
            Target::parse(&pairs(&[("client_id", "c"), ("client_id", "d")])),
            Err(TargetError::Repeated("client_id"))
        );
    }

    #[test]
    fn response_type_scope_and_pkce() {
        let mut p = pairs(&BASE);
        p[2].1 = "token".into();
        let t = Target::parse(&p).unwrap();
        assert_eq!(
            AuthRequest::parse(&p, t, false).unwrap_err().error,
            "unsupported_response_type"
        );
        let mut p = pairs(&BASE);
        p[3].1 = "phone".into();
        let t = Target::parse(&p).unwrap();
        assert_eq!(
            AuthRequest::parse(&p, t, false).unwrap_err().error,
            "invalid_scope"
        );
        assert_eq!(parse(&[], true).unwrap_err().error, "invalid_request");
        let challenge = CodeChallenge::s256(&"v".repeat(43));
        assert_eq!(
            parse(&[("code_challenge", challenge.as_str())], false)
                .unwrap_err()
                .error,
            "invalid_request",
            "plain (no method) refused"
        );
        let ok = parse(
            &[
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(ok.code_challenge, Some(challenge));
    }

    #[test]
    fn prompt_max_age_and_hint() {
        assert_eq!(
            parse(&[("prompt", "none login")], false).unwrap_err().error,
            "invalid_request"
        );
        let r = parse(&[("prompt", "login")], false).unwrap();
        assert_eq!(r.max_age, Some(Duration::ZERO));
        let r = parse(&[("max_age", "30"), ("login_hint", "+447700900123")], false).unwrap();
        assert_eq!(r.max_age, Some(Duration::seconds(30)));
        assert_eq!(r.login_hint.unwrap().as_str(), "+447700900123");
        assert!(
            parse(&[("login_hint", "alice")], false)
                .unwrap()
                .login_hint
                .is_none()
        );
        assert_eq!(
            parse(&[("max_age", "-1")], false).unwrap_err().error,
            "invalid_request"
        );
        assert_eq!(
            parse(&[("request", "eyJ")], false).unwrap_err().error,
            "request_not_supported"
        );
    }

    #[test]
    fn openid2_realm_must_cover_the_redirect_uri() {
        let realm = |text: &str, scope: &str| {
            let mut p = pairs(&BASE);
            p[3].1 = scope.into();
            p.push(("openid2_realm".into(), text.into()));
            let t = Target::parse(&p).unwrap();
            AuthRequest::parse(&p, t, false)
        };
        let ok = realm("https://*.rp.example/", "openid openid2").unwrap();
        assert_eq!(ok.openid2_realm.unwrap().host(), "rp.example");
        assert!(
            realm("https://rp.example/", "openid")
                .unwrap()
                .openid2_realm
                .is_none()
        );
        assert_eq!(
            realm("https://other.example/", "openid openid2")
                .unwrap_err()
                .error,
            "invalid_request"
        );
        assert_eq!(
            realm("https://*.com/", "openid openid2").unwrap_err().error,
            "invalid_request"
        );
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            redirect_with(
                "https://rp.example/cb?x=1",
                &[("code", "a b"), ("state", "s")]
            )
            .unwrap(),
            "https://rp.example/cb?x=1&code=a+b&state=s"
        );
    }
}
