//! Ua: the OP, as a NAF, authenticates the handset with HTTP Digest keyed by Ks_NAF
//! (TS 33.222 §5.3, TS 24.109 §5; DESIGN.md §2.5). Used by every protocol that needs a login.
//!
//! The challenge's realm is `3GPP-bootstrapping@<OP host>`; the handset answers with the
//! B-TID as username and base64(Ks_NAF) as password. Ks_NAF comes from the key service
//! (in process, or the BSF over Zn) and is cached until it expires. Nonces live in the
//! database, so the answer may reach another process than the challenge came from; each
//! nonce-count is accepted once, and an expired nonce is answered with `stale=true`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use time::{Duration, OffsetDateTime};
use tower_sessions::Session;

use crate::clock::Clock;
use crate::gba::digest::{Challenge, Credentials, Qop, ha1};
use crate::gba::zn::{KeyService, NafKey, ZnError};
use crate::gba::{Btid, NafId, UaProtocolId};
use crate::store::{NonceUse, Store};
use crate::web::pages::{self, Problem, SimNeededPage, UaChallengePage};
use crate::web::session::{self, Login};

/// The product token a GBA-capable user agent sends (TS 24.109 §5.2.1).
pub const GBA_TOKEN: &str = "3gpp-gba";
/// How long a Ua nonce may be answered.
const NONCE_TTL: Duration = Duration::seconds(60);
/// Cached keys at most; expired ones are dropped first when it is full.
const CACHE_MAX: usize = 65_536;

/// The OP's side of Ua; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ua {
    realm: String,
    naf_id: NafId,
    keys: Arc<dyn KeyService>,
    store: Store,
    clock: Arc<dyn Clock>,
    cache: Arc<Mutex<HashMap<String, NafKey>>>,
}

impl Ua {
    /// `op_host` is the host of `public_url`: the NAF FQDN and the realm's suffix.
    pub fn new(
        op_host: &str,
        keys: Arc<dyn KeyService>,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, crate::gba::NafIdError> {
        Ok(Self {
            realm: format!("3GPP-bootstrapping@{op_host}"),
            naf_id: NafId::new(op_host, UaProtocolId::HTTP_DIGEST)?,
            keys,
            store,
            clock,
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The login for this request: the session's if it is fresh enough (`max_age`), else
    /// one made now from the request's Digest answer; otherwise what to answer instead.
    /// `site` names the relying party on the page a non-GBA browser gets (`None`: the
    /// subscriber's own account page).
    pub async fn login(
        &self,
        session: &Session,
        request: &UaRequest<'_>,
        max_age: Option<Duration>,
        site: Option<&str>,
    ) -> Result<Login, Response> {
        let now = self.clock.now();
        if let Some(login) = session::login(session).await {
            let fresh = max_age.is_none_or(|age| now - login.auth_time <= age);
            if fresh {
                return Ok(login);
            }
        }
        let authorization = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.trim_start().to_ascii_lowercase().starts_with("digest "));
        if let Some(authorization) = authorization {
            match self.verify(authorization, request, now).await {
                Verified::Login(login) => {
                    if let Err(e) = session::start(session, &login).await {
                        tracing::error!(error = %e, "cannot start a login session");
                        return Err(unavailable());
                    }
                    tracing::info!(btid = %login.btid, "Ua login");
                    return Ok(login);
                }
                Verified::Challenge { stale } => return Err(self.challenge(stale).await),
                Verified::Unavailable => return Err(unavailable()),
            }
        }
        if can_do_gba(request.headers) {
            Err(self.challenge(false).await)
        } else {
            let site = site.map(str::to_owned);
            Err(pages::page(StatusCode::OK, None, move |t| {
                askama::Template::render(&SimNeededPage {
                    t,
                    site: site.as_deref(),
                })
            }))
        }
    }

    /// A 401 with a fresh nonce and the page that explains it.
    async fn challenge(&self, stale: bool) -> Response {
        let nonce = random_b64::<24>();
        let expires = self.clock.now() + NONCE_TTL;
        if let Err(e) = self.store.ua_nonces.issue(&nonce, expires).await {
            tracing::error!(error = %e, "cannot store a Ua nonce");
            return unavailable();
        }
        let header = Challenge {
            realm: self.realm.clone(),
            nonce,
            algorithm: Some("MD5".into()),
            qop: vec![Qop::AuthInt, Qop::Auth],
            opaque: Some(random_b64::<12>()),
            stale,
        }
        .to_header();
        let mut response = pages::page(StatusCode::UNAUTHORIZED, None, |t| {
            askama::Template::render(&UaChallengePage { t })
        });
        if let Ok(value) = HeaderValue::from_str(&header) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    async fn verify(
        &self,
        authorization: &str,
        request: &UaRequest<'_>,
        now: OffsetDateTime,
    ) -> Verified {
        let fresh = Verified::Challenge { stale: false };
        let creds = match Credentials::parse(authorization) {
            Ok(c) => c,
            Err(e) => {
                tracing::info!(error = %e, "Ua: unusable Authorization");
                return fresh;
            }
        };
        let algorithm_ok = creds
            .algorithm
            .as_deref()
            .is_none_or(|a| a.eq_ignore_ascii_case("MD5"));
        if creds.realm != self.realm
            || !algorithm_ok
            || creds.qop.is_none()
            || creds.uri != request.uri
        {
            tracing::info!(
                realm = %creds.realm,
                uri = %creds.uri,
                request_uri = %request.uri,
                "Ua: the answer is not for this challenge or request"
            );
            return fresh;
        }
        let Ok(btid) = creds.username.parse::<Btid>() else {
            tracing::info!("Ua: the username is not a B-TID");
            return fresh;
        };
        let key = match self.naf_key(&btid, now).await {
            Ok(key) => key,
            Err(ZnError::UnknownBtid) => {
                tracing::info!(btid = %btid, "Ua: B-TID unknown or expired");
                return fresh;
            }
            Err(e) => {
                tracing::error!(error = %e, "Ua: no Ks_NAF from the key service");
                return Verified::Unavailable;
            }
        };
        let password = zeroize::Zeroizing::new(B64.encode(key.ks_naf.expose()));
        let ha1 = ha1(&creds.username, &creds.realm, password.as_bytes());
        if !creds.response_matches(&ha1, request.method, request.body) {
            tracing::info!(btid = %btid, "Ua: wrong digest response");
            return fresh;
        }
        // Counted only once the response is right, so a guesser cannot burn a nonce.
        match self
            .store
            .ua_nonces
            .use_count(&creds.nonce, creds.nc.unwrap_or(0), now)
            .await
        {
            Ok(NonceUse::Accepted) => Verified::Login(Login {
                impi: key.impi,
                btid: btid.to_string(),
                auth_time: now,
            }),
            Ok(NonceUse::Expired) => Verified::Challenge { stale: true },
            Ok(NonceUse::Replayed | NonceUse::Unknown) => fresh,
            Err(e) => {
                tracing::error!(error = %e, "Ua: nonce store");
                Verified::Unavailable
            }
        }
    }

    async fn naf_key(&self, btid: &Btid, now: OffsetDateTime) -> Result<NafKey, ZnError> {
        if let Ok(cache) = self.cache.lock()
            && let Some(key) = cache.get(btid.as_str())
            && key.key_expiry > now
        {
            return Ok(key.clone());
        }
        let key = self.keys.naf_key(btid, &self.naf_id).await?;
        if key.key_expiry <= now {
            return Err(ZnError::UnknownBtid);
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, k| k.key_expiry > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(btid.as_str().to_owned(), key.clone());
        }
        Ok(key)
    }
}

enum Verified {
    Login(Login),
    Challenge { stale: bool },
    Unavailable,
}

/// What Digest needs of the request: method, request-target as sent, headers and body.
#[derive(Debug)]
pub struct UaRequest<'a> {
    pub method: &'a str,
    /// Path and query exactly as on the request line (the Digest `uri`).
    pub uri: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Whether the user agent says it has a GBA module (the `3gpp-gba` product token).
pub fn can_do_gba(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::USER_AGENT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|ua| {
            ua.split_ascii_whitespace()
                .any(|token| token.split('/').next() == Some(GBA_TOKEN))
        })
}

/// `N` random bytes, base64url without padding: nonces, tokens, handles.
pub(crate) fn random_b64<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unavailable() -> Response {
    pages::error(Problem::Unavailable)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_gba_token_is_a_product_token() {
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 3gpp-gba akaid/0.1"),
        );
        assert!(can_do_gba(&h));
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 no-3gpp-gba-here"),
        );
        assert!(!can_do_gba(&h));
        h.insert(header::USER_AGENT, HeaderValue::from_static("3gpp-gba/1.0"));
        assert!(can_do_gba(&h));
    }
}
