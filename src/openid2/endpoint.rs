//! The OpenID 2.0 provider's HTTP side (DESIGN.md §2.6): discovery documents, the `/openid`
//! endpoint with every mode, and the consent form's answer. Thin: the protocol is in the
//! pure modules beside this one; here are the store, the session, the Ua login and the
//! choice of response form.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use time::Duration;
use tokio::sync::OnceCell;
use tower_sessions::Session;

use super::assoc::{AssocType, AssociateRequest, MacKey};
use super::checkid::{Assertion, CheckIdRequest, IdentityRequest};
use super::ext::{
    AX_PHONE_CELL, AX_PHONE_DEFAULT, AxFetchRequest, PapeRequest, PapeResponse, SregRequest,
    ax_msisdn_values,
};
use super::message::{Indirect, Message, Mode, Version};
use super::{Error, IDENTIFIER_SELECT, signing, xrds};
use crate::ids::Impi;
use crate::profile::ProfileField;
use crate::secret::{SealContext, Secret};
use crate::store::{AssociationRow, ConsentRow, RealmPolicy};
use crate::web::consent::{self, ConsentForm};
use crate::web::pages::{self, DiscoveryPage, Problem, SelfPostPage};
use crate::web::session::Login;
use crate::web::ua::UaRequest;
use crate::web::{AppState, request_pairs};

const ASSOCIATIONS: &str = "openid2_associations";
/// Shared associations live this long (§8.2.1 `expires_in`).
const ASSOCIATION_TTL: Duration = Duration::hours(2);
/// Private associations only need to outlive the relying party's check_authentication.
const PRIVATE_ASSOCIATION_TTL: Duration = Duration::minutes(10);
/// How long one private association signs new responses.
const PRIVATE_ASSOCIATION_REUSE: Duration = Duration::minutes(1);
/// A response_nonce older than this is refused by check_authentication, and the record of a
/// used one is kept this long.
const NONCE_WINDOW: Duration = Duration::hours(1);
const PSEUDONYM_SECRET: &str = "pseudonym_secret";
const PENDING: &str = "openid2_pending";

/// The OpenID 2.0 provider's state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Op {
    public_url: String,
    endpoint: String,
    /// Whether `no-encryption` associations may be made: over HTTPS, or where the operator
    /// allowed them over plain HTTP for local testing.
    no_encryption_allowed: bool,
    pseudonym_secret: Arc<OnceCell<Secret<Vec<u8>>>>,
    /// The private association this process signs with now (§10.1: the OP may use one for
    /// many responses); replaced after [`PRIVATE_ASSOCIATION_REUSE`].
    private: Arc<std::sync::Mutex<Option<PrivateAssociation>>>,
    /// Realm policies read in the last [`POLICY_CACHE_TTL`]: a policy change reaches every
    /// process within that time.
    policies: Arc<std::sync::Mutex<std::collections::HashMap<String, CachedPolicy>>>,
    /// `associate` requests per client address per second.
    associate_limiter: Arc<crate::gba::bsf::IpLimiter>,
    trusted_proxies: crate::web::client_ip::CidrList,
    /// Checks `return_to` against the relying party's published list (§13).
    rp_discovery: super::rp_discovery::RpDiscoverer,
}

#[derive(Debug, Clone)]
struct CachedPolicy {
    row: Option<crate::store::RealmPolicyRow>,
    read: time::OffsetDateTime,
}

/// How long a realm policy read is reused.
const POLICY_CACHE_TTL: Duration = Duration::seconds(5);
/// Realms whose policy is cached at most.
const POLICY_CACHE_MAX: usize = 10_000;

#[derive(Debug)]
struct PrivateAssociation {
    handle: String,
    key: Arc<MacKey>,
    created: time::OffsetDateTime,
}

impl Op {
    pub fn new(config: &crate::config::Config) -> Self {
        let public_url = config.public_url.as_str().to_owned();
        Self {
            endpoint: xrds::op_endpoint(&public_url),
            no_encryption_allowed: public_url.starts_with("https:")
                || config.openid2_no_encryption_over_http,
            public_url,
            pseudonym_secret: Arc::new(OnceCell::new()),
            private: Arc::new(std::sync::Mutex::new(None)),
            policies: Arc::new(std::sync::Mutex::new(std::collections::HashMap::new())),
            associate_limiter: Arc::new(crate::gba::bsf::IpLimiter::new(
                config.openid2_associate_limit_per_ip,
            )),
            trusted_proxies: config.trusted_proxies.clone(),
            rp_discovery: super::rp_discovery::RpDiscoverer::new(
                config.openid2_rp_discovery,
                config.openid2_rp_discovery_allow.clone(),
                std::time::Duration::from_millis(config.openid2_rp_discovery_timeout_ms),
            ),
        }
    }

    /// The user identifier URL for a pseudonym.
    pub fn identifier(&self, pseudonym: &str) -> String {
        format!("{}id/{pseudonym}", self.public_url)
    }
}

/// The secret behind pseudonyms: made once, sealed in `meta`, the same for every process.
async fn pseudonym_secret(state: &AppState) -> Result<&Secret<Vec<u8>>, Response> {
    state
        .op
        .pseudonym_secret
        .get_or_try_init(|| async {
            let ctx = SealContext::new("meta", "value", PSEUDONYM_SECRET);
            let mut fresh = Secret::new([0u8; 32]);
            rand::Rng::fill(&mut rand::rng(), &mut fresh.expose_mut()[..]);
            let sealed = state.ctx.sealer.seal(ctx, fresh.expose());
            let stored = state
                .ctx
                .store
                .meta
                .get_or_insert(PSEUDONYM_SECRET, &sealed)
                .await
                .map_err(|e| e.to_string())?;
            let ctx = SealContext::new("meta", "value", PSEUDONYM_SECRET);
            state
                .ctx
                .sealer
                .open(ctx, &stored)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| internal(&e))
}

/// The identifier a subscriber has at a realm: pairwise by default, stable where the
/// operator's policy says so (DESIGN.md §2.6). OIDC's pairwise `sub` uses the same function.
pub async fn subject_for(
    state: &AppState,
    impi: &Impi,
    host: &str,
    stable: bool,
) -> Result<String, Response> {
    let secret = pseudonym_secret(state).await?;
    let host = if stable { "" } else { host };
    Ok(super::pseudonym::pseudonym(
        secret.expose(),
        impi.as_str(),
        host,
    ))
}

/// The identifier URL a subscriber has at `realm`, as `checkid` asserts it (the operator's
/// stable-identifier policy included): OpenID Connect's `openid2_id` claim (OpenID 2.0 →
/// OpenID Connect Migration 1.0 §4).
pub async fn identifier_for_realm(
    state: &AppState,
    impi: &Impi,
    realm: &super::realm::Realm,
) -> Result<String, Response> {
    let stable = match realm_policy(state, realm.as_str()).await {
        Ok(p) => p.is_some_and(|p| p.stable_identifier),
        Err(e) => return Err(internal(&e)),
    };
    let pseudonym = subject_for(state, impi, realm.host(), stable).await?;
    Ok(state.op.identifier(&pseudonym))
}

/// The subscriber's identifier URL at the request's realm.
async fn identifier_at(
    state: &AppState,
    impi: &Impi,
    request: &CheckIdRequest,
    stable: bool,
) -> Result<String, Response> {
    let pseudonym = subject_for(state, impi, request.realm.host(), stable).await?;
    Ok(state.op.identifier(&pseudonym))
}

fn internal(what: &str) -> Response {
    tracing::error!(error = %what, "OpenID 2.0 endpoint");
    pages::error(Problem::Internal)
}

fn wants_xrds(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(xrds::XRDS_CONTENT_TYPE))
}

fn xrds_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, xrds::XRDS_CONTENT_TYPE)], body).into_response()
}

/// The HTML page of an OP or user identifier, with its Yadis `X-XRDS-Location`.
fn discovery_page(endpoint: &str, local_id: Option<&str>, location: &str) -> Response {
    let (endpoint, local_id) = (endpoint.to_owned(), local_id.map(str::to_owned));
    let mut response = pages::page(StatusCode::OK, None, move |t| {
        askama::Template::render(&DiscoveryPage {
            t,
            endpoint: &endpoint,
            local_id: local_id.as_deref(),
        })
    });
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert("x-xrds-location", value);
    }
    response
}

/// `GET /`: the OP identifier (Yadis: XRDS on request, `X-XRDS-Location` otherwise).
pub async fn openid2_op_identifier_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let op = &state.op;
    if wants_xrds(&headers) {
        return xrds_response(xrds::op_identifier_xrds(&op.public_url));
    }
    discovery_page(&op.endpoint, None, &format!("{}xrds", op.public_url))
}

/// `GET /xrds`: the OP identifier's XRDS document.
pub async fn openid2_xrds_get(State(state): State<AppState>) -> Response {
    xrds_response(xrds::op_identifier_xrds(&state.op.public_url))
}

fn valid_pseudonym(p: &str) -> bool {
    p.len() == super::pseudonym::PSEUDONYM_LEN
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// `GET /id/{pseudonym}`: a user identifier (XRDS on request, HTML with links otherwise).
pub async fn openid2_identifier_get(
    State(state): State<AppState>,
    Path(pseudonym): Path<String>,
    headers: HeaderMap,
) -> Response {
    let op = &state.op;
    if !valid_pseudonym(&pseudonym) {
        return pages::error(Problem::NoSuchIdentifier);
    }
    let id = op.identifier(&pseudonym);
    if wants_xrds(&headers) {
        return xrds_response(xrds::user_identifier_xrds(&op.public_url, &id));
    }
    discovery_page(&op.endpoint, Some(&id), &format!("{id}/xrds"))
}

/// `GET /id/{pseudonym}/xrds`.
pub async fn openid2_identifier_xrds_get(
    State(state): State<AppState>,
    Path(pseudonym): Path<String>,
) -> Response {
    if !valid_pseudonym(&pseudonym) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let id = state.op.identifier(&pseudonym);
    xrds_response(xrds::user_identifier_xrds(&state.op.public_url, &id))
}

fn kv_response(status: StatusCode, message: &Message) -> Response {
    match message.to_kv() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => internal(&e.to_string()),
    }
}

fn direct_error(error: &Error, version: Version) -> Response {
    kv_response(StatusCode::BAD_REQUEST, &error.direct_response(version))
}

fn bad_request_page(what: &str) -> Response {
    pages::error(Problem::BadRequest {
        detail: what.to_owned(),
    })
}

/// `GET|POST /openid`: every mode of §4–§11.
pub async fn openid2_endpoint(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    session: Session,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = request_pairs(&method, &uri, &body);
    let message = match Message::from_pairs(&pairs) {
        Ok(m) => m,
        Err(e) => {
            let e = Error::from(e);
            return if method == Method::POST {
                direct_error(&e, Version::V2)
            } else {
                bad_request_page(&e.to_string())
            };
        }
    };
    let version = message.version();
    match message.mode() {
        Ok(Mode::Associate) if method == Method::POST => {
            if let Some(axum::Extension(axum::extract::ConnectInfo(peer))) = peer {
                let client = state.op.trusted_proxies.client_of(peer.ip(), &headers);
                if let Err(retry_after) = state.op.associate_limiter.check(client) {
                    let mut m = Message::new(version);
                    m.set(
                        "error",
                        "too many associate requests from this address; retry later",
                    );
                    let mut r = kv_response(StatusCode::TOO_MANY_REQUESTS, &m);
                    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                        r.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    return r;
                }
            }
            associate(&state, &message).await
        }
        Ok(Mode::CheckAuthentication) if method == Method::POST => {
            check_authentication(&state, &message).await
        }
        Ok(Mode::CheckidSetup | Mode::CheckidImmediate) => {
            let request = UaRequest {
                method: method.as_str(),
                uri: uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                headers: &headers,
                body: &body,
            };
            checkid(&state, &session, message, &request).await
        }
        Ok(mode) if method == Method::POST => {
            let mut m = Message::new(version);
            m.set(
                "error",
                format!("openid.mode {} is not a direct request", mode.as_str()),
            );
            kv_response(StatusCode::BAD_REQUEST, &m)
        }
        Ok(mode) => bad_request_page(&format!(
            "openid.mode {} cannot be sent by a browser.",
            mode.as_str()
        )),
        Err(e) if method == Method::POST => direct_error(&Error::from(e), version),
        Err(_) if pairs.is_empty() => openid2_op_identifier_get(State(state), headers).await,
        Err(e) => bad_request_page(&e.to_string()),
    }
}

/// `associate` (§8).
async fn associate(state: &AppState, message: &Message) -> Response {
    let request = match AssociateRequest::parse(message, state.op.no_encryption_allowed) {
        Ok(r) => r,
        Err(e) => return direct_error(&Error::from(e), message.version()),
    };
    let handle = new_handle();
    let mac_key: MacKey = Secret::new(random_vec(request.assoc_type.mac_key_len()));
    let server_private = Secret::new(random_vec(64));
    let answer = match request.answer(
        &handle,
        ASSOCIATION_TTL.whole_seconds().unsigned_abs(),
        &mac_key,
        &server_private,
    ) {
        Ok(a) => a,
        Err(e) => return direct_error(&Error::from(e), message.version()),
    };
    let expires_at = state.ctx.clock.now() + ASSOCIATION_TTL;
    let stored = store_association(
        state,
        &handle,
        request.assoc_type,
        &mac_key,
        false,
        expires_at,
    );
    if let Err(e) = stored.await {
        tracing::error!(error = %e, "storing an association");
        let mut m = Message::new(message.version());
        m.set("error", "the association could not be stored; try again");
        return kv_response(StatusCode::SERVICE_UNAVAILABLE, &m);
    }
    kv_response(StatusCode::OK, &answer)
}

fn new_handle() -> String {
    crate::web::ua::random_b64::<18>()
}

fn random_vec(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::Rng::fill(&mut rand::rng(), &mut v[..]);
    v
}

/// Stores an association with its MAC key sealed for ("openid2_associations", "secret",
/// handle).
async fn store_association(
    state: &AppState,
    handle: &str,
    assoc_type: AssocType,
    key: &MacKey,
    private: bool,
    expires_at: time::OffsetDateTime,
) -> Result<(), crate::store::StoreError> {
    let ctx = SealContext::new(ASSOCIATIONS, "secret", handle);
    let row = AssociationRow {
        handle: handle.to_owned(),
        assoc_type: assoc_type.as_str().to_owned(),
        secret_sealed: state.ctx.sealer.seal(ctx, key.expose()),
        private,
        expires_at,
    };
    state.ctx.store.openid2.insert_association(&row).await
}

/// An association and its MAC key, if the handle names a live one.
async fn load_association(
    state: &AppState,
    handle: &str,
) -> Result<Option<(AssociationRow, AssocType, MacKey)>, String> {
    let Some(row) = state
        .ctx
        .store
        .openid2
        .association(handle, state.ctx.clock.now())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let Some(assoc_type) = AssocType::parse(&row.assoc_type) else {
        return Err(format!("stored association type {:?}", row.assoc_type));
    };
    let key = state
        .ctx
        .sealer
        .open(
            SealContext::new(ASSOCIATIONS, "secret", &row.handle),
            &row.secret_sealed,
        )
        .map_err(|e| e.to_string())?;
    Ok(Some((row, assoc_type, key)))
}

/// `check_authentication` (§11.4.2): private associations only, each nonce once.
async fn check_authentication(state: &AppState, message: &Message) -> Response {
    let version = message.version();
    let mut answer = Message::new(version);
    let mut valid = false;
    if let Some(handle) = message.get("assoc_handle") {
        if let Some(key) = own_private_association(state, handle) {
            valid = signing::verify(message, AssocType::HmacSha256, &key).is_ok();
        } else {
            match load_association(state, handle).await {
                Err(e) => return internal(&e),
                Ok(Some((row, assoc_type, key))) if row.private => {
                    valid = signing::verify(message, assoc_type, &key).is_ok();
                }
                Ok(_) => {}
            }
        }
    }
    if valid && let Some(nonce) = message.get("response_nonce") {
        let now = state.ctx.clock.now();
        valid = match signing::parse_nonce(nonce) {
            Ok(at) if (now - at).abs() <= NONCE_WINDOW => {
                match state
                    .ctx
                    .store
                    .openid2
                    .record_nonce(nonce, at + NONCE_WINDOW + Duration::minutes(5))
                    .await
                {
                    Ok(first) => first,
                    Err(e) => return internal(&e.to_string()),
                }
            }
            _ => false,
        };
    } else if valid && version == Version::V2 {
        valid = false;
    }
    answer.set("is_valid", if valid { "true" } else { "false" });
    if let Some(handle) = message.get("invalidate_handle") {
        match load_association(state, handle).await {
            Ok(Some(_)) => {}
            Ok(None) => answer.set("invalidate_handle", handle),
            Err(e) => return internal(&e),
        }
    }
    kv_response(StatusCode::OK, &answer)
}

/// `checkid_setup` and `checkid_immediate` (§9, §10).
async fn checkid(
    state: &AppState,
    session: &Session,
    message: Message,
    ua: &UaRequest<'_>,
) -> Response {
    let request = match CheckIdRequest::parse(message) {
        Ok(r) => r,
        Err(e) => return bad_request_page(&e.to_string()),
    };
    let Some(return_to) = request.return_to.clone() else {
        return bad_request_page("The request has no return_to: there is nowhere to answer.");
    };
    let now = state.ctx.clock.now();
    let policy = match realm_policy(state, request.realm.as_str()).await {
        Ok(p) => p,
        Err(e) => return internal(&e),
    };
    if policy
        .as_ref()
        .is_some_and(|p| p.policy == RealmPolicy::Deny)
    {
        // No page for checkid_immediate: the site gets the protocol's answer.
        if request.immediate {
            return indirect(&request, request.cancel(), &return_to);
        }
        return pages::error(Problem::BlockedSite {
            host: request.realm.host().to_owned(),
        });
    }
    let pape = match PapeRequest::from_message(request.message()) {
        Ok(p) => p,
        Err(e) => return indirect_error(&request, Error::from(e), &return_to),
    };
    let max_age = pape
        .as_ref()
        .and_then(|p| p.max_auth_age)
        .map(|s| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX)));
    let login = if request.immediate {
        match crate::web::session::login(session).await {
            Some(l) if max_age.is_none_or(|age| now - l.auth_time <= age) => l,
            _ => return setup_needed(state, &request, &return_to),
        }
    } else {
        match state
            .ua
            .login(session, ua, max_age, Some(request.realm.as_str()))
            .await
        {
            Ok(l) => l,
            Err(response) => return response,
        }
    };
    let stable = policy.as_ref().is_some_and(|p| p.stable_identifier);
    let identifier = match identifier_at(state, &login.impi, &request, stable).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    if let IdentityRequest::Claimed { claimed_id, .. } = &request.identity
        && claimed_id != &identifier
    {
        // Never an assertion about someone else's identifier.
        return if request.immediate {
            setup_needed(state, &request, &return_to)
        } else {
            indirect(&request, request.cancel(), &return_to)
        };
    }
    if let Err(page) = verify_return_to(state, &request, &return_to).await {
        return page;
    }
    let release = match Release::read(state, &request, &login.impi).await {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let wanted = &release.items;
    let consented = policy
        .as_ref()
        .is_some_and(|p| p.policy == RealmPolicy::Allow)
        || match state
            .consents
            .get(
                &*state.ctx.store.consents,
                &login.impi,
                &relying_party(&request),
                now,
            )
            .await
        {
            Ok(Some(c)) => wanted.iter().all(|w| c.shared.split(' ').any(|s| s == w)),
            Ok(None) => false,
            Err(e) => return internal(&e.to_string()),
        };
    if consented {
        return assert(state, &request, &login, &identifier, &return_to, &release).await;
    }
    if request.immediate {
        return setup_needed(state, &request, &return_to);
    }
    consent_page(session, &request, &release.items).await
}

/// Relying-party discovery (§9.2.1, §13): a `return_to` the site does not list gets an HTML
/// page, never a redirect to it.
async fn verify_return_to(
    state: &AppState,
    request: &CheckIdRequest,
    return_to: &str,
) -> Result<(), Response> {
    use super::rp_discovery::Verdict;
    let discovery = &state.op.rp_discovery;
    let verdict = discovery
        .verify(&request.realm, return_to, state.ctx.clock.now())
        .await;
    if verdict.allows(discovery.mode()) {
        return Ok(());
    }
    tracing::warn!(
        realm = request.realm.as_str(),
        return_to,
        "relying-party discovery refused the return_to: {verdict:?}"
    );
    let host = request.realm.host().to_owned();
    Err(pages::error(match verdict {
        Verdict::NotListed { .. } => Problem::ReturnNotListed {
            url: return_to.to_owned(),
            host,
        },
        _ => Problem::SiteUnverifiable { host },
    }))
}

/// The operator's policy for `realm`, through the short-lived cache.
async fn realm_policy(
    state: &AppState,
    realm: &str,
) -> Result<Option<crate::store::RealmPolicyRow>, String> {
    let now = state.ctx.clock.now();
    if let Ok(cache) = state.op.policies.lock()
        && let Some(hit) = cache.get(realm)
        && now >= hit.read
        && now - hit.read < POLICY_CACHE_TTL
    {
        return Ok(hit.row.clone());
    }
    let row = state
        .ctx
        .store
        .realm_policies
        .get(realm)
        .await
        .map_err(|e| e.to_string())?;
    if let Ok(mut cache) = state.op.policies.lock() {
        if cache.len() >= POLICY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            realm.to_owned(),
            CachedPolicy {
                row: row.clone(),
                read: now,
            },
        );
    }
    Ok(row)
}

fn relying_party(request: &CheckIdRequest) -> String {
    format!("openid2:{}", request.realm.as_str())
}

/// What a checkid request asks for that this subscriber has: the consent items
/// (`identifier`, `phone`, profile field names) and the values they release. A request for
/// nothing but the identifier reads nothing.
#[derive(Debug, Default)]
struct Release {
    items: Vec<String>,
    msisdn: Option<String>,
    profile: crate::profile::Profile,
}

impl Release {
    async fn read(state: &AppState, request: &CheckIdRequest, impi: &Impi) -> Result<Self, String> {
        let message = request.message();
        let mut fields: Vec<ProfileField> = SregRequest::from_message(message)
            .map(|s| s.requested().collect())
            .unwrap_or_default();
        let mut phone = false;
        if let Ok(Some(ax)) = AxFetchRequest::from_message(message) {
            for attribute in &ax.attributes {
                if attribute.type_uri == AX_PHONE_CELL || attribute.type_uri == AX_PHONE_DEFAULT {
                    phone = true;
                } else if let Some(f) = ProfileField::from_ax_type(&attribute.type_uri)
                    && !fields.contains(&f)
                {
                    fields.push(f);
                }
            }
        }
        let mut release = Self {
            items: vec!["identifier".to_owned()],
            ..Self::default()
        };
        if phone {
            let info = state.ctx.store.subscribers.info(impi).await;
            release.msisdn = info
                .map_err(|e| e.to_string())?
                .and_then(|i| i.msisdn)
                .map(|m| m.as_str().to_owned());
            if release.msisdn.is_some() {
                release.items.push("phone".to_owned());
            }
        }
        if !fields.is_empty() {
            let profile = state.ctx.store.profiles.profile(impi).await;
            let mut profile = profile.map_err(|e| e.to_string())?;
            for field in fields {
                if let Some(value) = profile.remove(&field) {
                    release.items.push(field.as_str().to_owned());
                    release.profile.insert(field, value);
                }
            }
        }
        Ok(release)
    }

    /// Only what `allowed` names (what the consent page showed).
    fn only(mut self, allowed: &[String]) -> Self {
        let ok = |item: &str| allowed.iter().any(|a| a == item);
        self.items.retain(|i| ok(i));
        if !ok("phone") {
            self.msisdn = None;
        }
        self.profile.retain(|f, _| ok(f.as_str()));
        self
    }
}

async fn consent_page(session: &Session, request: &CheckIdRequest, wanted: &[String]) -> Response {
    let fields = request.message().to_form_fields();
    let pending = match consent::hold(session, PENDING, fields, wanted.to_vec()).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let site = request.realm.as_str().to_owned();
    let site_host = request.realm.host().to_owned();
    let form_action = origin(request.return_to.as_deref().unwrap_or(&site));
    consent::page(
        &pending,
        site,
        site_host,
        "/openid/consent",
        form_action.as_deref(),
    )
}

fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

/// `POST /openid/consent`: the answer to the consent page.
pub async fn openid2_consent_post(
    State(state): State<AppState>,
    session: Session,
    axum::Form(form): axum::Form<ConsentForm>,
) -> Response {
    let (pending, login) = match consent::answer(&session, PENDING, &form).await {
        Ok(answered) => answered,
        Err(page) => return page,
    };
    let request = match Message::from_pairs(&pending.fields)
        .map_err(Error::from)
        .and_then(|m| CheckIdRequest::parse(m).map_err(Error::from))
    {
        Ok(r) => r,
        Err(e) => return internal(&e.to_string()),
    };
    let Some(return_to) = request.return_to.clone() else {
        return internal("pending request without return_to");
    };
    match form.decision.as_str() {
        "allow" => {
            let release = match Release::read(&state, &request, &login.impi).await {
                Ok(r) => r.only(&pending.shared),
                Err(e) => return internal(&e),
            };
            let row = ConsentRow {
                impi: login.impi.clone(),
                relying_party: relying_party(&request),
                shared: pending.shared.join(" "),
                created_at: state.ctx.clock.now(),
            };
            let now = state.ctx.clock.now();
            if let Err(e) = state
                .consents
                .put(&*state.ctx.store.consents, &row, now)
                .await
            {
                return internal(&e.to_string());
            }
            let stable = match realm_policy(&state, request.realm.as_str()).await {
                Ok(p) => p.is_some_and(|p| p.stable_identifier),
                Err(e) => return internal(&e),
            };
            let identifier = match identifier_at(&state, &login.impi, &request, stable).await {
                Ok(id) => id,
                Err(r) => return r,
            };
            assert(&state, &request, &login, &identifier, &return_to, &release).await
        }
        "deny" => indirect(&request, request.cancel(), &return_to),
        _ => pages::error(Problem::BadAnswer),
    }
}

fn setup_needed(state: &AppState, request: &CheckIdRequest, return_to: &str) -> Response {
    // The URL a user agent can visit to set up: the same request as checkid_setup.
    let mut setup = request.message().clone();
    setup.set("mode", Mode::CheckidSetup.as_str());
    let url = setup
        .to_redirect_url(&state.op.endpoint)
        .unwrap_or_else(|_| state.op.endpoint.clone());
    indirect(request, request.setup_needed(&url), return_to)
}

fn indirect_error(request: &CheckIdRequest, error: Error, return_to: &str) -> Response {
    send_indirect(request, error.indirect_response(request.version), return_to)
}

fn indirect(
    request: &CheckIdRequest,
    message: Result<Message, super::checkid::CheckIdError>,
    return_to: &str,
) -> Response {
    match message {
        Ok(m) => send_indirect(request, m, return_to),
        Err(e) => bad_request_page(&e.to_string()),
    }
}

/// A redirect, or the self-posting form when the URL would be too long (DESIGN.md §2.7).
fn send_indirect(request: &CheckIdRequest, message: Message, return_to: &str) -> Response {
    match message.to_indirect(return_to) {
        Ok(Indirect::Redirect(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => {
                let mut r = StatusCode::SEE_OTHER.into_response();
                r.headers_mut().insert(header::LOCATION, location);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(_) => pages::error(Problem::BadReturnAddress),
        },
        Ok(Indirect::FormPost { action, fields }) => {
            let form_action = origin(&action);
            let site_host = request.realm.host().to_owned();
            pages::page(StatusCode::OK, form_action.as_deref(), move |t| {
                askama::Template::render(&SelfPostPage {
                    t,
                    site_host: &site_host,
                    action: &action,
                    fields: &fields,
                })
            })
        }
        Err(e) => bad_request_page(&e.to_string()),
    }
}

/// The positive assertion (§10.1), signed with the relying party's association if it named
/// a live shared one, else with a new private one (§10.1, and `invalidate_handle` for a
/// handle we do not know).
async fn assert(
    state: &AppState,
    request: &CheckIdRequest,
    login: &Login,
    identifier: &str,
    return_to: &str,
    release: &Release,
) -> Response {
    let now = state.ctx.clock.now();
    let mut invalidate = None;
    let mut signer = None;
    if let Some(handle) = &request.assoc_handle {
        match load_association(state, handle).await {
            Ok(Some((row, t, key))) if !row.private => signer = Some((row.handle, t, key)),
            Ok(_) => invalidate = Some(handle.clone()),
            Err(e) => return internal(&e),
        }
    }
    let (handle, assoc_type, key) = match signer {
        Some((handle, t, key)) => (handle, t, Arc::new(key)),
        None => match private_association(state, now).await {
            Ok((handle, key)) => (handle, AssocType::HmacSha256, key),
            Err(e) => return internal(&e),
        },
    };
    let nonce = match signing::format_nonce(now, &new_handle()) {
        Ok(n) => n,
        Err(e) => return internal(&e.to_string()),
    };
    // OpenID 1.1 and identifier_select requests about "nobody" still need an identity.
    let claimed = match &request.identity {
        IdentityRequest::Claimed { claimed_id, .. } if claimed_id != IDENTIFIER_SELECT => {
            claimed_id.clone()
        }
        _ => identifier.to_owned(),
    };
    let mut message = match request.positive(&Assertion {
        op_endpoint: &state.op.endpoint,
        claimed_id: &claimed,
        identity: &claimed,
        response_nonce: &nonce,
        assoc_handle: &handle,
        invalidate_handle: invalidate.as_deref(),
    }) {
        Ok(m) => m,
        Err(e) => return bad_request_page(&e.to_string()),
    };
    if let Err(e) = add_extensions(request, login, release, &mut message) {
        return indirect_error(request, e, return_to);
    }
    if let Err(e) = signing::sign(&mut message, assoc_type, &key) {
        return internal(&e.to_string());
    }
    send_indirect(request, message, return_to)
}

/// The key of `handle` if it is this process's current private association (no database
/// read for the common case of a check_authentication reaching the process that signed).
fn own_private_association(state: &AppState, handle: &str) -> Option<Arc<MacKey>> {
    let now = state.ctx.clock.now();
    let current = state.op.private.lock().ok()?;
    let p = current.as_ref()?;
    (p.handle == handle && now >= p.created && now - p.created < PRIVATE_ASSOCIATION_TTL)
        .then(|| p.key.clone())
}

/// The process's current private association, made (and stored, for
/// check_authentication by any process) when there is none or it is due for replacement.
async fn private_association(
    state: &AppState,
    now: time::OffsetDateTime,
) -> Result<(String, Arc<MacKey>), String> {
    if let Ok(current) = state.op.private.lock()
        && let Some(p) = current.as_ref()
        && now - p.created < PRIVATE_ASSOCIATION_REUSE
        && now >= p.created
    {
        return Ok((p.handle.clone(), p.key.clone()));
    }
    let handle = new_handle();
    let key: Arc<MacKey> = Arc::new(Secret::new(random_vec(AssocType::HmacSha256.mac_key_len())));
    let expires_at = now + PRIVATE_ASSOCIATION_TTL;
    store_association(
        state,
        &handle,
        AssocType::HmacSha256,
        &key,
        true,
        expires_at,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Ok(mut current) = state.op.private.lock() {
        *current = Some(PrivateAssociation {
            handle: handle.clone(),
            key: key.clone(),
            created: now,
        });
    }
    Ok((handle, key))
}

/// SReg, AX and PAPE answers (DESIGN.md §2.6): what `release` holds, the MSISDN only
/// through AX. Every field is signed with the rest of the assertion.
fn add_extensions(
    request: &CheckIdRequest,
    login: &Login,
    release: &Release,
    message: &mut Message,
) -> Result<(), Error> {
    let req = request.message();
    if let Some(sreg) = SregRequest::from_message(req)
        && let Some(ext) = sreg.response(&release.profile)
    {
        message.add_extension(&ext)?;
    }
    if let Some(ax) = AxFetchRequest::from_message(req)? {
        let mut values = release
            .msisdn
            .as_deref()
            .map(ax_msisdn_values)
            .unwrap_or_default();
        for (field, value) in &release.profile {
            values.insert(field.ax_type().to_owned(), vec![value.clone()]);
        }
        message.add_extension(&ax.response(&values))?;
    }
    if let Some(pape) = PapeRequest::from_message(req)? {
        let response = PapeResponse {
            auth_policies: vec![super::ext::PAPE_PHISHING_RESISTANT.to_owned()],
            auth_time: Some(login.auth_time),
            nist_auth_level: None,
        };
        message.add_extension(&pape.response(&response)?)?;
    }
    Ok(())
}
