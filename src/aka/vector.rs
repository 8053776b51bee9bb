//! The network side: authentication vectors (TS 33.102 §6.3.2) and re-synchronisation
//! (§6.3.5).

use super::cipher::Cipher;
use super::{Amf, Autn, Auts, Rand, Sqn, SubscriberKeys};
use crate::secret::Secret;

/// One authentication vector: what the BSF needs to challenge a USIM and check its answer.
#[derive(Debug, Clone)]
pub struct AuthVector {
    pub rand: Rand,
    pub autn: Autn,
    pub xres: Secret<[u8; 8]>,
    pub ck: Secret<[u8; 16]>,
    pub ik: Secret<[u8; 16]>,
    /// The SQN this vector carries (inside AUTN, concealed by AK).
    pub sqn: Sqn,
    pub amf: Amf,
}

/// Computes the vector for `sqn`. The caller has already advanced the stored SQN to `sqn`.
#[inline]
pub fn generate_vector(keys: &SubscriberKeys, rand: Rand, sqn: Sqn, amf: Amf) -> AuthVector {
    let mut m = Cipher::new(keys.k.expose(), keys.opc.expose());
    let (xres, ck, ik, ak) = m.f2345(&rand.0);
    let sqn_bytes = sqn.to_bytes();
    let mac_a = m.f1(&rand.0, &sqn_bytes, &amf.0);
    let mut autn = [0u8; 16];
    for (i, (s, a)) in sqn_bytes.iter().zip(ak).enumerate() {
        autn[i] = s ^ a;
    }
    autn[6..8].copy_from_slice(&amf.0);
    autn[8..].copy_from_slice(&mac_a);
    AuthVector {
        rand,
        autn: Autn(autn),
        xres: Secret::new(xres),
        ck: Secret::new(ck),
        ik: Secret::new(ik),
        sqn,
        amf,
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResyncError {
    /// MAC-S does not verify: the AUTS was not made by this subscriber's USIM for this RAND.
    #[error("AUTS does not verify (MAC-S mismatch) for this RAND")]
    MacS,
}

/// Verifies an AUTS for `rand` and recovers SQN_MS (TS 33.102 §6.3.5). The caller then raises
/// the stored SQN to at least SQN_MS, so the next vector is fresh.
pub fn resync_sqn_ms(keys: &SubscriberKeys, rand: Rand, auts: &Auts) -> Result<Sqn, ResyncError> {
    let mut m = Cipher::new(keys.k.expose(), keys.opc.expose());
    let ak_star = m.f5star(&rand.0);
    let mut sqn_ms = [0u8; 6];
    for (i, (c, a)) in auts.0[..6].iter().zip(ak_star).enumerate() {
        sqn_ms[i] = c ^ a;
    }
    let mac_s = m.f1star(&rand.0, &sqn_ms, &Amf::RESYNC.0);
    if subtle::ConstantTimeEq::ct_eq(&mac_s[..], &auts.0[6..]).into() {
        Ok(Sqn::from_bytes(sqn_ms))
    } else {
        Err(ResyncError::MacS)
    }
}
