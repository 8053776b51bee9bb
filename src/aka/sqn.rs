//! The sequence number SQN = SEQ ‖ IND (TS 33.102 Annex C.3.2, IND of 5 bits).

use std::fmt;

/// Bits of IND, the low part of SQN that selects a slot of the USIM's SEQ_MS array.
pub const IND_BITS: u32 = 5;
pub const IND_MASK: u64 = (1 << IND_BITS) - 1;
/// SQN is 48 bits; SEQ is what remains above IND.
pub const SQN_MASK: u64 = (1 << 48) - 1;
pub const SEQ_MAX: u64 = SQN_MASK >> IND_BITS;

/// A 48-bit sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sqn(u64);

impl Sqn {
    /// `None` when the value does not fit in 48 bits.
    pub fn new(value: u64) -> Option<Self> {
        (value <= SQN_MASK).then_some(Self(value))
    }

    pub fn from_parts(seq: u64, ind: u8) -> Option<Self> {
        if seq > SEQ_MAX || u64::from(ind) > IND_MASK {
            return None;
        }
        Some(Self((seq << IND_BITS) | u64::from(ind)))
    }

    pub fn from_bytes(bytes: [u8; 6]) -> Self {
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(&bytes);
        Self(u64::from_be_bytes(wide))
    }

    /// Parses 12 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 12 {
            return None;
        }
        let mut bytes = [0u8; 6];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self::from_bytes(bytes))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    pub fn seq(self) -> u64 {
        self.0 >> IND_BITS
    }

    pub fn ind(self) -> u8 {
        // IND_MASK keeps 5 bits, so the cast cannot truncate.
        (self.0 & IND_MASK) as u8
    }

    pub fn to_bytes(self) -> [u8; 6] {
        let wide = self.0.to_be_bytes();
        let mut out = [0u8; 6];
        out.copy_from_slice(&wide[2..]);
        out
    }

    /// The SQN of the next vector (DESIGN.md §2.1): SEQ + 1, IND = (IND + 1) mod 32.
    /// The store performs the same step in SQL; this is its reference and its test oracle.
    pub fn next(self) -> Self {
        let seq = (self.seq() + 1) & SEQ_MAX;
        let ind = (self.0 + 1) & IND_MASK;
        Self((seq << IND_BITS) | ind)
    }
}

impl fmt::Display for Sqn {
    /// 12 hex digits, as `hss vector --json` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_advances_seq_and_rotates_ind() {
        let s = Sqn::from_parts(7, 3).unwrap();
        assert_eq!(s.next(), Sqn::from_parts(8, 4).unwrap());
        let s = Sqn::from_parts(7, 31).unwrap();
        assert_eq!(s.next(), Sqn::from_parts(8, 0).unwrap());
        assert_eq!(Sqn::default().next().value(), 0b100001);
    }

    #[test]
    fn bytes_and_hex_round_trip() {
        let s = Sqn::from_hex("ff9bb4d0b607").unwrap();
        assert_eq!(s.to_bytes(), [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07]);
        assert_eq!(s.to_string(), "ff9bb4d0b607");
        assert_eq!(Sqn::from_bytes(s.to_bytes()), s);
        assert!(Sqn::from_hex("ff9bb4d0b6").is_none());
        assert!(Sqn::new(1 << 48).is_none());
    }

    #[test]
    fn seq_wraps_at_its_width() {
        let top = Sqn::from_parts(SEQ_MAX, 31).unwrap();
        assert_eq!(top.next(), Sqn::from_parts(0, 0).unwrap());
    }
}
