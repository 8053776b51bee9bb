//! GBA key derivation: Ks = CK ‖ IK (TS 33.220 §4.5.2) and Ks_NAF with the generic key
//! derivation function of TS 33.220 Annex B (B.2, with FC = 0x01 and P0 = "gba-me" for GBA_ME),
//! NAF_Id = NAF FQDN ‖ Ua security protocol identifier (§4.5.2, Annex H).

use std::fmt;
use std::net::Ipv4Addr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

use crate::aka::Rand;
use crate::secret::Secret;

/// Ks = CK ‖ IK, the bootstrapping key.
pub type Ks = Secret<[u8; 32]>;
/// Ks_(ext)_NAF, the key a NAF shares with the handset.
pub type KsNaf = Secret<[u8; 32]>;

/// FC for the derivation of Ks_(ext)_NAF (TS 33.220 Annex B.3).
const FC_KS_NAF: u8 = 0x01;
/// P0 for GBA_ME (TS 33.220 §4.5.2).
const GBA_ME: &str = "gba-me";

/// Ua security protocol identifier (TS 33.220 Annex H.2/H.3): five octets, the first the
/// organisation (0x01 = 3GPP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UaProtocolId(pub [u8; 5]);

impl UaProtocolId {
    /// HTTP Digest authentication over plain HTTP, TS 24.109 (Annex H.3).
    pub const HTTP_DIGEST: Self = Self([0x01, 0x00, 0x00, 0x00, 0x02]);

    /// Shared-key UE authentication inside server-authenticated TLS (TS 33.222 §5.3, also
    /// §5.4): `01 00 01 yy zz`, where yy zz is the negotiated TLS cipher suite (Annex H.3).
    pub fn https_digest(cipher_suite: u16) -> Self {
        let [yy, zz] = cipher_suite.to_be_bytes();
        Self([0x01, 0x00, 0x01, yy, zz])
    }

    pub fn as_bytes(&self) -> &[u8; 5] {
        &self.0
    }
}

impl fmt::Display for UaProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a NAF_Id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NafIdError {
    #[error("NAF_Id is {0} octets; it needs an FQDN and the 5-octet Ua security protocol id")]
    TooShort(usize),
    #[error("NAF FQDN is not a valid host name: {0}")]
    BadFqdn(String),
}

/// NAF_Id = NAF FQDN ‖ Ua security protocol identifier (TS 33.220 §4.5.2).
///
/// The FQDN is kept lower-case: it is hashed into Ks_NAF, so "NAF.example" and "naf.example"
/// must not give two keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NafId {
    fqdn: String,
    protocol: UaProtocolId,
    bytes: Vec<u8>,
}

impl NafId {
    /// The NAF_Id for a NAF host name (lower-cased here) and Ua protocol.
    pub fn new(fqdn: &str, protocol: UaProtocolId) -> Result<Self, NafIdError> {
        let fqdn = fqdn.to_ascii_lowercase();
        check_fqdn(&fqdn)?;
        let mut bytes = Vec::with_capacity(fqdn.len() + 5);
        bytes.extend_from_slice(fqdn.as_bytes());
        bytes.extend_from_slice(&protocol.0);
        Ok(Self {
            fqdn,
            protocol,
            bytes,
        })
    }

    /// Parses the octets of a NAF_Id, as Zn carries them. The FQDN must already be
    /// lower-case: the NAF asks for the key of exactly these octets, so they are not altered.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, NafIdError> {
        if bytes.len() < 6 {
            return Err(NafIdError::TooShort(bytes.len()));
        }
        let (fqdn, protocol) = bytes.split_at(bytes.len() - 5);
        let fqdn =
            std::str::from_utf8(fqdn).map_err(|_| NafIdError::BadFqdn("it is not ASCII".into()))?;
        if fqdn.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(NafIdError::BadFqdn("it is not lower-case".into()));
        }
        let mut id = [0u8; 5];
        id.copy_from_slice(protocol);
        Self::new(fqdn, UaProtocolId(id))
    }

    /// The NAF's host name, lower-case.
    pub fn fqdn(&self) -> &str {
        &self.fqdn
    }

    pub fn protocol(&self) -> UaProtocolId {
        self.protocol
    }

    /// FQDN ‖ Ua security protocol id: P3 of the key derivation.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Display for NafId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (Ua {})", self.fqdn, self.protocol)
    }
}

/// A DNS name (RFC 1123 labels of [a-z0-9-], 1-63 octets, no leading or trailing hyphen, at
/// most 253 octets) or a dotted IPv4 literal, which a NAF on loopback has for a host.
fn check_fqdn(fqdn: &str) -> Result<(), NafIdError> {
    let bad = |reason: &str| Err(NafIdError::BadFqdn(reason.to_owned()));
    if fqdn.is_empty() {
        return bad("it is empty");
    }
    if fqdn.len() > 253 {
        return bad("it is longer than 253 characters");
    }
    for label in fqdn.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label must have 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("labels may hold only letters, digits and '-'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not start or end with '-'");
        }
    }
    // A top-level label is never all digits (RFC 3696 §2), so such a name is an IPv4 literal
    // and must be a well-formed one.
    let last = fqdn.rsplit('.').next().unwrap_or(fqdn);
    if last.bytes().all(|b| b.is_ascii_digit()) && fqdn.parse::<Ipv4Addr>().is_err() {
        return bad("it is neither a DNS name nor an IPv4 address");
    }
    Ok(())
}

/// Ks = CK ‖ IK (TS 33.220 §4.5.2).
pub fn ks(ck: &Secret<[u8; 16]>, ik: &Secret<[u8; 16]>) -> Ks {
    let mut ks = Secret::new([0u8; 32]);
    // Filled in place, so no copy of the key is left on the stack.
    let buf = ks.expose_mut();
    buf[..16].copy_from_slice(ck.expose());
    buf[16..].copy_from_slice(ik.expose());
    ks
}

/// Ks_NAF = KDF(Ks, FC=0x01, P0="gba-me", P1=RAND, P2=IMPI, P3=NAF_Id) with the generic
/// KDF of TS 33.220 Annex B.2: HMAC-SHA-256 over FC ‖ P0 ‖ L0 ‖ … ‖ P3 ‖ L3, each Li the length
/// of Pi in two octets, big-endian. String parameters are NFKC-normalised and UTF-8 encoded
/// (B.2.1), so the handset and the BSF agree whatever Unicode form the IMPI arrived in.
///
/// IMPIs are at most 255 octets (`ids::Impi`); the two-octet length of a parameter over
/// 65,535 octets, which Annex B cannot express, saturates, so such a key matches no peer's.
pub fn ks_naf(ks: &Ks, rand: &Rand, impi: &str, naf_id: &NafId) -> KsNaf {
    let impi: String = impi.nfkc().collect();
    // NAF_Id is an ASCII FQDN (NFKC leaves it alone) followed by raw protocol octets, which
    // are not a string and so are not normalised.
    let p0 = GBA_ME.as_bytes();
    let params: [&[u8]; 4] = [p0, &rand.0, impi.as_bytes(), naf_id.as_bytes()];
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(ks.expose()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(&[FC_KS_NAF]);
    for p in params {
        mac.update(p);
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        mac.update(&len.to_be_bytes());
    }
    let mut key = Secret::new([0u8; 32]);
    key.expose_mut()
        .copy_from_slice(mac.finalize().into_bytes().as_slice());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr<const N: usize>(hex_str: &str) -> [u8; N] {
        hex::decode(hex_str).unwrap().try_into().unwrap()
    }

    /// The check vector of DESIGN.md §2.3.
    #[test]
    fn design_check_vector() {
        let ks: Ks = Secret::new(arr(
            "b40ba9a3c58b2a05bbf0d987b21bf8cbf769bcd751044604127672711c6d3441",
        ));
        let rand = Rand(arr("23553cbe9637a89d218ae64dae47bf35"));
        let naf = NafId::new("naf.home1.net", UaProtocolId::HTTP_DIGEST).unwrap();
        assert_eq!(
            hex::encode(naf.as_bytes()),
            "6e61662e686f6d65312e6e65740100000002"
        );
        let key = ks_naf(&ks, &rand, "user1_private@home1.net", &naf);
        assert_eq!(
            hex::encode(key.expose()),
            "d4bcc1d30ed5b3f92db5ced018cb02aa117e8a2cd253235679570a94c5db2428"
        );
        assert_eq!(format!("{key:?}"), "[redacted]");
    }

    #[test]
    fn nfkc_applies_to_the_impi() {
        let ks: Ks = Secret::new([7; 32]);
        let rand = Rand([9; 16]);
        let naf = NafId::new("naf.home1.net", UaProtocolId::HTTP_DIGEST).unwrap();
        let ascii = ks_naf(&ks, &rand, "user1_private@home1.net", &naf);
        // FULLWIDTH LATIN SMALL LETTER U (U+FF55) and FULLWIDTH COMMERCIAL AT (U+FF20)
        // normalise to "u" and "@" under NFKC.
        let wide = ks_naf(&ks, &rand, "\u{ff55}ser1_private\u{ff20}home1.net", &naf);
        assert_eq!(ascii.expose(), wide.expose());
        let other = ks_naf(&ks, &rand, "user2_private@home1.net", &naf);
        assert_ne!(ascii.expose(), other.expose());
    }

    #[test]
    fn each_input_changes_the_key() {
        let ks: Ks = Secret::new([7; 32]);
        let rand = Rand([9; 16]);
        let plain = NafId::new("naf.home1.net", UaProtocolId::HTTP_DIGEST).unwrap();
        let tls = NafId::new("naf.home1.net", UaProtocolId::https_digest(0x1301)).unwrap();
        let base = ks_naf(&ks, &rand, "u@r", &plain);
        assert_ne!(base.expose(), ks_naf(&ks, &rand, "u@r", &tls).expose());
        assert_ne!(
            base.expose(),
            ks_naf(&ks, &Rand([8; 16]), "u@r", &plain).expose()
        );
        assert_ne!(
            base.expose(),
            ks_naf(&Secret::new([6; 32]), &rand, "u@r", &plain).expose()
        );
    }

    #[test]
    fn ks_is_ck_then_ik() {
        let ks = ks(&Secret::new([1; 16]), &Secret::new([2; 16]));
        assert_eq!(&ks.expose()[..16], &[1; 16]);
        assert_eq!(&ks.expose()[16..], &[2; 16]);
    }

    #[test]
    fn ua_protocol_ids() {
        assert_eq!(UaProtocolId::HTTP_DIGEST.to_string(), "0100000002");
        assert_eq!(
            UaProtocolId::https_digest(0xc02f).as_bytes(),
            &[0x01, 0x00, 0x01, 0xc0, 0x2f]
        );
    }

    #[test]
    fn naf_id_lower_cases_and_round_trips() {
        let id = NafId::new("NAF.Home1.NET", UaProtocolId::https_digest(0x1302)).unwrap();
        assert_eq!(id.fqdn(), "naf.home1.net");
        assert_eq!(id.protocol(), UaProtocolId::https_digest(0x1302));
        assert_eq!(NafId::from_bytes(id.as_bytes()).unwrap(), id);
        assert_eq!(id.to_string(), "naf.home1.net (Ua 0100011302)");
    }

    #[test]
    fn naf_id_accepts_loopback_and_refuses_bad_names() {
        assert!(NafId::new("127.0.0.1", UaProtocolId::HTTP_DIGEST).is_ok());
        assert!(NafId::new("localhost", UaProtocolId::HTTP_DIGEST).is_ok());
        assert!(NafId::new("a-b.example", UaProtocolId::HTTP_DIGEST).is_ok());
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = ["a".repeat(63).as_str(); 5].join(".");
        for bad in [
            "",
            "naf..example",
            "naf.example.",
            "-naf.example",
            "naf-.example",
            "naf_1.example",
            "naf.example:8080",
            "[::1]",
            "256.0.0.1",
            "1.2.3",
            "naf example",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(
                matches!(
                    NafId::new(bad, UaProtocolId::HTTP_DIGEST),
                    Err(NafIdError::BadFqdn(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn naf_id_from_bytes_checks_its_input() {
        assert_eq!(
            NafId::from_bytes(&[1, 0, 0, 0, 2]),
            Err(NafIdError::TooShort(5))
        );
        assert!(matches!(
            NafId::from_bytes(b"NAF.example\x01\x00\x00\x00\x02"),
            Err(NafIdError::BadFqdn(_))
        ));
        assert!(matches!(
            NafId::from_bytes(b"na\xfff.example\x01\x00\x00\x00\x02"),
            Err(NafIdError::BadFqdn(_))
        ));
        let id = NafId::from_bytes(b"naf.example\x01\x00\x00\x00\x02").unwrap();
        assert_eq!(id.fqdn(), "naf.example");
        assert_eq!(id.protocol(), UaProtocolId::HTTP_DIGEST);
    }
}
