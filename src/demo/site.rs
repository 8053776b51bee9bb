//! The demo relying-party site (`akaid demo`): a small web site that signs its visitors in with
//! their operator, by OpenID Connect (Core 1.0 §3.1: code flow with state, nonce and PKCE S256,
//! the code exchanged with the client secret, the ID token verified against the OP's JWKS
//! with [`crate::oidc::jose`], then userinfo) or by OpenID Authentication 2.0 (§9 checkid_setup
//! with identifier_select, SReg and AX requested, the positive assertion verified as §11
//! says: return_to, discovered information, response_nonce once, and the signature by
//! check_authentication with the OP), and shows what it verified.
//!
//! It is a relying party written from the specifications' relying-party side, not a view into
//! the OP: it talks to the OP only over HTTP, as any site would. It keeps its own session
//! (cookie `akaid_demo_site`, in memory), serves no script and no external resource, and its
//! pages carry the OP's security headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::Router;
use axum::extract::{Query, RawForm, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use url::Url;

use crate::clock::Clock;
use crate::oidc::jose::{self, Jwks, SigningAlg};
use crate::openid2::message::{Extension, Message, Version};
use crate::openid2::{AX_NS, SERVER_TYPE, SIGNON_TYPE, SREG_1_1_NS, xrds};
use crate::secret::Secret;

/// The site's paths.
pub mod paths {
    pub const HOME: &str = "/";
    pub const XRDS: &str = "/xrds";
    pub const OIDC_LOGIN: &str = "/login/oidc";
    pub const OIDC_CALLBACK: &str = "/callback/oidc";
    pub const OPENID2_LOGIN: &str = "/login/openid2";
    pub const OPENID2_RETURN: &str = "/return/openid2";
    pub const LOGOUT: &str = "/logout";
    pub const CSS: &str = "/static/demo.css";
}

/// The site's session cookie; not the OP's (`akaid_session`): both live on the same host.
pub const COOKIE: &str = "akaid_demo_site";
/// Sessions kept at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;
/// How long a session lives.
const SESSION_TTL: Duration = Duration::hours(8);
/// How far an ID token's or a response nonce's time may be from ours.
const LEEWAY: Duration = Duration::minutes(5);
/// The OIDC scopes asked for: the subject, the profile and the phone number.
const SCOPE: &str = "openid profile phone";
/// The AX type of the mobile number (DESIGN.md §2.6).
const AX_PHONE: &str = "http://axschema.org/contact/phone/cell";
const CSS: &str = include_str!("../../static/demo.css");

/// What the site needs to know.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    /// The site's own URL (ends with `/`); also its OpenID 2.0 realm.
    pub site_url: Url,
    /// The OP identifier and OIDC issuer (as a URL, with its trailing `/`).
    pub op_url: Url,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("cannot set up the site's HTTP client: {0}")]
    Client(String),
}

/// The site: settings, an HTTP client for the OP, sessions.
#[derive(Debug, Clone)]
pub struct Site(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    settings: SiteSettings,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Session>>,
    /// OpenID 2.0 response nonces seen, until they fall out of the window (§11.3).
    nonces: Mutex<HashMap<String, OffsetDateTime>>,
}

/// Which protocol a sign-in used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Oidc,
    OpenId2,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Oidc => "OpenID Connect",
            Self::OpenId2 => "OpenID 2.0",
        }
    }
}

/// One visitor's state.
#[derive(Debug)]
struct Session {
    created: OffsetDateTime,
    pending: Option<Pending>,
    outcome: Option<Outcome>,
}

/// A sign-in that went to the OP and has not come back: answered once (not `Clone`).
#[derive(Debug)]
enum Pending {
    Oidc {
        state: String,
        nonce: String,
        verifier: Secret<String>,
        provider: Provider,
    },
    OpenId2 {
        /// The `login` query parameter of `return_to`, tying the answer to this session.
        token: String,
        return_to: String,
        op_endpoint: String,
    },
}

/// The OP's OpenID Connect discovery document, as far as the site uses it.
#[derive(Debug, Clone, serde::Deserialize)]
struct Provider {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    end_session_endpoint: Option<String>,
}

/// How the last sign-in ended.
#[derive(Debug)]
enum Outcome {
    SignedIn(SignedIn),
    Cancelled(Protocol),
    Failed(Protocol, String),
}

/// A verified identity and what came with it.
#[derive(Debug)]
struct SignedIn {
    protocol: Protocol,
    identity: String,
    claims: Vec<(String, String)>,
    raw: Vec<(String, String)>,
    /// For RP-initiated logout at the OP.
    id_token: Option<String>,
    end_session_endpoint: Option<String>,
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

impl Site {
    pub fn new(settings: SiteSettings) -> Result<Self, SiteError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("akaid-demo-site/", env!("CARGO_PKG_VERSION")))
            // The OP is reached directly: an environment proxy must not send the site's
            // back-channel requests elsewhere.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| SiteError::Client(e.to_string()))?;
        Ok(Self(Arc::new(Inner {
            settings,
            http,
            sessions: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
        })))
    }

    /// The site's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route(paths::HOME, get(demo_home_get))
            .route(paths::XRDS, get(demo_xrds_get))
            .route(paths::OIDC_LOGIN, get(demo_oidc_login_get))
            .route(paths::OIDC_CALLBACK, get(demo_oidc_callback_get))
            .route(paths::OPENID2_LOGIN, get(demo_openid2_login_get))
            .route(
                paths::OPENID2_RETURN,
                get(demo_openid2_return).post(demo_openid2_return),
            )
            .route(paths::LOGOUT, post(demo_logout_post))
            .route(paths::CSS, get(demo_css_get))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
            .with_state(self.clone())
    }

    fn settings(&self) -> &SiteSettings {
        &self.0.settings
    }

    fn now(&self) -> OffsetDateTime {
        self.0.settings.clock.now()
    }

    fn url(&self, path: &str) -> String {
        let base = self.settings().site_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// The session the request's cookie names, if it is known and fresh.
    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers, COOKIE)?;
        let now = self.now();
        let sessions = self.0.sessions.lock().ok()?;
        sessions
            .get(&id)
            .filter(|s| now - s.created < SESSION_TTL)
            .map(|_| id)
    }

    /// The request's session, or a new one (the second value is true when it is new and the
    /// cookie must be set).
    fn session_or_new(&self, headers: &HeaderMap) -> (String, bool) {
        if let Some(id) = self.session_id(headers) {
            return (id, false);
        }
        let id = random_token();
        let now = self.now();
        if let Ok(mut sessions) = self.0.sessions.lock() {
            sessions.retain(|_, s| now - s.created < SESSION_TTL);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(
                id.clone(),
                Session {
                    created: now,
                    pending: None,
                    outcome: None,
                },
            );
        }
        (id, true)
    }

    fn with_session<R>(&self, id: &str, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let mut sessions = self.0.sessions.lock().ok()?;
        sessions.get_mut(id).map(f)
    }

    fn set_cookie(&self, response: &mut Response, id: &str) {
        let secure = if self.settings().site_url.scheme() == "https" {
            "; Secure"
        } else {
            ""
        };
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// The OP's origin, for the CSP `form-action` of the page whose sign-out goes there.
    fn op_origin(&self) -> String {
        self.settings().op_url.origin().ascii_serialization()
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<Value, String> {
        let mut request = self
            .0
            .http
            .get(url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let body = fetch_text(request, url).await?;
        serde_json::from_str(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// The OP's discovery document; its issuer must be the OP we were configured with
    /// (Discovery 1.0 §4.3).
    async fn provider(&self) -> Result<Provider, String> {
        let issuer = self.settings().op_url.as_str().trim_end_matches('/');
        let doc = self
            .get_json(&format!("{issuer}/.well-known/openid-configuration"), None)
            .await?;
        let provider: Provider = serde_json::from_value(doc)
            .map_err(|e| format!("the discovery document lacks a field: {e}"))?;
        if provider.issuer != issuer {
            return Err(format!(
                "the discovery document names issuer {:?}, not {issuer:?}",
                provider.issuer
            ));
        }
        Ok(provider)
    }

    /// Yadis discovery (§7.3): the URIs of the services of `service_type` in the XRDS of
    /// `url`.
    async fn yadis(&self, url: &str, service_type: &str) -> Result<Vec<String>, String> {
        let request = self
            .0
            .http
            .get(url)
            .header(header::ACCEPT, xrds::XRDS_CONTENT_TYPE);
        let body = fetch_text(request, url).await?;
        xrds::service_uris(&body, service_type).map_err(|e| format!("{url}: {e}"))
    }
}

/// The value of cookie `name` in the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Sends `request` and reads the body of a 2xx answer; any other status, or a transport
/// error, is an error naming `what` (with the start of the body, for the error notice).
async fn fetch_text(request: reqwest::RequestBuilder, what: &str) -> Result<String, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("{what}: {}", e.without_url()))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("{what}: {}", e.without_url()))?;
    if !status.is_success() {
        return Err(format!("{what} answered {status}: {}", snippet(&body)));
    }
    Ok(body)
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(location) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => page_error("The sign-in address is not valid.".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Pages

#[derive(Debug, Template)]
#[template(path = "demo/home.html")]
struct HomePage {
    notice: Option<Notice>,
}

/// What the home page says about the last attempt.
#[derive(Debug)]
struct Notice {
    kind: &'static str,
    title: String,
    text: String,
}

#[derive(Debug, Template)]
#[template(path = "demo/signed_in.html")]
struct SignedInPage<'a> {
    protocol: &'static str,
    identity: &'a str,
    claims: &'a [(String, String)],
    raw: &'a [(String, String)],
}

#[derive(Debug, Template)]
#[template(path = "demo/xrds.xml")]
struct RpXrds<'a> {
    return_to: &'a str,
}

/// A page with the OP's security headers ([`crate::web::pages::secure`]).
fn page(status: StatusCode, template: &impl Template, form_action: Option<&str>) -> Response {
    let mut response = match template.render() {
        Ok(body) => (status, body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a demo site page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    };
    crate::web::pages::secure(&mut response, form_action);
    response
}

fn page_error(text: String) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        &HomePage {
            notice: Some(Notice {
                kind: "failed",
                title: "Sign-in failed".into(),
                text,
            }),
        },
        None,
    )
}

/// `GET /`: the sign-in buttons, or who is signed in. Announces the site's XRDS for OpenID
/// 2.0 relying-party discovery (Yadis §6.2.4).
async fn demo_home_get(State(site): State<Site>, headers: HeaderMap) -> Response {
    let wants_xrds = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(xrds::XRDS_CONTENT_TYPE));
    if wants_xrds {
        return demo_xrds_get(State(site)).await;
    }
    let mut response = match site.session_id(&headers) {
        Some(id) => site
            .with_session(&id, |s| match &s.outcome {
                Some(Outcome::SignedIn(who)) => page(
                    StatusCode::OK,
                    &SignedInPage {
                        protocol: who.protocol.name(),
                        identity: &who.identity,
                        claims: &who.claims,
                        raw: &who.raw,
                    },
                    Some(&site.op_origin()),
                ),
                other => home(other.as_ref()),
            })
            .unwrap_or_else(|| home(None)),
        None => home(None),
    };
    if let Ok(location) = HeaderValue::from_str(&site.url(paths::XRDS)) {
        response.headers_mut().insert("x-xrds-location", location);
    }
    response
}

fn home(outcome: Option<&Outcome>) -> Response {
    let notice = match outcome {
        Some(Outcome::Cancelled(protocol)) => Some(Notice {
            kind: "cancelled",
            title: "Sign-in cancelled".into(),
            text: format!(
                "You said no at your operator ({}), so this site knows nothing about you. \
                 You can sign in again whenever you like.",
                protocol.name()
            ),
        }),
        Some(Outcome::Failed(protocol, reason)) => Some(Notice {
            kind: "failed",
            title: "Sign-in failed".into(),
            text: format!("The {} answer was not accepted: {reason}", protocol.name()),
        }),
        Some(Outcome::SignedIn(_)) | None => None,
    };
    page(StatusCode::OK, &HomePage { notice }, None)
}

/// `GET /xrds`: the site's Yadis document, listing its OpenID 2.0 return_to (§13).
async fn demo_xrds_get(State(site): State<Site>) -> Response {
    let return_to = site.url(paths::OPENID2_RETURN);
    match (RpXrds {
        return_to: &return_to,
    })
    .render()
    {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, xrds::XRDS_CONTENT_TYPE),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the demo site's XRDS failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /static/demo.css`.
async fn demo_css_get() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        CSS,
    )
        .into_response()
}

/// `POST /logout`: forgets who signed in here; after OpenID Connect, also asks the OP to end
/// its session (RP-Initiated Logout 1.0 §2), coming back to the home page.
async fn demo_logout_post(State(site): State<Site>, headers: HeaderMap) -> Response {
    let Some(id) = site.session_id(&headers) else {
        return redirect(paths::HOME);
    };
    let signed_in = site
        .with_session(&id, |s| {
            s.pending = None;
            s.outcome.take()
        })
        .flatten();
    if let Some(Outcome::SignedIn(SignedIn {
        id_token: Some(id_token),
        end_session_endpoint: Some(endpoint),
        ..
    })) = signed_in
        && let Ok(mut url) = Url::parse(&endpoint)
    {
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair(
                "post_logout_redirect_uri",
                site.settings().site_url.as_str(),
            );
        return redirect(url.as_str());
    }
    redirect(paths::HOME)
}

/// Ends a sign-in attempt with `outcome` and sends the visitor home.
fn finish(site: &Site, id: &str, outcome: Outcome) -> Response {
    if let Outcome::Failed(protocol, reason) = &outcome {
        tracing::info!(
            protocol = protocol.name(),
            "demo site: sign-in failed: {reason}"
        );
    }
    site.with_session(id, |s| s.outcome = Some(outcome));
    redirect(paths::HOME)
}

// ---------------------------------------------------------------------------------------------
// OpenID Connect

/// `GET /login/oidc`: the authorization request (Core §3.1.2.1) with state, nonce and PKCE
/// S256 (RFC 7636 §4).
async fn demo_oidc_login_get(State(site): State<Site>, headers: HeaderMap) -> Response {
    let provider = match site.provider().await {
        Ok(p) => p,
        Err(e) => return page_error(format!("Cannot reach the operator: {e}")),
    };
    let (id, new) = site.session_or_new(&headers);
    let state = random_token();
    let nonce = random_token();
    let verifier = Secret::new(random_token());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));
    let Ok(mut url) = Url::parse(&provider.authorization_endpoint) else {
        return page_error("The operator's authorization endpoint is not a URL.".into());
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &site.settings().client_id)
        .append_pair("redirect_uri", &site.url(paths::OIDC_CALLBACK))
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    site.with_session(&id, |s| {
        s.pending = Some(Pending::Oidc {
            state,
            nonce,
            verifier,
            provider,
        });
    });
    let mut response = redirect(url.as_str());
    if new {
        site.set_cookie(&mut response, &id);
    }
    response
}

#[derive(Debug, serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /callback/oidc`: the authorization response (Core §3.1.2.5, §3.1.2.6).
async fn demo_oidc_callback_get(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(id) = site.session_id(&headers) else {
        return page_error("This answer belongs to no sign-in started here.".into());
    };
    let pending = site.with_session(&id, |s| s.pending.take()).flatten();
    let Some(Pending::Oidc {
        state,
        nonce,
        verifier,
        provider,
    }) = pending
    else {
        return page_error("This answer belongs to no OpenID Connect sign-in started here.".into());
    };
    // state first: an answer that does not carry ours is not for this sign-in (§3.1.2.7).
    if query.state.as_deref() != Some(state.as_str()) {
        let reason = "the state parameter is not the one this sign-in sent".to_owned();
        return finish(&site, &id, Outcome::Failed(Protocol::Oidc, reason));
    }
    if let Some(error) = query.error {
        let outcome = match error.as_str() {
            "access_denied" => Outcome::Cancelled(Protocol::Oidc),
            _ => Outcome::Failed(
                Protocol::Oidc,
                format!(
                    "the operator answered {error}{}",
                    query
                        .error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ),
        };
        return finish(&site, &id, outcome);
    }
    let Some(code) = query.code else {
        let reason = "the answer has neither a code nor an error".to_owned();
        return finish(&site, &id, Outcome::Failed(Protocol::Oidc, reason));
    };
    let outcome = match oidc_complete(&site, &provider, &code, &nonce, &verifier).await {
        Ok(who) => Outcome::SignedIn(who),
        Err(reason) => Outcome::Failed(Protocol::Oidc, reason),
    };
    finish(&site, &id, outcome)
}

/// The token request (§3.1.3.1, client_secret_basic), the ID token's validation (§3.1.3.7),
/// the access token's `at_hash` (§3.1.3.8), and userinfo (§5.3).
async fn oidc_complete(
    site: &Site,
    provider: &Provider,
    code: &str,
    nonce: &str,
    verifier: &Secret<String>,
) -> Result<SignedIn, String> {
    let settings = site.settings();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &site.url(paths::OIDC_CALLBACK)),
        ("code_verifier", verifier.expose()),
    ];
    // RFC 6749 §2.3.1: client id and secret are form-encoded before Basic.
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let request = site
        .0
        .http
        .post(&provider.token_endpoint)
        .basic_auth(
            encode(&settings.client_id),
            Some(encode(settings.client_secret.expose())),
        )
        .form(&form);
    let body = fetch_text(request, "the token endpoint").await?;
    let tokens: Value =
        serde_json::from_str(&body).map_err(|e| format!("token response: not JSON: {e}"))?;
    let text = |name: &str| tokens.get(name).and_then(Value::as_str);
    let id_token = text("id_token").ok_or("the token response has no id_token")?;
    let access_token = text("access_token").ok_or("the token response has no access_token")?;
    if !text("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return Err("the token type is not Bearer".into());
    }

    let jwks: Jwks = serde_json::from_value(site.get_json(&provider.jwks_uri, None).await?)
        .map_err(|e| format!("the JWKS is not a JWK Set: {e}"))?;
    let claims = jose::verify_jwt(&jwks, id_token, None)
        .map_err(|e| format!("the ID token does not verify: {e}"))?;
    let header = jwt_part(id_token, 0)?;
    let alg: SigningAlg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .parse()
        .map_err(|e| format!("ID token: {e}"))?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if claim("iss") != Some(provider.issuer.as_str()) {
        return Err(format!("the ID token's iss is {:?}", claim("iss")));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == settings.client_id,
        Some(Value::Array(auds)) => {
            auds.iter().any(|a| a.as_str() == Some(&settings.client_id))
                && (auds.len() == 1 || claim("azp") == Some(settings.client_id.as_str()))
        }
        _ => false,
    };
    if !audience_ok {
        return Err("the ID token is not addressed to this site (aud)".into());
    }
    jose::check_time(&claims, site.now(), LEEWAY).map_err(|e| format!("ID token: {e}"))?;
    if claims.get("iat").and_then(Value::as_i64).is_none() {
        return Err("the ID token has no iat".into());
    }
    if claim("nonce") != Some(nonce) {
        return Err("the ID token's nonce is not the one this sign-in sent".into());
    }
    if let Some(at_hash) = claim("at_hash")
        && at_hash != jose::token_hash(alg, access_token)
    {
        return Err("the ID token's at_hash does not match the access token".into());
    }
    let sub = claim("sub")
        .filter(|s| !s.is_empty())
        .ok_or("the ID token has no sub")?
        .to_owned();

    let userinfo = site
        .get_json(&provider.userinfo_endpoint, Some(access_token))
        .await?;
    // Core §5.3.2: userinfo about someone else must not be used.
    if userinfo.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
        return Err("userinfo is about another subject".into());
    }

    // What the person shared: userinfo's claims (the ID token's own are in the raw view).
    let shown = userinfo
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.as_str() != "sub")
        .map(|(name, value)| {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (claim_label(name), value)
        })
        .collect();
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    Ok(SignedIn {
        protocol: Protocol::Oidc,
        identity: sub,
        claims: shown,
        raw: vec![
            ("ID token header".into(), pretty(&header)),
            (
                "ID token payload (signature verified)".into(),
                pretty(&claims),
            ),
            ("Userinfo response".into(), pretty(&userinfo)),
        ],
        id_token: Some(id_token.to_owned()),
        end_session_endpoint: provider.end_session_endpoint.clone(),
    })
}

/// How the signed-in page names a claim or an attribute: in words, with the protocol's own
/// name after it.
fn claim_label(name: &str) -> String {
    let words = match name {
        "phone_number" | "http://axschema.org/contact/phone/cell" => "Mobile number",
        "phone_number_verified" => "Mobile number verified",
        "nickname" => "Nickname",
        "name" | "fullname" => "Full name",
        "email" => "Email",
        _ => return name.to_owned(),
    };
    format!("{words} ({name})")
}

/// The JSON of part `index` of a compact JWS.
fn jwt_part(token: &str, index: usize) -> Result<Value, String> {
    let part = token
        .split('.')
        .nth(index)
        .ok_or("the token is malformed")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "the token is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "the token part is not JSON".to_owned())
}

// ---------------------------------------------------------------------------------------------
// OpenID 2.0

/// `GET /login/openid2`: discovers the OP endpoint from the OP identifier (§7.3.1) and sends
/// a checkid_setup with identifier_select (§9.1), asking for SReg 1.1 fields and, by AX 1.0,
/// the mobile number.
async fn demo_openid2_login_get(State(site): State<Site>, headers: HeaderMap) -> Response {
    let op_identifier = site.settings().op_url.to_string();
    let op_endpoint = match site.yadis(&op_identifier, SERVER_TYPE).await {
        Ok(uris) => match uris.into_iter().next() {
            Some(uri) => uri,
            None => return page_error("The operator's XRDS names no OpenID 2.0 server.".into()),
        },
        Err(e) => return page_error(format!("Cannot discover the operator: {e}")),
    };
    let (id, new) = site.session_or_new(&headers);
    let token = random_token();
    let mut return_to = match Url::parse(&site.url(paths::OPENID2_RETURN)) {
        Ok(u) => u,
        Err(e) => return page_error(format!("The return address is not a URL: {e}")),
    };
    return_to.query_pairs_mut().append_pair("login", &token);
    let return_to = return_to.to_string();
    let mut message = Message::new(Version::V2);
    message.set("mode", "checkid_setup");
    message.set("claimed_id", crate::openid2::IDENTIFIER_SELECT);
    message.set("identity", crate::openid2::IDENTIFIER_SELECT);
    message.set("return_to", return_to.clone());
    message.set("realm", site.settings().site_url.as_str());
    let extensions = [
        Extension {
            alias: "sreg".into(),
            ns_uri: SREG_1_1_NS.into(),
            fields: vec![("optional".into(), "nickname,fullname,email".into())],
        },
        Extension {
            alias: "ax".into(),
            ns_uri: AX_NS.into(),
            fields: vec![
                ("mode".into(), "fetch_request".into()),
                ("type.phone".into(), AX_PHONE.into()),
                ("required".into(), "phone".into()),
            ],
        },
    ];
    for ext in &extensions {
        if let Err(e) = message.add_extension(ext) {
            return page_error(format!("Cannot build the request: {e}"));
        }
    }
    let url = match message.to_redirect_url(&op_endpoint) {
        Ok(url) => url,
        Err(e) => return page_error(format!("Cannot build the request: {e}")),
    };
    site.with_session(&id, |s| {
        s.pending = Some(Pending::OpenId2 {
            token,
            return_to,
            op_endpoint,
        });
    });
    let mut response = redirect(&url);
    if new {
        site.set_cookie(&mut response, &id);
    }
    response
}

/// `GET|POST /return/openid2`: the OP's indirect response (a redirect, or the self-posting
/// form for long ones).
async fn demo_openid2_return(
    State(site): State<Site>,
    headers: HeaderMap,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: RawForm,
) -> Response {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // For GET, RawForm is the query again; only a POST has a body of its own.
    if method == axum::http::Method::POST {
        pairs.extend(url::form_urlencoded::parse(&body.0).into_owned());
    }
    let Some(id) = site.session_id(&headers) else {
        return page_error("This answer belongs to no sign-in started here.".into());
    };
    let pending = site.with_session(&id, |s| s.pending.take()).flatten();
    let Some(Pending::OpenId2 {
        token,
        return_to,
        op_endpoint,
    }) = pending
    else {
        return page_error("This answer belongs to no OpenID 2.0 sign-in started here.".into());
    };
    let login = pairs
        .iter()
        .find(|(k, _)| k == "login")
        .map(|(_, v)| v.as_str());
    if login != Some(token.as_str()) {
        let reason = "the answer is not for the sign-in this browser started".to_owned();
        return finish(&site, &id, Outcome::Failed(Protocol::OpenId2, reason));
    }
    let message = match Message::from_pairs(&pairs) {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("the answer is not an OpenID message: {e}");
            return finish(&site, &id, Outcome::Failed(Protocol::OpenId2, reason));
        }
    };
    let outcome = match message.get("mode") {
        Some("cancel") => Outcome::Cancelled(Protocol::OpenId2),
        Some("id_res") => match openid2_verify(&site, &message, &return_to, &op_endpoint).await {
            Ok(who) => Outcome::SignedIn(who),
            Err(reason) => Outcome::Failed(Protocol::OpenId2, reason),
        },
        Some("error") => Outcome::Failed(
            Protocol::OpenId2,
            format!(
                "the operator answered an error: {}",
                message.get("error").unwrap_or("(none given)")
            ),
        ),
        other => Outcome::Failed(
            Protocol::OpenId2,
            format!("unexpected openid.mode {other:?}"),
        ),
    };
    finish(&site, &id, outcome)
}

/// Verifies a positive assertion (§11): return_to (§11.1), the discovered information
/// (§11.2), the nonce (§11.3) and the signature, by asking the OP (§11.4.2).
async fn openid2_verify(
    site: &Site,
    message: &Message,
    return_to: &str,
    op_endpoint: &str,
) -> Result<SignedIn, String> {
    if message.version() != Version::V2 {
        return Err("the answer is not OpenID 2.0".into());
    }
    let field = |name: &str| {
        message
            .get(name)
            .ok_or_else(|| format!("the assertion has no openid.{name}"))
    };
    // §11.1: the assertion's return_to is exactly the one sent, which is this URL.
    if field("return_to")? != return_to {
        return Err("openid.return_to is not the address this sign-in sent".into());
    }
    // §10.1: these must be signed, and the extension fields shown here as well.
    let signed: Vec<&str> = field("signed")?.split(',').collect();
    for required in [
        "op_endpoint",
        "return_to",
        "response_nonce",
        "assoc_handle",
        "claimed_id",
        "identity",
    ] {
        if !signed.contains(&required) {
            return Err(format!("openid.{required} is not signed"));
        }
    }
    // §11.2: the OP that answered is the one discovered, and it is authorised to speak for
    // the claimed identifier, whose own XRDS names it (identifier_select: §11.2.2).
    if field("op_endpoint")? != op_endpoint {
        return Err("the answer comes from another OP endpoint".into());
    }
    let claimed_id = field("claimed_id")?;
    let claimed = claimed_id.split('#').next().unwrap_or(claimed_id);
    let servers = site.yadis(claimed, SIGNON_TYPE).await?;
    if !servers.iter().any(|s| s == op_endpoint) {
        return Err("the claimed identifier does not name this OP as its server".into());
    }
    // §11.3: a nonce from now-ish, used once.
    let nonce = field("response_nonce")?;
    let at = crate::openid2::signing::parse_nonce(nonce)
        .map_err(|e| format!("openid.response_nonce: {e}"))?;
    let now = site.now();
    if (now - at).abs() > LEEWAY {
        return Err("openid.response_nonce is too old or from the future".into());
    }
    {
        let mut seen = site
            .0
            .nonces
            .lock()
            .map_err(|_| "the nonce list is unavailable".to_owned())?;
        seen.retain(|_, t| (now - *t).abs() <= LEEWAY);
        if seen.insert(nonce.to_owned(), at).is_some() {
            return Err("openid.response_nonce was used before (a replay)".into());
        }
    }
    // §11.4.2: the OP checks its own signature (a private association, stateless mode).
    let mut check: Vec<(String, String)> = message
        .fields()
        .iter()
        .map(|(k, v)| (format!("openid.{k}"), v.clone()))
        .collect();
    for (k, v) in &mut check {
        if k == "openid.mode" {
            *v = "check_authentication".into();
        }
    }
    let request = site.0.http.post(op_endpoint).form(&check);
    let text = fetch_text(request, "check_authentication").await?;
    let verdict = Message::from_kv(&text).map_err(|e| format!("check_authentication: {e}"))?;
    if verdict.get("is_valid") != Some("true") {
        return Err("the OP says the signature is not valid".into());
    }

    let mut claims = Vec::new();
    let signed_ext = |alias: &str, key: &str| signed.contains(&format!("{alias}.{key}").as_str());
    if let Some(sreg) = message.extension(SREG_1_1_NS) {
        for (key, value) in &sreg.fields {
            if signed_ext(sreg.alias, key) {
                claims.push((format!("{} by SReg", claim_label(key)), (*value).to_owned()));
            }
        }
    }
    if let Some(ax) = message.extension(AX_NS) {
        for (key, value) in &ax.fields {
            if let Some(alias) = key.strip_prefix("value.")
                && signed_ext(ax.alias, key)
            {
                let type_uri = ax.get(&format!("type.{alias}")).unwrap_or(alias);
                claims.push((
                    format!("{} by AX", claim_label(type_uri)),
                    (*value).to_owned(),
                ));
            }
        }
    }
    let raw_signed = signed
        .iter()
        .filter_map(|k| message.get(k).map(|v| format!("openid.{k}={v}")))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(SignedIn {
        protocol: Protocol::OpenId2,
        identity: claimed_id.to_owned(),
        claims,
        raw: vec![
            ("Signed fields of the assertion".into(), raw_signed),
            (
                "check_authentication answer".into(),
                text.trim_end().to_owned(),
            ),
        ],
        id_token: None,
        end_session_endpoint: None,
    })
}
