//! AKA (TS 33.102 §6.3) with Milenage (TS 35.206): the network side (authentication vectors,
//! re-synchronisation from AUTS) and the USIM side (AUTN check, SQN freshness per Annex C.2,
//! AUTS generation).
//!
//! Pure: no I/O, no clock. RAND and SQN come in as arguments; the caller (the HSS over the
//! store) owns SQN state and its atomic increment.

mod cipher;
mod sqn;
mod usim;
mod vector;

#[cfg(test)]
mod tests;

pub use sqn::{IND_BITS, IND_MASK, SEQ_MAX, Sqn};
pub use usim::{DELTA, UsimError, UsimResult, UsimState};
pub use vector::{AuthVector, ResyncError, generate_vector, resync_sqn_ms};

use crate::secret::Secret;
use std::fmt;

/// Authentication management field (2 octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amf(pub [u8; 2]);

impl Amf {
    /// The AMF the operator gets when it names none: bit 0 (the "separation bit", TS 33.102
    /// Annex H) set, as EPS needs it; harmless for UMTS and GBA.
    pub const DEFAULT: Amf = Amf([0x80, 0x00]);
    /// AMF used inside MAC-S for re-synchronisation (TS 33.102 §6.3.3): all zero.
    pub const RESYNC: Amf = Amf([0x00, 0x00]);
}

impl fmt::Display for Amf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The 128-bit random challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rand(pub [u8; 16]);

impl fmt::Display for Rand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autn(pub [u8; 16]);

impl fmt::Display for Autn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S, the USIM's re-synchronisation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auts(pub [u8; 14]);

impl fmt::Display for Auts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A subscriber's long-term keys, as the HSS and the USIM hold them: K and OPc.
#[derive(Debug, Clone)]
pub struct SubscriberKeys {
    pub k: Secret<[u8; 16]>,
    pub opc: Secret<[u8; 16]>,
}

impl SubscriberKeys {
    pub fn new(k: [u8; 16], opc: [u8; 16]) -> Self {
        Self {
            k: Secret::new(k),
            opc: Secret::new(opc),
        }
    }

    /// Keys from K and the operator variant OP: OPc = E_K(OP) ⊕ OP, computed once.
    pub fn from_op(k: [u8; 16], op: &Secret<[u8; 16]>) -> Self {
        let opc = cipher::opc_from_op(&k, op.expose());
        Self {
            k: Secret::new(k),
            opc,
        }
    }
}
