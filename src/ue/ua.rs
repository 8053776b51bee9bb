//! The handset's GBA module on Ua (TS 24.109 §5, TS 33.222 §5.3; DESIGN.md §2.5): it finds a
//! `3GPP-bootstrapping@` Digest challenge, bootstraps over Ub when it holds no valid B-TID,
//! derives Ks_NAF for the NAF the realm names (TS 33.220 Annex B, Ua protocol id `01 00 00 00
//! 02`: Digest over plain HTTP, Annex H.3) and answers with username B-TID and password
//! base64(Ks_NAF). `ue login`'s browser and `ue proxy` both answer challenges through it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use time::OffsetDateTime;
use url::Url;

use super::ub::{Bootstrapped, Handset, UbClient, UeError};
use crate::gba::digest::{Challenge, Credentials, Qop, ha1};
use crate::gba::{Btid, NafId, UaProtocolId, ks_naf};
use crate::secret::Secret;

/// The realm prefix of a GBA challenge (TS 33.222 §5.3, TS 24.109 §5.2.1).
pub const GBA_REALM: &str = "3GPP-bootstrapping@";
/// Nonces whose count is remembered at most; the oldest are forgotten all at once past it
/// (a NAF's nonce lives a minute, and each is answered once or twice).
const MAX_NONCES: usize = 1024;

/// The GBA Digest challenge one `WWW-Authenticate` value holds, if it is one.
pub fn parse_gba_challenge(value: &HeaderValue) -> Option<Challenge> {
    Challenge::parse(value.to_str().ok()?)
        .ok()
        .filter(|c| c.realm.starts_with(GBA_REALM))
}

/// The first GBA Digest challenge among a response's `WWW-Authenticate` headers.
pub fn gba_challenge(headers: &HeaderMap) -> Option<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .find_map(parse_gba_challenge)
}

/// An answer to a Ua challenge.
#[derive(Debug)]
pub struct UaAnswer {
    /// The `Authorization` header value; a password equivalent for this nonce.
    pub authorization: Secret<String>,
    /// The B-TID it was made with (to forget it if the NAF does not know it).
    pub btid: Btid,
    /// Whether the module bootstrapped over Ub to make it.
    pub bootstrapped: bool,
}

/// The GBA module: the handset, its current bootstrap and the nonce-counts in use.
#[derive(Debug)]
pub struct GbaModule {
    ub: UbClient,
    bsf: Url,
    pub handset: Handset,
    bootstrap: Option<Bootstrapped>,
    nonce_counts: HashMap<String, u32>,
}

impl GbaModule {
    pub fn new(bsf: Url, handset: Handset) -> Result<Self, UeError> {
        Ok(Self {
            ub: UbClient::new()?,
            bsf,
            handset,
            bootstrap: None,
            nonce_counts: HashMap::new(),
        })
    }

    /// Drops the bootstrap made under `btid` (the NAF did not accept it: the BSF has
    /// forgotten or expired it), so the next answer bootstraps again. A newer bootstrap, made
    /// meanwhile for another request, is kept.
    pub fn forget(&mut self, btid: &Btid) {
        if self.bootstrap.as_ref().is_some_and(|b| &b.btid == btid) {
            self.bootstrap = None;
        }
    }

    /// Answers `challenge`, which came back for `method url` with request body `body`;
    /// bootstraps first if the module holds no B-TID valid at `now`.
    pub async fn answer(
        &mut self,
        challenge: &Challenge,
        method: &str,
        url: &Url,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<UaAnswer, UeError> {
        // Checked before bootstrapping: a key for another host than the one asked is of no use
        // and would hand that host's Ks_NAF to whoever sent the challenge.
        let host = challenge.realm.trim_start_matches(GBA_REALM);
        if Some(host) != url.host_str() {
            return Err(UeError::Protocol(format!(
                "the challenge's realm names {host}, not the server asked ({})",
                url.host_str().unwrap_or("")
            )));
        }
        let naf_id = NafId::new(host, UaProtocolId::HTTP_DIGEST)
            .map_err(|e| UeError::Protocol(e.to_string()))?;
        let mut bootstrapped = false;
        let bootstrap = match self.bootstrap.take() {
            Some(b) if b.lifetime > now => b,
            _ => {
                bootstrapped = true;
                self.ub.bootstrap(&self.bsf, &mut self.handset).await?
            }
        };
        let key = ks_naf(
            &bootstrap.ks,
            &bootstrap.rand,
            self.handset.impi.as_str(),
            &naf_id,
        );
        let password = zeroize::Zeroizing::new(B64.encode(key.expose()));
        let username = bootstrap.btid.to_string();
        let ha1 = ha1(&username, &challenge.realm, password.as_bytes());
        let qop = if challenge.qop.contains(&Qop::AuthInt) {
            Qop::AuthInt
        } else {
            Qop::Auth
        };
        let mut uri = url.path().to_owned();
        if let Some(q) = url.query() {
            uri.push('?');
            uri.push_str(q);
        }
        let mut creds = Credentials {
            username,
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri,
            response: String::new(),
            algorithm: challenge.algorithm.clone(),
            cnonce: Some(hex::encode(rand::random::<[u8; 8]>())),
            nc: Some(self.next_count(&challenge.nonce)),
            qop: Some(qop),
            opaque: challenge.opaque.clone(),
            auts: None,
        };
        creds.response = creds.expected_response(&ha1, method, body);
        let btid = bootstrap.btid.clone();
        self.bootstrap = Some(bootstrap);
        Ok(UaAnswer {
            authorization: Secret::new(creds.to_header()),
            btid,
            bootstrapped,
        })
    }

    /// The nonce-count for the next answer to `nonce` (RFC 7616 §3.4: one more each time
    /// the same nonce is answered).
    fn next_count(&mut self, nonce: &str) -> u32 {
        if self.nonce_counts.len() >= MAX_NONCES && !self.nonce_counts.contains_key(nonce) {
            self.nonce_counts.clear();
        }
        let count = self.nonce_counts.entry(nonce.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gba_realm_is_a_gba_challenge() {
        let mut h = HeaderMap::new();
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="x""#),
        );
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Digest realm="intranet", nonce="n1", qop="auth""#),
        );
        assert_eq!(gba_challenge(&h), None);
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Digest realm="3GPP-bootstrapping@op.example", nonce="n2", qop="auth-int,auth""#,
            ),
        );
        let c = gba_challenge(&h).unwrap();
        assert_eq!(c.nonce, "n2");
    }
}
