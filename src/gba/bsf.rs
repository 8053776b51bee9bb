//! The BSF (TS 33.220 §4.5.2): Ub bootstrapping with Digest AKA (TS 24.109 §4, RFC 3310)
//! and the Zn key service for NAFs (DESIGN.md §2.4), with their HTTP handlers.
//!
//! Challenge state lives in the database, single use and expiring, so a bootstrap begun on
//! one process can finish on another. An unknown IMPI gets a challenge of the same shape,
//! from the same code path, and then fails like a wrong RES, so IMPIs cannot be enumerated.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::Duration;

use super::digest::{
    AKAV1_MD5, AuthenticationInfo, Challenge, Credentials, Qop, ha1, response_auth,
};
use super::zn::{KeyService, LocalKeyService, ZnError};
use super::{Btid, NafId, aka_nonce, bootstrapping_info_xml, parse_aka_nonce, parse_auts};
use crate::aka::{Rand, ResyncError};
use crate::clock::Clock;
use crate::hss::{Hss, HssError};
use crate::ids::Impi;
use crate::secret::{SealContext, Sealer, Secret};
use crate::store::{BootstrapRow, ChallengeRow, Store};

/// How the BSF is set up.
#[derive(Debug, Clone)]
pub struct BsfSettings {
    /// The BSF host: the Digest realm and the B-TID domain.
    pub host: String,
    pub challenge_ttl: Duration,
    pub lifetime: Duration,
    /// Challenges per IMPI per minute; 0: no limit.
    pub limit_per_impi: u64,
    /// Requests per client address per second; 0: no limit.
    pub limit_per_ip: u64,
    /// Proxies whose X-Forwarded-For names the client.
    pub trusted_proxies: crate::web::client_ip::CidrList,
}

/// The BSF service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Bsf {
    hss: Hss,
    store: Store,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
    settings: Arc<BsfSettings>,
    ip_limiter: Arc<IpLimiter>,
    keys: LocalKeyService,
}

/// What a Ub request gets when it does not fail.
#[derive(Debug)]
pub enum UbOutcome {
    /// 401 with this `WWW-Authenticate` value.
    Challenge(String),
    /// 200 with the BootstrappingInfo body and this `Authentication-Info` value.
    Bootstrapped {
        body: String,
        authentication_info: String,
        btid: Btid,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum UbError {
    /// 400: the request cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// 403: authentication failed. One message for every cause, so a failure reveals
    /// nothing about the IMPI or which check failed.
    #[error("authentication failed")]
    Forbidden,
    /// 403: the nonce is unknown or was used already.
    #[error("the nonce is unknown or was already used; start again with an empty nonce")]
    NonceUnknown,
    /// 429
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// 500, logged and not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::store::StoreError> for UbError {
    fn from(e: crate::store::StoreError) -> Self {
        UbError::Internal(e.to_string())
    }
}

const CHALLENGES: &str = "ub_challenges";
const SESSIONS: &str = "bootstrap_sessions";

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::Rng::fill(&mut rand::rng(), &mut out[..]);
    out
}

impl Bsf {
    pub fn new(
        hss: Hss,
        store: Store,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
        settings: BsfSettings,
    ) -> Self {
        let keys = LocalKeyService::new(store.clone(), sealer.clone(), clock.clone());
        Self {
            ip_limiter: Arc::new(IpLimiter::new(settings.limit_per_ip)),
            hss,
            store,
            sealer,
            clock,
            settings: Arc::new(settings),
            keys,
        }
    }

    /// The in-process key service, for a co-located OP.
    pub fn key_service(&self) -> &LocalKeyService {
        &self.keys
    }

    /// Handles one Ub request.
    pub async fn ub(
        &self,
        method: &str,
        uri: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<UbOutcome, UbError> {
        let header = authorization.ok_or_else(|| {
            UbError::BadRequest(
                "Ub requests carry Authorization: Digest with the IMPI as username \
                 (TS 24.109 §4.4.2)"
                    .into(),
            )
        })?;
        let creds = Credentials::parse(header)
            .map_err(|e| UbError::BadRequest(format!("Authorization: {e}")))?;
        if creds.nonce.is_empty() {
            return self.challenge(&creds.username, false).await;
        }
        parse_aka_nonce(&creds.nonce)
            .map_err(|e| UbError::BadRequest(format!("nonce is not base64(RAND ‖ AUTN): {e}")))?;
        let challenge = self
            .store
            .challenges
            .take(&creds.nonce)
            .await?
            .ok_or(UbError::NonceUnknown)?;
        if challenge.expires_at < self.clock.now() {
            return self.challenge(&creds.username, true).await;
        }
        if creds.username != challenge.impi
            || creds.realm != self.settings.host
            || creds.opaque.as_deref() != Some(challenge.opaque.as_str())
            || !creds
                .algorithm
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(AKAV1_MD5))
        {
            return Err(UbError::Forbidden);
        }
        match &creds.auts {
            Some(auts) => self.resync(&creds, auts, &challenge, method, body).await,
            None => self.answer(&creds, &challenge, method, uri, body).await,
        }
    }

    /// A fresh challenge for `username`: a real AKA vector for a known IMPI, a decoy of the
    /// same shape for an unknown one.
    async fn challenge(&self, username: &str, stale: bool) -> Result<UbOutcome, UbError> {
        let impi: Impi = username
            .parse()
            .map_err(|e| UbError::BadRequest(format!("username: {e}")))?;
        self.check_impi_budget(&impi).await?;
        let rand = Rand(random());
        let (nonce, secrets_sealed) = match self.hss.vector(&impi, rand).await {
            Ok(v) => {
                let nonce = aka_nonce(&v.rand, &v.autn);
                let mut secrets = Secret::new([0u8; 40]);
                let buf = secrets.expose_mut();
                buf[..8].copy_from_slice(v.xres.expose());
                buf[8..24].copy_from_slice(v.ck.expose());
                buf[24..].copy_from_slice(v.ik.expose());
                let ctx = SealContext::new(CHALLENGES, "secrets", &nonce);
                let sealed = self.sealer.seal(ctx, secrets.expose());
                (nonce, Some(sealed))
            }
            Err(HssError::UnknownImpi(_)) => {
                // Same work as the real path (a Milenage run and a seal), then no secrets.
                let decoy = crate::aka::SubscriberKeys::new(random(), random());
                let v = crate::aka::generate_vector(
                    &decoy,
                    rand,
                    crate::aka::Sqn::default().next(),
                    crate::aka::Amf::DEFAULT,
                );
                let nonce = aka_nonce(&v.rand, &v.autn);
                let ctx = SealContext::new(CHALLENGES, "secrets", &nonce);
                let _ = self.sealer.seal(ctx, &[0u8; 40]);
                (nonce, None)
            }
            Err(e) => return Err(UbError::Internal(e.to_string())),
        };
        let opaque = hex::encode(random::<16>());
        self.store
            .challenges
            .insert(&ChallengeRow {
                nonce: nonce.clone(),
                impi: impi.to_string(),
                opaque: opaque.clone(),
                secrets_sealed,
                expires_at: self.clock.now() + self.settings.challenge_ttl,
            })
            .await?;
        Ok(UbOutcome::Challenge(
            Challenge {
                realm: self.settings.host.clone(),
                nonce,
                algorithm: Some(AKAV1_MD5.to_owned()),
                qop: vec![Qop::AuthInt],
                opaque: Some(opaque),
                stale,
            }
            .to_header(),
        ))
    }

    async fn check_impi_budget(&self, impi: &Impi) -> Result<(), UbError> {
        let limit = self.settings.limit_per_impi;
        if limit == 0 {
            return Ok(());
        }
        let now = self.clock.now().unix_timestamp();
        let window = now - now.rem_euclid(60);
        let count = self
            .store
            .rates
            .hit(&format!("ub-impi:{impi}"), window)
            .await?;
        if count > limit {
            return Err(UbError::RateLimited {
                retry_after: (window + 60 - now).unsigned_abs().max(1),
            });
        }
        Ok(())
    }

    /// XRES ‖ CK ‖ IK of a challenge; `None` for a decoy.
    fn open_secrets(&self, challenge: &ChallengeRow) -> Result<Option<Secret<[u8; 40]>>, UbError> {
        challenge
            .secrets_sealed
            .as_ref()
            .map(|sealed| {
                let ctx = SealContext::new(CHALLENGES, "secrets", &challenge.nonce);
                self.sealer
                    .open_array::<40>(ctx, sealed)
                    .map_err(|e| UbError::Internal(e.to_string()))
            })
            .transpose()
    }

    async fn answer(
        &self,
        creds: &Credentials,
        challenge: &ChallengeRow,
        method: &str,
        uri: &str,
        body: &[u8],
    ) -> Result<UbOutcome, UbError> {
        if creds.qop != Some(Qop::AuthInt) || creds.uri != uri {
            return Err(UbError::Forbidden);
        }
        let Some(secrets) = self.open_secrets(challenge)? else {
            return Err(UbError::Forbidden);
        };
        let xres = &secrets.expose()[..8];
        let ha1 = ha1(&creds.username, &creds.realm, xres);
        if !creds.response_matches(&ha1, method, body) {
            return Err(UbError::Forbidden);
        }
        let (rand, _) =
            parse_aka_nonce(&challenge.nonce).map_err(|e| UbError::Internal(e.to_string()))?;
        let btid =
            Btid::new(&rand, &self.settings.host).map_err(|e| UbError::Internal(e.to_string()))?;
        let impi: Impi = creds
            .username
            .parse()
            .map_err(|e: crate::ids::InvalidId| UbError::Internal(e.to_string()))?;
        let now = self.clock.now();
        let expires_at = now + self.settings.lifetime;
        let ks_ctx = SealContext::new(SESSIONS, "ks", btid.as_str());
        // Ks = CK ‖ IK: bytes 8..40 of the challenge secrets.
        let ks_sealed = self.sealer.seal(ks_ctx, &secrets.expose()[8..]);
        self.store
            .bootstraps
            .insert_superseding(&BootstrapRow {
                btid: btid.to_string(),
                impi,
                rand: rand.0,
                ks_sealed,
                created_at: now,
                expires_at,
            })
            .await?;
        let body = bootstrapping_info_xml(&btid, expires_at);
        let rspauth = response_auth(
            &ha1,
            &creds.nonce,
            creds.nc.unwrap_or(0),
            creds.cnonce.as_deref().unwrap_or(""),
            creds.qop,
            &creds.uri,
            body.as_bytes(),
        );
        let info = AuthenticationInfo {
            qop: creds.qop,
            rspauth,
            cnonce: creds.cnonce.clone(),
            nc: creds.nc,
            nextnonce: None,
        };
        Ok(UbOutcome::Bootstrapped {
            body,
            authentication_info: info.to_header(),
            btid,
        })
    }

    /// RFC 3310 §3.4: the USIM found the SQN stale and sent AUTS (with an empty password).
    async fn resync(
        &self,
        creds: &Credentials,
        auts: &str,
        challenge: &ChallengeRow,
        method: &str,
        body: &[u8],
    ) -> Result<UbOutcome, UbError> {
        let auts = parse_auts(auts).map_err(|e| UbError::BadRequest(format!("auts: {e}")))?;
        if challenge.secrets_sealed.is_none() {
            return Err(UbError::Forbidden);
        }
        let empty = ha1(&creds.username, &creds.realm, b"");
        if !creds.response_matches(&empty, method, body) {
            return Err(UbError::Forbidden);
        }
        let (rand, _) =
            parse_aka_nonce(&challenge.nonce).map_err(|e| UbError::Internal(e.to_string()))?;
        let impi: Impi = creds
            .username
            .parse()
            .map_err(|e: crate::ids::InvalidId| UbError::Internal(e.to_string()))?;
        match self.hss.resync(&impi, rand, &auts).await {
            Ok(_) => self.challenge(&creds.username, false).await,
            Err(HssError::Resync(ResyncError::MacS)) | Err(HssError::UnknownImpi(_)) => {
                Err(UbError::Forbidden)
            }
            Err(e) => Err(UbError::Internal(e.to_string())),
        }
    }

    /// Deletes expired challenges (after a grace period, so a late answer still gets
    /// `stale=true`) and expired sessions.
    pub async fn sweep(&self) -> Result<(u64, u64), crate::store::StoreError> {
        let now = self.clock.now();
        let challenges = self
            .store
            .challenges
            .sweep(now - Duration::minutes(10))
            .await?;
        let sessions = self.store.bootstraps.sweep(now).await?;
        Ok((challenges, sessions))
    }
}

/// Per-address request budget in one process: a fixed one-second window per address.
#[derive(Debug)]
pub struct IpLimiter {
    per_second: u64,
    windows: Mutex<HashMap<IpAddr, (u64, u64)>>,
    epoch: Instant,
}

impl IpLimiter {
    pub fn new(per_second: u64) -> Self {
        Self {
            per_second,
            windows: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// `Err(retry_after)` when `ip` has spent this second's budget.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_second == 0 {
            return Ok(());
        }
        let second = self.epoch.elapsed().as_secs();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (s, _)| *s == second);
        }
        let entry = windows.entry(ip).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_second {
            Err(1)
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

fn problem(status: StatusCode, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for UbError {
    fn into_response(self) -> Response {
        match &self {
            UbError::BadRequest(detail) => problem(StatusCode::BAD_REQUEST, detail),
            UbError::Forbidden | UbError::NonceUnknown => {
                problem(StatusCode::FORBIDDEN, &self.to_string())
            }
            UbError::RateLimited { retry_after } => {
                let mut response = problem(StatusCode::TOO_MANY_REQUESTS, &self.to_string());
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
                response
            }
            UbError::Internal(detail) => {
                tracing::error!(error = %detail, "Ub request failed");
                problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

/// `GET /` (and `POST /`) on the BSF: Ub bootstrapping.
pub async fn bsf_bootstrap_get(
    State(bsf): State<Bsf>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client = bsf.settings.trusted_proxies.client_of(peer.ip(), &headers);
    if let Err(retry_after) = bsf.ip_limiter.check(client) {
        return UbError::RateLimited { retry_after }.into_response();
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let authorization = match (values.next(), values.next()) {
        (_, Some(_)) => {
            return UbError::BadRequest("more than one Authorization header".into())
                .into_response();
        }
        (Some(v), None) => match v.to_str() {
            Ok(s) => Some(s),
            Err(_) => {
                return UbError::BadRequest("Authorization is not visible ASCII".into())
                    .into_response();
            }
        },
        (None, None) => None,
    };
    let request_uri = uri.path_and_query().map_or("/", |p| p.as_str());
    match bsf
        .ub(method.as_str(), request_uri, authorization, &body)
        .await
    {
        Ok(UbOutcome::Challenge(www_authenticate)) => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "GBA bootstrapping: answer the AKA challenge\n",
            )
                .into_response();
            match HeaderValue::from_str(&www_authenticate) {
                Ok(v) => {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    response
                }
                Err(_) => UbError::Internal("challenge header".into()).into_response(),
            }
        }
        Ok(UbOutcome::Bootstrapped {
            body,
            authentication_info,
            btid,
        }) => {
            tracing::debug!(%btid, "bootstrapped");
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, super::xml::CONTENT_TYPE)],
                body,
            )
                .into_response();
            match HeaderValue::from_str(&authentication_info) {
                Ok(v) => {
                    response
                        .headers_mut()
                        .insert(header::HeaderName::from_static("authentication-info"), v);
                    response
                }
                Err(_) => UbError::Internal("authentication-info header".into()).into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

/// The Zn request body (DESIGN.md §2.4).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ZnRequest {
    btid: String,
    naf_id: String,
}

/// `POST /zn/bootstrapping-info`: a registered NAF asks for Ks_NAF.
pub async fn bsf_zn_post(State(bsf): State<Bsf>, headers: HeaderMap, body: Bytes) -> Response {
    let unauthorized = || {
        let mut r = problem(
            StatusCode::UNAUTHORIZED,
            "Zn needs Authorization: Bearer with the NAF's secret (akaid naf add)",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let Some(secret) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    let hash = super::zn::secret_hash(secret.trim());
    let naf = match bsf.store.nafs.by_secret_hash(&hash).await {
        Ok(Some(naf)) => naf,
        Ok(None) => return unauthorized(),
        Err(e) => return ZnError::Internal(e.to_string()).into_response(),
    };
    let request: ZnRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("body: {e}")),
    };
    let naf_id = match BASE64
        .decode(request.naf_id.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|b| NafId::from_bytes(&b).map_err(|e| e.to_string()))
    {
        Ok(id) => id,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("nafId: {e}")),
    };
    if !naf_id.fqdn().eq_ignore_ascii_case(&naf.fqdn) {
        return problem(
            StatusCode::FORBIDDEN,
            &format!("NAF {} may only ask for keys of its own FQDN", naf.fqdn),
        );
    }
    let btid: Btid = match request.btid.parse() {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("btid: {e}")),
    };
    match bsf.keys.naf_key(&btid, &naf_id).await {
        Ok(key) => axum::Json(key.to_json()).into_response(),
        Err(e) => e.into_response(),
    }
}

impl IntoResponse for ZnError {
    fn into_response(self) -> Response {
        match &self {
            ZnError::UnknownBtid => problem(StatusCode::NOT_FOUND, &self.to_string()),
            ZnError::Internal(detail) | ZnError::Unavailable(detail) => {
                tracing::error!(error = %detail, "Zn request failed");
                problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
            ZnError::Refused(detail) => problem(StatusCode::FORBIDDEN, detail),
        }
    }
}
