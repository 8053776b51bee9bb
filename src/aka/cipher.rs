//! A thin wrapper over the `milenage` crate's state.
//!
//! The crate's `Milenage` derives `Debug` (which would print K) and keeps K, OPc and its
//! outputs in plain arrays. [`Cipher`] hides it behind a redacting `Debug` and overwrites the
//! long-term keys when dropped. Its per-call outputs are copied into [`Secret`]s by the callers.

use std::fmt;

use milenage::Milenage;

use crate::secret::Secret;

pub(super) struct Cipher(Milenage);

impl Cipher {
    #[inline]
    pub(super) fn new(k: &[u8; 16], opc: &[u8; 16]) -> Self {
        Self(Milenage::new_with_opc(*k, *opc))
    }

    /// f1: MAC-A over RAND, SQN, AMF.
    #[inline]
    pub(super) fn f1(&mut self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        self.0.f1(rand, sqn, amf)
    }

    /// f1*: MAC-S over RAND, SQN_MS, AMF (re-synchronisation).
    #[inline]
    pub(super) fn f1star(&mut self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        self.0.f1star(rand, sqn, amf)
    }

    /// f2 (RES), f3 (CK), f4 (IK), f5 (AK) in one pass.
    #[inline]
    pub(super) fn f2345(&mut self, rand: &[u8; 16]) -> ([u8; 8], [u8; 16], [u8; 16], [u8; 6]) {
        self.0.f2345(rand)
    }

    /// f5*: the anonymity key for re-synchronisation.
    #[inline]
    pub(super) fn f5star(&mut self, rand: &[u8; 16]) -> [u8; 6] {
        self.0.f5star(rand)
    }
}

impl Drop for Cipher {
    fn drop(&mut self) {
        // Overwrite K and OPc in place (they are plain arrays inside `Milenage`); black_box
        // keeps the store from being elided as dead.
        self.0 = Milenage::new_with_opc([0; 16], [0; 16]);
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

/// OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1).
pub(super) fn opc_from_op(k: &[u8; 16], op: &[u8; 16]) -> Secret<[u8; 16]> {
    let m = Cipher(Milenage::new_with_op(*k, *op));
    Secret::new(*m.0.opc())
}
