//! The OpenID Connect provider's HTTP side (DESIGN.md §2.7), thin like the OpenID 2.0 one:
//! discovery (Discovery 1.0 §4), the JWK Set (RFC 7517 §5), `/authorize` with its consent
//! answer (Core §3.1.2), `/token` (RFC 6749 §4.1.3, §6), `/userinfo` (Core §5.3, RFC 6750)
//! and `/logout` (RP-Initiated Logout 1.0).
//!
//! Discovery and JWKS are public, the same for everyone, and fetched by relying-party
//! libraries (some in browsers): they allow any origin and may be cached. The JWKS is cached
//! for less than the overlap a retired key stays published after its last token
//! (`oidc_key_overlap_margin_secs`, 600 s by default), and a relying party that meets an
//! unknown `kid` fetches it again.
//!
//! Errors take one path per kind of client (STYLE.md rule 4): an HTML page until the client
//! and its redirect URI are known, then a redirect with `error` (and `iss`, RFC 9207); JSON
//! (RFC 6749 §5.2) at `/token`; `WWW-Authenticate: Bearer` (RFC 6750 §3) at `/userinfo`.
//!
//! Access tokens are JWTs (RFC 9068) signed with the client's ID-token algorithm; `/userinfo`
//! verifies them against the key ring's JWKS and asks the grant store whether their grant is
//! still live, so a revoked grant ends its access tokens at once.
//!
//! `login_hint` is an MSISDN: when the signed-in subscriber has another one, the handset is
//! asked for a fresh login (another SIM may be in the handset now); if the fresh login is
//! still someone else, the request is refused with `access_denied` (`login_required` for
//! `prompt=none`) rather than signing in a person the site did not expect.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::Duration;
use tower_sessions::Session;

use super::authorize::{AuthError, AuthRequest, Target, redirect_with, state_of};
use super::discovery::{ACR_PHISHING_RESISTANT, ProviderMetadata, issuer};
use super::grant::{
    AuthorizationCode, GrantId, JwtId, OsEntropy, RefreshToken, Scope, Scopes, TokenHash,
    check_pkce,
};
use super::jose::{check_time, sign_jwt, verify_jwt};
use super::token::{ACCESS_TOKEN_TYP, AccessToken, GRANT_ID_CLAIM, ID_TOKEN_TYP, IdToken};
use crate::ids::{ClientId, Impi};
use crate::profile::ProfileField;
use crate::store::{
    CodeRow, CodeTake, ConsentRow, Grant, NewRefreshToken, OidcClient, RefreshTokenRow, Rotation,
};
use crate::web::consent::{self, ConsentForm};
use crate::web::pages::{self, LogoutConfirmPage, Problem};
use crate::web::session::Login;
use crate::web::ua::UaRequest;
use crate::web::{AppState, form_pairs, request_pairs};

/// How long relying parties may cache the discovery document: it changes only with the
/// configuration.
const DISCOVERY_CACHE: &str = "public, max-age=3600";
/// How long relying parties may cache the JWKS.
const JWKS_CACHE: &str = "public, max-age=300";

fn json_response(body: &impl Serialize, cache_control: &'static str) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(e) => unavailable(&format!("cannot serialise the document: {e}")),
    }
}

/// 503 with a JSON body; the cause is logged, not shown.
fn unavailable(cause: &str) -> Response {
    tracing::error!(error = %cause, "OpenID Connect endpoint");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the OpenID Provider is not ready; try again shortly",
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /.well-known/openid-configuration`: OpenID Provider Metadata (Discovery 1.0 §4.2).
pub async fn oidc_discovery_get(State(state): State<AppState>) -> Response {
    let doc = ProviderMetadata::new(&issuer(&state.ctx.config.public_url));
    json_response(&doc, DISCOVERY_CACHE)
}

/// `GET /jwks`: the public signing keys, active and recently retired (RFC 7517 §5).
pub async fn oidc_jwks_get(State(state): State<AppState>) -> Response {
    let jwks = state.key_ring.jwks();
    if jwks.keys.is_empty() {
        // A state built without loading the keys (`AppState::new`, a BSF-only process).
        return unavailable("the signing keys are not loaded in this process");
    }
    json_response(jwks.as_ref(), JWKS_CACHE)
}

/// The session key of a consent page's pending request.
const PENDING: &str = "oidc_pending";
/// How long after a refresh token's rotation a second use counts as a concurrent refresh by
/// the same client rather than a replay (RFC 9700 §4.14.2 leaves the window to the server).
const REFRESH_GRACE: Duration = Duration::seconds(10);

fn secs(value: u64) -> Duration {
    Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX))
}

fn internal_page(what: &str) -> Response {
    tracing::error!(error = %what, "OpenID Connect endpoint");
    pages::error(Problem::Internal)
}

fn bad_request_page(what: &str) -> Response {
    pages::error(Problem::BadRequest {
        detail: what.to_owned(),
    })
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, value);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => pages::error(Problem::BadReturnAddress),
    }
}

/// Where answers to a validated client's request go (Core §3.1.2.5, §3.1.2.6, RFC 9207).
struct Back {
    redirect_uri: String,
    state: Option<String>,
    issuer: String,
}

impl Back {
    fn send(&self, params: &[(&str, &str)]) -> Response {
        let mut all = params.to_vec();
        if let Some(s) = &self.state {
            all.push(("state", s));
        }
        all.push(("iss", &self.issuer));
        match redirect_with(&self.redirect_uri, &all) {
            Some(url) => see_other(&url),
            None => pages::error(Problem::BadReturnAddress),
        }
    }

    fn error(&self, e: &AuthError) -> Response {
        self.send(&[("error", e.error), ("error_description", &e.description)])
    }
}

/// The relying-party key of a client's consent (one record model for both protocols).
fn relying_party(client_id: &ClientId) -> String {
    format!("oidc:{}", client_id.as_str())
}

/// The OpenID Connect claim for a profile field (Core §5.1), for those that have one.
/// `email` needs the `email` scope and the postal fields `address`, neither offered.
fn profile_claim(field: ProfileField, value: &str) -> Option<(&'static str, String)> {
    let claim = match field {
        ProfileField::Nickname => "nickname",
        ProfileField::Fullname => "name",
        ProfileField::Dob => "birthdate",
        ProfileField::Gender => {
            let gender = match value {
                "M" => "male",
                "F" => "female",
                other => other,
            };
            return Some(("gender", gender.to_owned()));
        }
        ProfileField::Timezone => "zoneinfo",
        ProfileField::Language => "locale",
        ProfileField::Email | ProfileField::Postcode | ProfileField::Country => return None,
    };
    Some((claim, value.to_owned()))
}

/// The subscriber's MSISDN, through the per-process cache.
async fn msisdn_of(state: &AppState, impi: &Impi) -> Result<Option<String>, String> {
    let now = state.ctx.clock.now();
    if let Some(msisdn) = state.msisdns.fresh(impi.as_str(), now) {
        return Ok(msisdn);
    }
    let info = state.ctx.store.subscribers.info(impi).await;
    let Some(info) = info.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let msisdn = info.msisdn.map(|m| m.as_str().to_owned());
    state
        .msisdns
        .remember(impi.as_str().to_owned(), msisdn.clone(), now);
    Ok(msisdn)
}

/// A registered client, through the per-process cache (an unknown id is not remembered, so
/// a client is usable as soon as `akaid client add` returns).
pub(crate) async fn registered_client(
    state: &AppState,
    id: &ClientId,
) -> Result<Option<OidcClient>, crate::store::StoreError> {
    let now = state.ctx.clock.now();
    if let Some(client) = state.clients.fresh(id.as_str(), now) {
        return Ok(Some(client));
    }
    let client = state.ctx.store.clients.get(id).await?;
    if let Some(c) = &client {
        state
            .clients
            .remember(id.as_str().to_owned(), c.clone(), now);
    }
    Ok(client)
}

/// The consent items a request asks for that this subscriber has: `identifier`, `phone`
/// (scope `phone` and an MSISDN), profile fields with a claim (scope `profile`), and
/// `offline_access` (Core §11: a refresh token needs the subscriber's consent).
async fn consent_items(
    state: &AppState,
    scope: Scopes,
    impi: &Impi,
) -> Result<Vec<String>, String> {
    let mut items = vec!["identifier".to_owned()];
    if scope.contains(Scope::Phone) && msisdn_of(state, impi).await?.is_some() {
        items.push("phone".to_owned());
    }
    if scope.contains(Scope::Profile) {
        let profile = state.ctx.store.profiles.profile(impi).await;
        for (field, value) in profile.map_err(|e| e.to_string())? {
            if profile_claim(field, &value).is_some() {
                items.push(field.as_str().to_owned());
            }
        }
    }
    if scope.contains(Scope::OfflineAccess) {
        items.push("offline_access".to_owned());
    }
    Ok(items)
}

/// Client and redirect URI from the parameters, checked against the registration; a page
/// otherwise (never a redirect to an unchecked address).
async fn validated_target(
    state: &AppState,
    pairs: &[(String, String)],
) -> Result<(OidcClient, Back, Target), Response> {
    let target = Target::parse(pairs).map_err(|e| bad_request_page(&e.to_string()))?;
    let client = match registered_client(state, &target.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(pages::error(Problem::UnknownSite)),
        Err(e) => return Err(internal_page(&e.to_string())),
    };
    if !client.has_redirect_uri(&target.redirect_uri) {
        return Err(pages::error(Problem::UnregisteredReturn));
    }
    let back = Back {
        redirect_uri: target.redirect_uri.clone(),
        state: state_of(pairs),
        issuer: issuer(&state.ctx.config.public_url),
    };
    Ok((client, back, target))
}

/// `GET|POST /authorize` (Core §3.1.2.1).
pub async fn oidc_authorize_get(
    State(state): State<AppState>,
    session: Session,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = request_pairs(&method, &uri, &body);
    let (client, back, target) = match validated_target(&state, &pairs).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let request = match AuthRequest::parse(&pairs, target, client.is_public()) {
        Ok(r) => r,
        Err(e) => return back.error(&e),
    };
    let ua = UaRequest {
        method: method.as_str(),
        uri: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        headers: &headers,
        body: &body,
    };
    authorize(&state, &session, &client, &back, request, &ua, pairs).await
}

async fn authorize(
    state: &AppState,
    session: &Session,
    client: &OidcClient,
    back: &Back,
    request: AuthRequest,
    ua: &UaRequest<'_>,
    pairs: Vec<(String, String)>,
) -> Response {
    let now = state.ctx.clock.now();
    let mut max_age = request.max_age;
    if let Some(hint) = &request.login_hint
        && let Some(current) = crate::web::session::login(session).await
    {
        match msisdn_of(state, &current.impi).await {
            Ok(m) if m.as_deref() == Some(hint.as_str()) => {}
            Ok(_) => max_age = Some(Duration::ZERO),
            Err(e) => return internal_page(&e),
        }
    }
    let login = if request.prompt.none {
        match crate::web::session::login(session).await {
            Some(l) if max_age.is_none_or(|age| now - l.auth_time <= age) => l,
            _ => {
                return back.error(&AuthError::new(
                    "login_required",
                    "the subscriber is not signed in (recently enough)",
                ));
            }
        }
    } else {
        match state
            .ua
            .login(session, ua, max_age, Some(&client.name))
            .await
        {
            Ok(l) => l,
            Err(response) => return response,
        }
    };
    if let Some(hint) = &request.login_hint {
        match msisdn_of(state, &login.impi).await {
            Ok(m) if m.as_deref() == Some(hint.as_str()) => {}
            Ok(_) => {
                let error = if request.prompt.none {
                    "login_required"
                } else {
                    "access_denied"
                };
                return back.error(&AuthError::new(
                    error,
                    "the signed-in subscriber is not the one login_hint names",
                ));
            }
            Err(e) => return internal_page(&e),
        }
    }
    let items = match consent_items(state, request.scope, &login.impi).await {
        Ok(i) => i,
        Err(e) => return internal_page(&e),
    };
    let consented = !request.prompt.consent
        && match state
            .consents
            .get(
                &*state.ctx.store.consents,
                &login.impi,
                &relying_party(&client.client_id),
                now,
            )
            .await
        {
            Ok(Some(c)) => items.iter().all(|w| c.shared.split(' ').any(|s| s == w)),
            Ok(None) => false,
            Err(e) => return internal_page(&e.to_string()),
        };
    if consented {
        return issue_code(state, client, back, &request, &login, &items).await;
    }
    if request.prompt.none {
        return back.error(&AuthError::new(
            "consent_required",
            "the subscriber has not allowed this site yet",
        ));
    }
    let pending = match consent::hold(session, PENDING, pairs, items).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let site_host = url::Url::parse(&back.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let form_action = url::Url::parse(&back.redirect_uri)
        .ok()
        .map(|u| u.origin().ascii_serialization());
    let site = client.name.clone();
    consent::page(
        &pending,
        site,
        site_host,
        "/authorize/consent",
        form_action.as_deref(),
    )
}

/// Stores the grant with a new code and sends the code back (Core §3.1.2.5).
async fn issue_code(
    state: &AppState,
    client: &OidcClient,
    back: &Back,
    request: &AuthRequest,
    login: &Login,
    shared: &[String],
) -> Response {
    let now = state.ctx.clock.now();
    let config = &state.ctx.config;
    let openid2_id = match &request.openid2_realm {
        Some(realm) => {
            match crate::openid2::endpoint::identifier_for_realm(state, &login.impi, realm).await {
                Ok(id) => Some(id),
                Err(page) => return page,
            }
        }
        None => None,
    };
    let mut rng = OsEntropy;
    let code = AuthorizationCode::generate(&mut rng, now);
    let grant = Grant {
        id: GrantId::generate(&mut rng, now),
        client_id: client.client_id.clone(),
        impi: login.impi.clone(),
        scope: request.scope,
        shared: shared.join(" "),
        auth_time: login.auth_time,
        acr: Some(ACR_PHISHING_RESISTANT.to_owned()),
        openid2_id,
    };
    let expires_at = now + secs(config.oidc_code_ttl_secs);
    let row = CodeRow {
        hash: code.hash(),
        redirect_uri: request.target.redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        expires_at,
    };
    let keep_until = expires_at + secs(config.oidc_access_token_ttl_secs);
    if let Err(e) = state
        .ctx
        .store
        .grants
        .insert_grant(&grant, &row, now, keep_until)
        .await
    {
        return internal_page(&e.to_string());
    }
    back.send(&[("code", code.expose())])
}

/// `POST /authorize/consent`: the answer to the consent page.
pub async fn oidc_consent_post(
    State(state): State<AppState>,
    session: Session,
    axum::Form(form): axum::Form<ConsentForm>,
) -> Response {
    let (pending, login) = match consent::answer(&session, PENDING, &form).await {
        Ok(answered) => answered,
        Err(page) => return page,
    };
    let (client, back, target) = match validated_target(&state, &pending.fields).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let request = match AuthRequest::parse(&pending.fields, target, client.is_public()) {
        Ok(r) => r,
        Err(e) => return back.error(&e),
    };
    match form.decision.as_str() {
        "allow" => {
            let now = state.ctx.clock.now();
            let row = ConsentRow {
                impi: login.impi.clone(),
                relying_party: relying_party(&client.client_id),
                shared: pending.shared.join(" "),
                created_at: now,
            };
            if let Err(e) = state
                .consents
                .put(&*state.ctx.store.consents, &row, now)
                .await
            {
                return internal_page(&e.to_string());
            }
            issue_code(&state, &client, &back, &request, &login, &pending.shared).await
        }
        "deny" => back.error(&AuthError::new(
            "access_denied",
            "the subscriber did not allow this site",
        )),
        _ => pages::error(Problem::BadAnswer),
    }
}

/// An RFC 6749 §5.2 error at `/token`.
#[derive(Debug)]
struct TokenError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: a 401 names the scheme (§5.2).
    basic: bool,
}

impl TokenError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic: false,
        }
    }

    fn client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
            basic,
        }
    }

    fn grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    fn server(cause: &str) -> Self {
        tracing::error!(error = %cause, "OpenID Connect token endpoint");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the provider had an internal problem; try again".into(),
            basic: false,
        }
    }

    fn into_response(self) -> Response {
        let mut r = no_store_json(
            self.status,
            &json!({"error": self.error, "error_description": self.description}),
        );
        if self.basic && self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"akaid\", charset=\"UTF-8\""),
            );
        }
        r
    }
}

/// A `/token` or `/userinfo` answer. Any origin may read it (CORS, for relying parties that
/// run in a browser: a public client with PKCE): both endpoints authenticate by what the
/// request carries, never by a cookie, so letting another origin call them gives it nothing
/// it did not already hold.
fn no_store_json(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    let headers = r.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_EXPOSE_HEADERS, "WWW-Authenticate"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    r
}

/// `OPTIONS /token`, `OPTIONS /userinfo`: the CORS preflight of a browser-based relying
/// party (it sends `Authorization`, so its requests are not "simple"). No cookies are
/// allowed (`Access-Control-Allow-Credentials` is never sent).
pub async fn oidc_api_options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let headers = r.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type",
        ),
        (header::ACCESS_CONTROL_MAX_AGE, "86400"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    r
}

/// `%XX` and `+` decoding of one `application/x-www-form-urlencoded` value (RFC 6749
/// §2.3.1 encodes Basic credentials so).
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The client's credentials: HTTP Basic, or `client_id` (+ `client_secret`) in the body
/// (RFC 6749 §2.3.1); not both.
fn credentials(
    headers: &HeaderMap,
    form: &HashMap<&str, &str>,
) -> Result<(String, Option<String>, bool), TokenError> {
    use base64::Engine as _;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    if let Some(encoded) = basic {
        if form.contains_key("client_secret") {
            return Err(TokenError::new(
                "invalid_request",
                "use one client authentication method, not both Basic and client_secret",
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Err(TokenError::client("malformed Basic credentials", true));
        };
        let (Some(id), Some(secret)) = (form_decode(id), form_decode(secret)) else {
            return Err(TokenError::client("malformed Basic credentials", true));
        };
        if form.get("client_id").is_some_and(|c| *c != id) {
            return Err(TokenError::new(
                "invalid_request",
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok((id, Some(secret), true));
    }
    let Some(id) = form.get("client_id") else {
        return Err(TokenError::client("no client authentication", false));
    };
    Ok((
        (*id).to_owned(),
        form.get("client_secret").map(|s| (*s).to_owned()),
        false,
    ))
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<&str, &str>,
) -> Result<OidcClient, TokenError> {
    let (id, secret, basic) = credentials(headers, form)?;
    let unknown = || TokenError::client("unknown client or wrong secret", basic);
    let id: ClientId = id.parse().map_err(|_| unknown())?;
    let client = match registered_client(state, &id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(unknown()),
        Err(e) => return Err(TokenError::server(&e.to_string())),
    };
    match (client.is_public(), secret) {
        (true, None) => Ok(client),
        (true, Some(_)) => Err(TokenError::client(
            "this client is public: it has no secret",
            basic,
        )),
        (false, Some(s)) if client.verify_secret(&s) => Ok(client),
        (false, _) => Err(unknown()),
    }
}

/// `POST /token` (RFC 6749 §4.1.3, §6).
pub async fn oidc_token_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token(&state, &headers, &body).await {
        Ok(body) => no_store_json(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

async fn token(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, TokenError> {
    let pairs = form_pairs(body);
    let mut form = HashMap::new();
    for (k, v) in &pairs {
        if form.insert(k.as_str(), v.as_str()).is_some() {
            return Err(TokenError::new(
                "invalid_request",
                format!("{k} is sent more than once"),
            ));
        }
    }
    let client = authenticate(state, headers, &form).await?;
    let now = state.ctx.clock.now();
    let grants = &state.ctx.store.grants;
    let store = |e: crate::store::StoreError| TokenError::server(&e.to_string());
    match form.get("grant_type").copied() {
        Some("authorization_code") => {
            let code = form
                .get("code")
                .ok_or_else(|| TokenError::new("invalid_request", "code is missing"))?;
            match grants
                .take_code(&TokenHash::of_code(code), now)
                .await
                .map_err(store)?
            {
                CodeTake::Taken { grant, code } => {
                    if grant.client_id != client.client_id {
                        return Err(TokenError::grant("the code was issued to another client"));
                    }
                    if form.get("redirect_uri").copied() != Some(code.redirect_uri.as_str()) {
                        return Err(TokenError::grant(
                            "redirect_uri differs from the authorization request's",
                        ));
                    }
                    check_pkce(
                        code.code_challenge.as_ref(),
                        form.get("code_verifier").copied(),
                    )
                    .map_err(|e| TokenError::new(e.oauth_error(), e.to_string()))?;
                    let scope = grant.scope;
                    let refresh = Refresh::First;
                    issue_tokens(
                        state,
                        &client,
                        &grant,
                        scope,
                        code.nonce.as_deref(),
                        refresh,
                    )
                    .await
                }
                CodeTake::AlreadyUsed { grant_id } => {
                    grants.revoke_grant(&grant_id, now).await.map_err(store)?;
                    tracing::warn!(grant = %grant_id, "authorization code used twice: grant revoked");
                    Err(TokenError::grant(
                        "the code was used before; the tokens issued for it are revoked",
                    ))
                }
                CodeTake::Expired => Err(TokenError::grant("the code has expired")),
                CodeTake::GrantRevoked { .. } | CodeTake::Unknown => {
                    Err(TokenError::grant("unknown or revoked code"))
                }
            }
        }
        Some("refresh_token") => {
            let presented = form
                .get("refresh_token")
                .ok_or_else(|| TokenError::new("invalid_request", "refresh_token is missing"))?;
            // A scope the grant lacks is refused before the rotation, which would use the
            // presented token up (RFC 6749 §6: the request fails and changes nothing).
            if let Some(requested) = form.get("scope").copied()
                && let Some(grant) = grants
                    .grant_of_refresh(&TokenHash::of(presented))
                    .await
                    .map_err(store)?
                && grant.client_id == client.client_id
            {
                grant
                    .scope
                    .narrow(Some(requested))
                    .map_err(|e| TokenError::new(e.oauth_error(), e.to_string()))?;
            }
            let new = RefreshToken::generate(&mut OsEntropy);
            let row = NewRefreshToken {
                hash: new.hash(),
                issued_at: now,
                expires_at: now + secs(state.ctx.config.oidc_refresh_token_ttl_secs),
            };
            let rotation = grants
                .rotate_refresh(
                    &TokenHash::of(presented),
                    &client.client_id,
                    &row,
                    now,
                    REFRESH_GRACE,
                )
                .await
                .map_err(store)?;
            match rotation {
                Rotation::Rotated(grant) | Rotation::ReusedWithinGrace(grant) => {
                    let scope = grant
                        .scope
                        .narrow(form.get("scope").copied())
                        .map_err(|e| TokenError::new(e.oauth_error(), e.to_string()))?;
                    issue_tokens(state, &client, &grant, scope, None, Refresh::Rotated(new)).await
                }
                Rotation::Reused { grant_id } => {
                    tracing::warn!(grant = %grant_id, "refresh token replayed: grant revoked");
                    Err(TokenError::grant(
                        "the refresh token was used before; the grant is revoked",
                    ))
                }
                Rotation::Expired => Err(TokenError::grant("the refresh token has expired")),
                Rotation::GrantRevoked { .. } | Rotation::Unknown => {
                    Err(TokenError::grant("unknown or revoked refresh token"))
                }
            }
        }
        Some(other) => Err(TokenError::new(
            "unsupported_grant_type",
            format!("grant_type {other:?} is not supported"),
        )),
        None => Err(TokenError::new("invalid_request", "grant_type is missing")),
    }
}

/// The refresh token a token response carries.
enum Refresh {
    /// The code exchange: a first one if the grant has `offline_access`.
    First,
    /// A refresh: the successor already stored by the rotation.
    Rotated(RefreshToken),
}

/// The `sub` a client sees: pairwise per its sector host (DESIGN.md §2.6) or public.
async fn subject(state: &AppState, client: &OidcClient, impi: &Impi) -> Result<String, String> {
    let (host, stable) = match &client.sector_host {
        Some(host) => (host.as_str(), false),
        None => ("", true),
    };
    crate::openid2::endpoint::subject_for(state, impi, host, stable)
        .await
        .map_err(|_| "cannot compute the subject".to_owned())
}

async fn issue_tokens(
    state: &AppState,
    client: &OidcClient,
    grant: &Grant,
    scope: Scopes,
    nonce: Option<&str>,
    refresh: Refresh,
) -> Result<Value, TokenError> {
    let now = state.ctx.clock.now();
    let config = &state.ctx.config;
    let iss = issuer(&config.public_url);
    let sub = subject(state, client, &grant.impi)
        .await
        .map_err(|e| TokenError::server(&e))?;
    let key = state
        .key_ring
        .active(client.id_token_alg)
        .map_err(|e| TokenError::server(&e.to_string()))?;
    // Access tokens are read by this OP's own /userinfo only, so they do not follow the
    // client's ID-token algorithm: ES256 from the same key ring (RFC 9068 lets the
    // authorization server choose; /userinfo verifies by `kid` against the JWKS). An RS256
    // signature costs this machine about 0.7 ms, an ES256 one about a twentieth of that.
    let access_key = state
        .key_ring
        .active(super::jose::SigningAlg::ES256)
        .map_err(|e| TokenError::server(&e.to_string()))?;
    let jti = JwtId::generate(&mut OsEntropy);
    let access_ttl = secs(config.oidc_access_token_ttl_secs);
    let access_claims = AccessToken {
        issuer: &iss,
        subject: &sub,
        audience: &iss,
        client_id: client.client_id.as_str(),
        issued_at: now,
        expires_at: now + access_ttl,
        jti: &jti,
        scope,
        auth_time: grant.auth_time,
        acr: grant.acr.as_deref(),
        grant_id: &grant.id,
    }
    .claims();
    let access = sign_jwt(
        &access_key,
        Some(ACCESS_TOKEN_TYP),
        &Value::Object(access_claims),
    )
    .map_err(|e| TokenError::server(&e.to_string()))?;
    let mut body = Map::new();
    if scope.contains(Scope::Openid) {
        let mut claims = IdToken {
            issuer: &iss,
            subject: &sub,
            client_id: client.client_id.as_str(),
            issued_at: now,
            expires_at: now + secs(config.oidc_id_token_ttl_secs),
            auth_time: grant.auth_time,
            nonce,
            acr: grant.acr.as_deref(),
            access_token: Some(&access),
            alg: key.alg(),
        }
        .claims();
        if let Some(id) = grant
            .openid2_id
            .as_ref()
            .filter(|_| scope.contains(Scope::Openid2))
        {
            claims.insert("openid2_id".into(), id.as_str().into());
        }
        let id_token = sign_jwt(&key, Some(ID_TOKEN_TYP), &Value::Object(claims))
            .map_err(|e| TokenError::server(&e.to_string()))?;
        body.insert("id_token".into(), id_token.into());
    }
    let refresh = match refresh {
        Refresh::First if grant.scope.contains(Scope::OfflineAccess) => {
            let token = RefreshToken::generate(&mut OsEntropy);
            let row = RefreshTokenRow {
                hash: token.hash(),
                grant_id: grant.id.clone(),
                parent: None,
                issued_at: now,
                expires_at: now + secs(config.oidc_refresh_token_ttl_secs),
            };
            let stored = state.ctx.store.grants.insert_refresh(&row).await;
            if !stored.map_err(|e| TokenError::server(&e.to_string()))? {
                return Err(TokenError::grant("the grant was revoked"));
            }
            Some(token)
        }
        Refresh::First => None,
        Refresh::Rotated(token) => Some(token),
    };
    if let Some(token) = refresh {
        body.insert("refresh_token".into(), token.expose().into());
    }
    body.insert("access_token".into(), access.into());
    body.insert("token_type".into(), "Bearer".into());
    body.insert("expires_in".into(), access_ttl.whole_seconds().into());
    body.insert("scope".into(), scope.to_string().into());
    Ok(Value::Object(body))
}

/// An RFC 6750 §3 challenge; without `error` (no token sent at all, §3.1) the body names
/// no error code either.
fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> Response {
    let mut r = no_store_json(
        status,
        &match error {
            Some(e) => json!({"error": e, "error_description": description}),
            None => json!({"error_description": description}),
        },
    );
    let challenge = match error {
        Some(e) => format!(
            "Bearer realm=\"akaid\", error=\"{e}\", error_description=\"{}\"",
            // RFC 6750 §3: error_description is printable ASCII without `"` and `\`; a
            // header value with anything else would not be sent at all.
            description
                .chars()
                .map(|c| match c {
                    '"' | '\\' => '\'',
                    ' '..='~' => c,
                    _ => '?',
                })
                .collect::<String>()
        ),
        None => "Bearer realm=\"akaid\"".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn invalid_token(description: &str) -> Response {
    bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), description)
}

/// `GET|POST /userinfo` (Core §5.3): the bearer token in the `Authorization` header
/// (RFC 6750 §2.1; the form and query methods are not accepted).
pub async fn oidc_userinfo_get(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let in_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        });
    // RFC 6750 §2.2: a POST may carry the token as a form field instead.
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let in_body = (method == Method::POST && is_form)
        .then(|| form_pairs(&body))
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "access_token"))
        .map(|(_, v)| v);
    let token = match (in_header, in_body) {
        (Some(_), Some(_)) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "the access token is sent twice (header and body); send it once (RFC 6750 section 2)",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                None,
                "an access token is required (Authorization: Bearer, or access_token in a \
                 form POST)",
            );
        }
    };
    let token = token.as_str();
    let now = state.ctx.clock.now();
    let iss = issuer(&state.ctx.config.public_url);
    let claims = match verify_jwt(&state.key_ring.jwks(), token, Some(ACCESS_TOKEN_TYP)) {
        Ok(c) => c,
        Err(e) => return invalid_token(&format!("the access token is not valid: {e}")),
    };
    if let Err(e) = check_time(&claims, now, Duration::ZERO) {
        return invalid_token(&format!("the access token is not valid: {e}"));
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(iss.as_str()) || text("aud") != Some(iss.as_str()) {
        return invalid_token("the access token is not for this provider");
    }
    let Some(grant_id) = text(GRANT_ID_CLAIM).and_then(|g| g.parse::<GrantId>().ok()) else {
        return invalid_token("the access token names no grant");
    };
    let grant = match state.ctx.store.grants.grant(&grant_id).await {
        Ok(Some(g)) => g,
        Ok(None) => return invalid_token("the access token's grant is revoked"),
        Err(e) => {
            tracing::error!(error = %e, "userinfo: reading a grant");
            return unavailable("the grant store is unavailable");
        }
    };
    let scope = text("scope")
        .and_then(|s| Scopes::from_stored(s).ok())
        .unwrap_or_default();
    if !scope.contains(Scope::Openid) {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not issued with scope openid",
        );
    }
    let shared: Vec<&str> = grant.shared.split(' ').collect();
    let mut out = Map::new();
    out.insert("sub".into(), text("sub").unwrap_or_default().into());
    if scope.contains(Scope::Phone) && shared.contains(&"phone") {
        match msisdn_of(&state, &grant.impi).await {
            Ok(Some(msisdn)) => {
                out.insert("phone_number".into(), msisdn.into());
                out.insert("phone_number_verified".into(), true.into());
            }
            Ok(None) => {}
            Err(e) => return unavailable(&e),
        }
    }
    if scope.contains(Scope::Profile) {
        match state.ctx.store.profiles.profile(&grant.impi).await {
            Ok(profile) => {
                for (field, value) in profile {
                    if shared.contains(&field.as_str())
                        && let Some((claim, value)) = profile_claim(field, &value)
                    {
                        out.insert(claim.into(), value.into());
                    }
                }
            }
            Err(e) => return unavailable(&e.to_string()),
        }
    }
    no_store_json(StatusCode::OK, &Value::Object(out))
}

/// The session key of the sign-out confirmation's CSRF token.
const LOGOUT_CSRF: &str = "logout_csrf";

/// `GET|POST /logout` (RP-Initiated Logout 1.0 §2, §3): ends the OP session, then returns
/// to the client's registered `post_logout_redirect_uri` or shows a signed-out page.
/// `id_token_hint` must be an ID token this OP signed (an expired one is fine); a
/// `post_logout_redirect_uri` needs the client, from the hint's `aud` or `client_id`.
/// Without the hint, a signed-in subscriber is asked first.
pub async fn oidc_logout_get(
    State(state): State<AppState>,
    session: Session,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let pairs = request_pairs(&method, &uri, &body);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let refuse = |what: &str| {
        pages::error(Problem::LogoutRefused {
            detail: what.to_owned(),
        })
    };
    let mut client_id = get("client_id").map(str::to_owned);
    if let Some(hint) = get("id_token_hint") {
        let claims = match verify_jwt(&state.key_ring.jwks(), hint, None) {
            Ok(c) => c,
            Err(_) => return refuse("The site sent a token that this service did not issue."),
        };
        let iss = issuer(&state.ctx.config.public_url);
        if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
            return refuse("The site sent a token that this service did not issue.");
        }
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => Some(a.clone()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        if client_id.is_some() && client_id != aud {
            return refuse("The request names two different sites.");
        }
        client_id = aud;
    }
    let mut redirect = None;
    if let Some(target) = get("post_logout_redirect_uri") {
        let client = match client_id.as_deref().map(str::parse::<ClientId>) {
            Some(Ok(id)) => match registered_client(&state, &id).await {
                Ok(c) => c,
                Err(e) => return internal_page(&e.to_string()),
            },
            _ => None,
        };
        if !client.is_some_and(|c| c.has_post_logout_redirect_uri(target)) {
            return refuse(
                "The site asks to be sent back to an address it did not register for sign-out.",
            );
        }
        let mut params = Vec::new();
        if let Some(s) = get("state") {
            params.push(("state", s));
        }
        redirect = redirect_with(target, &params);
    }
    // Without an ID token from a site this OP signed someone in to, anyone's page could send
    // the browser here: ask first (RP-Initiated Logout 1.0 §2), with a token bound to the
    // session so the answer cannot be forged either.
    if get("id_token_hint").is_none() && crate::web::session::login(&session).await.is_some() {
        let expected: Option<String> = session.get(LOGOUT_CSRF).await.ok().flatten();
        let confirmed = matches!(
            (get("confirm"), expected.as_deref()),
            (Some(given), Some(expected))
                if bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()))
        );
        if !confirmed || method != Method::POST {
            let token = crate::web::ua::random_b64::<24>();
            if let Err(e) = session.insert(LOGOUT_CSRF, &token).await {
                return internal_page(&e.to_string());
            }
            let fields = ["client_id", "post_logout_redirect_uri", "state"]
                .iter()
                .filter_map(|name| get(name).map(|v| ((*name).to_owned(), v.to_owned())))
                .collect();
            let fields: Vec<(String, String)> = fields;
            return pages::page(StatusCode::OK, None, move |t| {
                askama::Template::render(&LogoutConfirmPage {
                    t,
                    csrf: &token,
                    fields: &fields,
                })
            });
        }
    }
    if let Err(e) = session.flush().await {
        return internal_page(&e.to_string());
    }
    match redirect {
        Some(url) => see_other(&url),
        None => pages::error(Problem::SignedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%2Bb+c").as_deref(), Some("a+b c"));
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        use base64::Engine as _;
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("c%3A1:s%25");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let (id, secret, basic) = credentials(&headers, &HashMap::new()).unwrap();
        assert_eq!(
            (id.as_str(), secret.as_deref(), basic),
            ("c:1", Some("s%"), true)
        );
        let mut form = HashMap::new();
        form.insert("client_secret", "x");
        assert_eq!(
            credentials(&headers, &form).unwrap_err().error,
            "invalid_request",
            "two methods at once"
        );
        let form = HashMap::from([("client_id", "c2")]);
        let (id, secret, basic) = credentials(&HeaderMap::new(), &form).unwrap();
        assert_eq!((id.as_str(), secret, basic), ("c2", None, false));
        let none = credentials(&HeaderMap::new(), &HashMap::new()).unwrap_err();
        assert_eq!(none.error, "invalid_client");
    }

    #[test]
    fn profile_claims_use_the_openid_connect_names() {
        assert_eq!(
            profile_claim(ProfileField::Fullname, "Ada L"),
            Some(("name", "Ada L".to_owned()))
        );
        assert_eq!(
            profile_claim(ProfileField::Gender, "F"),
            Some(("gender", "female".to_owned()))
        );
        assert_eq!(profile_claim(ProfileField::Email, "a@b"), None);
    }
}
