//! Zn: how a NAF gets Ks_NAF for a B-TID (DESIGN.md §2.4, modelled on TS 29.309 Nbsp_GBA and
//! TS 29.109 Bootstrapping-Info). [`KeyService`] is what the OP uses: [`LocalKeyService`]
//! when the BSF shares its process, [`HttpKeyService`] when it is elsewhere, so the OP is the
//! same code either way.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Btid, KsNaf, NafId, ks_naf};
use crate::clock::Clock;
use crate::ids::Impi;
use crate::secret::{SealContext, Sealer, Secret};
use crate::store::Store;

/// Ks_NAF and what the NAF needs to know about it.
#[derive(Debug, Clone)]
pub struct NafKey {
    pub impi: Impi,
    pub ks_naf: KsNaf,
    pub key_expiry: OffsetDateTime,
    pub created: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ZnError {
    /// The B-TID is unknown or its session has expired: the handset must bootstrap again.
    #[error("B-TID unknown or expired; the handset must bootstrap again")]
    UnknownBtid,
    /// The BSF refused the NAF (its secret or its FQDN).
    #[error("the BSF refused this NAF: {0}")]
    Refused(String),
    /// The BSF could not be reached or answered something unusable.
    #[error("the BSF is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

#[async_trait]
pub trait KeyService: Send + Sync + fmt::Debug {
    async fn naf_key(&self, btid: &Btid, naf_id: &NafId) -> Result<NafKey, ZnError>;
}

/// The SHA-256 under which a NAF's bearer secret is stored.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new NAF bearer secret: 256 random bits, base64url without padding.
pub fn new_secret() -> Secret<String> {
    let mut bytes = Secret::new([0u8; 32]);
    rand::Rng::fill(&mut rand::rng(), &mut bytes.expose_mut()[..]);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.expose()))
}

/// The Zn answer body (DESIGN.md §2.4).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZnAnswer {
    pub impi: String,
    pub ks_naf: String,
    pub key_expiry_time: String,
    pub bootstrap_info_creation_time: String,
    pub gba_type: String,
}

impl NafKey {
    pub fn to_json(&self) -> ZnAnswer {
        let time = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        ZnAnswer {
            impi: self.impi.to_string(),
            ks_naf: BASE64.encode(self.ks_naf.expose()),
            key_expiry_time: time(self.key_expiry),
            bootstrap_info_creation_time: time(self.created),
            gba_type: "GBA_ME".to_owned(),
        }
    }
}

/// The key service inside the BSF's process: looks the session up and derives Ks_NAF.
#[derive(Debug, Clone)]
pub struct LocalKeyService {
    store: Store,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
}

impl LocalKeyService {
    pub fn new(store: Store, sealer: Arc<Sealer>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            sealer,
            clock,
        }
    }
}

#[async_trait]
impl KeyService for LocalKeyService {
    async fn naf_key(&self, btid: &Btid, naf_id: &NafId) -> Result<NafKey, ZnError> {
        let session = self
            .store
            .bootstraps
            .get(btid.as_str())
            .await
            .map_err(|e| ZnError::Internal(e.to_string()))?
            .ok_or(ZnError::UnknownBtid)?;
        if session.expires_at <= self.clock.now() {
            return Err(ZnError::UnknownBtid);
        }
        let ctx = SealContext::new("bootstrap_sessions", "ks", btid.as_str());
        let ks = self
            .sealer
            .open_array::<32>(ctx, &session.ks_sealed)
            .map_err(|e| ZnError::Internal(e.to_string()))?;
        let ks_naf = ks_naf(
            &ks,
            &crate::aka::Rand(session.rand),
            session.impi.as_str(),
            naf_id,
        );
        Ok(NafKey {
            impi: session.impi,
            ks_naf,
            key_expiry: session.expires_at,
            created: session.created_at,
        })
    }
}

/// The key service of a BSF in another process, over Zn with the NAF's bearer secret.
#[derive(Clone)]
pub struct HttpKeyService {
    client: reqwest::Client,
    endpoint: url::Url,
    secret: Secret<String>,
}

impl fmt::Debug for HttpKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpKeyService")
            .field("endpoint", &self.endpoint.as_str())
            .field("secret", &self.secret)
            .finish()
    }
}

impl HttpKeyService {
    /// `bsf_url` is the BSF's base URL; the Zn endpoint is `zn/bootstrapping-info` under it.
    pub fn new(bsf_url: &url::Url, secret: Secret<String>) -> Result<Self, ZnError> {
        let endpoint = bsf_url
            .join("zn/bootstrapping-info")
            .map_err(|e| ZnError::Internal(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| ZnError::Internal(e.to_string()))?;
        Ok(Self {
            client,
            endpoint,
            secret,
        })
    }
}

#[async_trait]
impl KeyService for HttpKeyService {
    async fn naf_key(&self, btid: &Btid, naf_id: &NafId) -> Result<NafKey, ZnError> {
        let body = serde_json::json!({
            "btid": btid.as_str(),
            "nafId": BASE64.encode(naf_id.as_bytes()),
        });
        let response = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(self.secret.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| ZnError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ZnError::Unavailable(e.without_url().to_string()))?;
        match status.as_u16() {
            200 => {}
            404 => return Err(ZnError::UnknownBtid),
            401 | 403 => return Err(ZnError::Refused(problem_detail(&text))),
            other => {
                return Err(ZnError::Unavailable(format!(
                    "HTTP {other}: {}",
                    problem_detail(&text)
                )));
            }
        }
        let answer: ZnAnswer = serde_json::from_str(&text)
            .map_err(|e| ZnError::Unavailable(format!("answer: {e}")))?;
        let bad = |what: &str| ZnError::Unavailable(format!("answer: bad {what}"));
        let key = Secret::new(
            BASE64
                .decode(answer.ks_naf.as_bytes())
                .map_err(|_| bad("ksNaf"))?,
        );
        let mut ks_naf = Secret::new([0u8; 32]);
        if key.expose().len() != 32 {
            return Err(bad("ksNaf"));
        }
        ks_naf.expose_mut().copy_from_slice(key.expose());
        Ok(NafKey {
            impi: answer.impi.parse().map_err(|_| bad("impi"))?,
            ks_naf,
            key_expiry: OffsetDateTime::parse(&answer.key_expiry_time, &Rfc3339)
                .map_err(|_| bad("keyExpiryTime"))?,
            created: OffsetDateTime::parse(&answer.bootstrap_info_creation_time, &Rfc3339)
                .map_err(|_| bad("bootstrapInfoCreationTime"))?,
        })
    }
}

fn problem_detail(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect())
}
