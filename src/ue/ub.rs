//! The handset's side of Ub (TS 24.109 §4.4, RFC 3310): the first request with an empty
//! nonce, the USIM's check of AUTN, the Digest AKA answer with RES as the password, the check
//! of the BSF's `rspauth` (mutual authentication), and re-synchronisation with AUTS.

use time::OffsetDateTime;
use url::Url;

use crate::aka::{Rand, SubscriberKeys, UsimError, UsimState};
use crate::gba::digest::{
    AKAV1_MD5, AuthenticationInfo, Challenge, Credentials, Qop, ha1, request_digest, response_auth,
};
use crate::gba::{Btid, Ks, encode_auts, ks, parse_aka_nonce, parse_bootstrapping_info};
use crate::ids::Impi;

/// A handset: its identity, its USIM's keys and SQN state.
#[derive(Debug)]
pub struct Handset {
    pub impi: Impi,
    pub keys: SubscriberKeys,
    pub usim: UsimState,
}

/// A completed bootstrap: what the handset keeps for Ua.
#[derive(Debug)]
pub struct Bootstrapped {
    pub btid: Btid,
    pub lifetime: OffsetDateTime,
    pub rand: Rand,
    pub ks: Ks,
}

/// What answering a challenge led to.
#[derive(Debug)]
pub enum Answered {
    Bootstrapped(Bootstrapped),
    /// A new challenge: after a re-synchronisation, or because the old one had gone stale.
    Challenged(Challenge),
}

#[derive(Debug, thiserror::Error)]
pub enum UeError {
    #[error("cannot reach the BSF: {0}")]
    Http(String),
    #[error("the BSF answered HTTP {status}: {detail}")]
    Refused { status: u16, detail: String },
    #[error("the BSF's answer breaks the protocol: {0}")]
    Protocol(String),
    #[error("the USIM refused the network: AUTN does not verify (MAC failure)")]
    NotAuthentic,
    #[error("the BSF still sends stale vectors after a re-synchronisation")]
    ResyncDidNotHelp,
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    hex::encode(bytes)
}

/// An HTTP client for Ub; cheap to clone.
#[derive(Debug, Clone)]
pub struct UbClient {
    http: reqwest::Client,
}

impl UbClient {
    pub fn new() -> Result<Self, UeError> {
        let http = reqwest::Client::builder()
            .user_agent(super::USER_AGENT)
            .timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| UeError::Http(e.to_string()))?;
        Ok(Self { http })
    }

    fn realm(bsf: &Url) -> String {
        bsf.host_str().unwrap_or_default().to_owned()
    }

    async fn send(
        &self,
        bsf: &Url,
        creds: &Credentials,
    ) -> Result<(u16, reqwest::header::HeaderMap, String), UeError> {
        let response = self
            .http
            .get(bsf.clone())
            .header(reqwest::header::AUTHORIZATION, creds.to_header())
            .send()
            .await
            .map_err(|e| UeError::Http(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|e| UeError::Http(e.without_url().to_string()))?;
        Ok((status, headers, body))
    }

    fn challenge_from(
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &str,
    ) -> Result<Challenge, UeError> {
        if status != 401 {
            return Err(refused(status, body));
        }
        let header = headers
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| UeError::Protocol("401 without WWW-Authenticate".into()))?;
        let challenge = Challenge::parse(header).map_err(|e| UeError::Protocol(e.to_string()))?;
        if !challenge
            .algorithm
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(AKAV1_MD5))
        {
            return Err(UeError::Protocol("the challenge is not AKAv1-MD5".into()));
        }
        Ok(challenge)
    }

    /// The first Ub request: asks for a challenge for `impi`.
    pub async fn challenge(&self, bsf: &Url, impi: &Impi) -> Result<Challenge, UeError> {
        let creds = Credentials {
            username: impi.to_string(),
            realm: Self::realm(bsf),
            nonce: String::new(),
            uri: bsf.path().to_owned(),
            response: String::new(),
            algorithm: None,
            cnonce: None,
            nc: None,
            qop: None,
            opaque: None,
            auts: None,
        };
        let (status, headers, body) = self.send(bsf, &creds).await?;
        Self::challenge_from(status, &headers, &body)
    }

    /// Answers `challenge` with the USIM. The URL may name another process of the BSF than
    /// the one that issued the challenge.
    pub async fn answer(
        &self,
        bsf: &Url,
        handset: &mut Handset,
        challenge: &Challenge,
    ) -> Result<Answered, UeError> {
        let (rand, autn) = parse_aka_nonce(&challenge.nonce)
            .map_err(|e| UeError::Protocol(format!("nonce: {e}")))?;
        let uri = bsf.path().to_owned();
        let cnonce = random_hex::<16>();
        let mut creds = Credentials {
            username: handset.impi.to_string(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.clone(),
            response: String::new(),
            algorithm: Some(AKAV1_MD5.to_owned()),
            cnonce: Some(cnonce.clone()),
            nc: Some(1),
            qop: Some(Qop::AuthInt),
            opaque: challenge.opaque.clone(),
            auts: None,
        };
        let (password, result) = match handset.usim.authenticate(&handset.keys, rand, &autn) {
            Ok(result) => (result.res.expose().to_vec(), Some(result)),
            Err(UsimError::SyncFailure(auts)) => {
                creds.auts = Some(encode_auts(&auts));
                (Vec::new(), None)
            }
            Err(UsimError::MacFailure) => return Err(UeError::NotAuthentic),
        };
        let ha1 = ha1(&creds.username, &creds.realm, &password);
        creds.response =
            request_digest(&ha1, &creds.nonce, 1, &cnonce, creds.qop, "GET", &uri, b"");
        let (status, headers, body) = self.send(bsf, &creds).await?;
        let Some(result) = result else {
            return Self::challenge_from(status, &headers, &body).map(Answered::Challenged);
        };
        if status == 401 {
            return Self::challenge_from(status, &headers, &body).map(Answered::Challenged);
        }
        if status != 200 {
            return Err(refused(status, &body));
        }
        // Mutual authentication: only the holder of XRES can compute rspauth over the body.
        let info = headers
            .get("authentication-info")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| UeError::Protocol("200 without Authentication-Info".into()))
            .and_then(|h| {
                AuthenticationInfo::parse(h).map_err(|e| UeError::Protocol(e.to_string()))
            })?;
        let expected = response_auth(
            &ha1,
            &creds.nonce,
            1,
            &cnonce,
            creds.qop,
            &uri,
            body.as_bytes(),
        );
        if !crate::gba::digest_eq(&expected, &info.rspauth) {
            return Err(UeError::Protocol(
                "rspauth does not verify: the BSF is not authentic".into(),
            ));
        }
        let (btid, lifetime) =
            parse_bootstrapping_info(&body).map_err(|e| UeError::Protocol(e.to_string()))?;
        if btid.rand() != rand {
            return Err(UeError::Protocol(
                "the B-TID does not carry this RAND".into(),
            ));
        }
        Ok(Answered::Bootstrapped(Bootstrapped {
            btid,
            lifetime,
            rand,
            ks: ks(&result.ck, &result.ik),
        }))
    }

    /// A whole bootstrap, with at most one re-synchronisation round.
    pub async fn bootstrap(
        &self,
        bsf: &Url,
        handset: &mut Handset,
    ) -> Result<Bootstrapped, UeError> {
        let mut challenge = self.challenge(bsf, &handset.impi).await?;
        for _ in 0..2 {
            match self.answer(bsf, handset, &challenge).await? {
                Answered::Bootstrapped(done) => return Ok(done),
                Answered::Challenged(next) => challenge = next,
            }
        }
        Err(UeError::ResyncDidNotHelp)
    }
}

fn refused(status: u16, body: &str) -> UeError {
    let detail = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect());
    UeError::Refused { status, detail }
}
