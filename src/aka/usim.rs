//! The USIM side of AKA: AUTN verification, SQN freshness by the SEQ_MS array
//! (TS 33.102 Annex C.2 with C.3.2's 5-bit IND), and AUTS generation on a sync failure.
//!
//! Used by the software handset (`akaid ue`) and by tests as the judge of what a real USIM
//! would accept.

use serde::{Deserialize, Serialize};

use super::cipher::Cipher;
use super::{Amf, Autn, Auts, IND_BITS, Rand, Sqn, SubscriberKeys};
use crate::secret::Secret;

/// Δ of Annex C.2.2: a SEQ more than this far ahead of the highest accepted SEQ is refused,
/// which stops an attacker from wrapping the counter.
pub const DELTA: u64 = 1 << 28;

const SLOTS: usize = 1 << IND_BITS;

/// What a USIM remembers between authentications; a real USIM keeps it in EF_SQN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsimState {
    /// SEQ_MS(i): the highest SEQ accepted with IND = i.
    seq_ms: Vec<u64>,
    /// The highest SQN (SEQ ‖ IND) accepted anywhere in the array; what AUTS reports.
    highest: u64,
}

impl Default for UsimState {
    fn default() -> Self {
        Self {
            seq_ms: vec![0; SLOTS],
            highest: 0,
        }
    }
}

/// A successful authentication: RES for the network, CK and IK for the keys.
#[derive(Debug)]
pub struct UsimResult {
    pub res: Secret<[u8; 8]>,
    pub ck: Secret<[u8; 16]>,
    pub ik: Secret<[u8; 16]>,
    pub sqn: Sqn,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsimError {
    /// MAC-A does not verify: the network is not genuine (no AUTS is sent, §6.3.3).
    #[error("AUTN does not verify (MAC failure): the network is not authentic")]
    MacFailure,
    /// SQN not fresh: the USIM answers with AUTS so the HSS can resynchronise.
    #[error("SQN is not fresh (synchronisation failure); AUTS {0}")]
    SyncFailure(Auts),
}

impl UsimState {
    /// A USIM in use up to `sqn`: every slot holds its SEQ, as after the last 32
    /// authentications, so no SQN at or below `sqn` is fresh for it. Models a card that is
    /// ahead of the HSS (say, after the HSS was restored from a backup).
    pub fn at(sqn: Sqn) -> Self {
        Self {
            seq_ms: vec![sqn.seq(); SLOTS],
            highest: sqn.value(),
        }
    }

    /// The highest SQN accepted so far (SQN_MS).
    pub fn highest(&self) -> Sqn {
        Sqn::new(self.highest).unwrap_or_default()
    }

    /// The state read from a file may be damaged; it must have one slot per IND value.
    pub fn is_well_formed(&self) -> bool {
        self.seq_ms.len() == SLOTS && Sqn::new(self.highest).is_some()
    }

    fn highest_seq(&self) -> u64 {
        self.seq_ms.iter().copied().max().unwrap_or(0)
    }

    /// Runs the USIM's AUTHENTICATE: checks MAC-A, then SQN freshness; updates the array only
    /// on success.
    pub fn authenticate(
        &mut self,
        keys: &SubscriberKeys,
        rand: Rand,
        autn: &Autn,
    ) -> Result<UsimResult, UsimError> {
        let mut m = Cipher::new(keys.k.expose(), keys.opc.expose());
        let (res, ck, ik, ak) = m.f2345(&rand.0);
        let mut sqn_bytes = [0u8; 6];
        for (i, (c, a)) in autn.0[..6].iter().zip(ak).enumerate() {
            sqn_bytes[i] = c ^ a;
        }
        let amf = [autn.0[6], autn.0[7]];
        let xmac = m.f1(&rand.0, &sqn_bytes, &amf);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&xmac[..], &autn.0[8..])) {
            return Err(UsimError::MacFailure);
        }
        let sqn = Sqn::from_bytes(sqn_bytes);
        let slot = usize::from(sqn.ind());
        let fresh =
            sqn.seq() > self.seq_ms[slot] && sqn.seq().saturating_sub(self.highest_seq()) <= DELTA;
        if !fresh {
            return Err(UsimError::SyncFailure(self.auts(&mut m, rand)));
        }
        self.seq_ms[slot] = sqn.seq();
        self.highest = self.highest.max(sqn.value());
        Ok(UsimResult {
            res: Secret::new(res),
            ck: Secret::new(ck),
            ik: Secret::new(ik),
            sqn,
        })
    }

    /// AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S with AMF = 0000, SQN_MS the highest accepted SQN.
    fn auts(&self, m: &mut Cipher, rand: Rand) -> Auts {
        let sqn_ms = self.highest().to_bytes();
        let ak_star = m.f5star(&rand.0);
        let mac_s = m.f1star(&rand.0, &sqn_ms, &Amf::RESYNC.0);
        let mut auts = [0u8; 14];
        for (i, (s, a)) in sqn_ms.iter().zip(ak_star).enumerate() {
            auts[i] = s ^ a;
        }
        auts[6..].copy_from_slice(&mac_s);
        Auts(auts)
    }
}
