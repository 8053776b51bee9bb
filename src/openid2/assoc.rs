//! Associations (OpenID Authentication 2.0 §8): association types `HMAC-SHA1` and
//! `HMAC-SHA256`, session types `no-encryption`, `DH-SHA1` and `DH-SHA256`, the
//! Diffie-Hellman key exchange that protects the MAC key in transit (§8.1.2, §8.2.3, §8.4.2;
//! default modulus and generator from Appendix B), `btwoc` (§4.2), and the `associate`
//! response (§8.2), successful or `unsupported-type`.
//!
//! A DH session carries a MAC key as long as its hash output, so DH-SHA1 goes only with
//! HMAC-SHA1 and DH-SHA256 only with HMAC-SHA256 (DESIGN.md §2.6); any other pair is answered
//! with `unsupported-type` naming a pair that works. `no-encryption` sends the key in clear
//! and is allowed only over HTTPS (§8.4.1).
//!
//! The server's DH private key is random bytes chosen by the caller. The big integers of the
//! exchange (`num-bigint`) are not zeroized when dropped; the MAC key and the private key
//! bytes are, through [`Secret`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigUint;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::message::{Message, MessageError, Mode, Version};
use crate::secret::Secret;

/// A MAC key shared with a relying party (20 bytes for HMAC-SHA1, 32 for HMAC-SHA256).
pub type MacKey = Secret<Vec<u8>>;

/// The association type: the MAC algorithm that signs assertions (§8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssocType {
    HmacSha1,
    HmacSha256,
}

impl AssocType {
    pub fn as_str(self) -> &'static str {
        match self {
            AssocType::HmacSha1 => "HMAC-SHA1",
            AssocType::HmacSha256 => "HMAC-SHA256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HMAC-SHA1" => Some(AssocType::HmacSha1),
            "HMAC-SHA256" => Some(AssocType::HmacSha256),
            _ => None,
        }
    }

    /// The MAC key length in bytes: the hash's output length.
    pub fn mac_key_len(self) -> usize {
        match self {
            AssocType::HmacSha1 => 20,
            AssocType::HmacSha256 => 32,
        }
    }

    /// The DH session type whose hash matches this MAC (§8.4.2).
    pub fn dh_session(self) -> SessionType {
        match self {
            AssocType::HmacSha1 => SessionType::DhSha1,
            AssocType::HmacSha256 => SessionType::DhSha256,
        }
    }
}

/// The association session type: how the MAC key travels (§8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionType {
    NoEncryption,
    DhSha1,
    DhSha256,
}

impl SessionType {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::NoEncryption => "no-encryption",
            SessionType::DhSha1 => "DH-SHA1",
            SessionType::DhSha256 => "DH-SHA256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "no-encryption" => Some(SessionType::NoEncryption),
            "DH-SHA1" => Some(SessionType::DhSha1),
            "DH-SHA256" => Some(SessionType::DhSha256),
            _ => None,
        }
    }

    /// Whether this session type can carry a key of `assoc_type` (DESIGN.md §2.6).
    pub fn pairs_with(self, assoc_type: AssocType) -> bool {
        match self {
            SessionType::NoEncryption => true,
            SessionType::DhSha1 => assoc_type == AssocType::HmacSha1,
            SessionType::DhSha256 => assoc_type == AssocType::HmacSha256,
        }
    }
}

/// Why an `associate` request cannot be answered with an association.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssocError {
    /// Answered with `error_code: unsupported-type` and the pair to try instead (§8.2.4).
    #[error("{reason}; use assoc_type {} with session_type {}", .assoc_type.as_str(), .session_type.as_str())]
    UnsupportedType {
        reason: String,
        assoc_type: AssocType,
        session_type: SessionType,
    },
    #[error("openid.{0} is missing")]
    Missing(&'static str),
    #[error("openid.{0} is not valid base64")]
    BadBase64(&'static str),
    #[error("openid.{0} is empty; it must be a base64 btwoc integer")]
    EmptyInteger(&'static str),
    #[error("openid.{0} is a negative number (its first byte has the high bit set)")]
    Negative(&'static str),
    #[error("openid.dh_modulus and openid.dh_gen must be sent together, or neither")]
    ModulusWithoutGenerator,
    #[error("openid.dh_modulus is even, so it is not a prime")]
    EvenModulus,
    #[error("openid.dh_modulus has {0} bits; at least 512 are required")]
    ModulusTooSmall(u64),
    #[error("openid.dh_modulus has {0} bits; at most 4096 are accepted")]
    ModulusTooLarge(u64),
    #[error("openid.dh_gen must be between 2 and dh_modulus - 2")]
    GeneratorOutOfRange,
    #[error("openid.dh_consumer_public must be between 2 and dh_modulus - 2")]
    ConsumerPublicOutOfRange,
    #[error("openid.dh_server_public must be between 2 and dh_modulus - 2")]
    ServerPublicOutOfRange,
    #[error("the MAC key for {assoc_type} must be {expected} bytes, not {got}")]
    MacKeyLength {
        assoc_type: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("a Diffie-Hellman private key needs at least {min} random bytes, got {got}")]
    PrivateKeyTooShort { min: usize, got: usize },
    #[error("openid.mode is {0:?}, not associate")]
    NotAssociate(String),
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl AssocError {
    /// The OpenID `error_code` for this error, where the spec defines one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            AssocError::UnsupportedType { .. } => Some("unsupported-type"),
            _ => None,
        }
    }
}

/// The default modulus of Appendix B (1024 bits), big-endian.
const DEFAULT_MODULUS_HEX: &str = "DCF93A0B883972EC0E19989AC5A2CE310E1D37717E8D9571BB7623731866E61E\
F75A2E27898B057F9891C2E27A639C3F29B60814581CD3B2CA3986D2683705577D45C2E7E52DC81C7A171876E5CE\
A74B1448BFDFAF18828EFD2519F14E45E3826634AF1949E5B535CC829A483B8A76223E5D490A257F05BDFF16F2FB\
22C583AB";

/// The default generator of Appendix B.
pub const DEFAULT_GENERATOR: u32 = 2;

/// Bounds on a relying party's modulus: smaller is breakable, larger costs too much CPU.
pub const MIN_MODULUS_BITS: u64 = 512;
pub const MAX_MODULUS_BITS: u64 = 4096;

/// The fewest random bytes accepted as a DH private key (a 256-bit exponent).
pub const MIN_PRIVATE_KEY_LEN: usize = 32;

/// Diffie-Hellman group parameters: modulus p and generator g (§8.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhParams {
    modulus: BigUint,
    generator: BigUint,
}

impl Default for DhParams {
    /// The modulus and generator of Appendix B.
    fn default() -> Self {
        let modulus = BigUint::parse_bytes(DEFAULT_MODULUS_HEX.as_bytes(), 16).unwrap_or_default();
        Self {
            modulus,
            generator: BigUint::from(DEFAULT_GENERATOR),
        }
    }
}

impl DhParams {
    /// Builds and validates a group: an odd modulus of 512 to 4096 bits and a generator in
    /// [2, p-2].
    pub fn new(modulus: BigUint, generator: BigUint) -> Result<Self, AssocError> {
        let bits = modulus.bits();
        if bits < MIN_MODULUS_BITS {
            return Err(AssocError::ModulusTooSmall(bits));
        }
        if bits > MAX_MODULUS_BITS {
            return Err(AssocError::ModulusTooLarge(bits));
        }
        if !modulus.bit(0) {
            return Err(AssocError::EvenModulus);
        }
        if !in_range(&generator, &modulus) {
            return Err(AssocError::GeneratorOutOfRange);
        }
        Ok(Self { modulus, generator })
    }

    /// The group a request names: `openid.dh_modulus` and `openid.dh_gen` (base64 btwoc),
    /// both or neither; neither means the default group.
    pub fn from_base64(modulus: Option<&str>, generator: Option<&str>) -> Result<Self, AssocError> {
        match (modulus, generator) {
            (None, None) => Ok(Self::default()),
            (Some(m), Some(g)) => Self::new(
                parse_btwoc_base64("dh_modulus", m)?,
                parse_btwoc_base64("dh_gen", g)?,
            ),
            _ => Err(AssocError::ModulusWithoutGenerator),
        }
    }

    pub fn modulus(&self) -> &BigUint {
        &self.modulus
    }

    pub fn generator(&self) -> &BigUint {
        &self.generator
    }

    /// Whether this is the default group of Appendix B.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The private exponent from random bytes: 1 + (bytes mod (p - 2)), so in [1, p-2].
    fn private_exponent(&self, private: &Secret<Vec<u8>>) -> Result<BigUint, AssocError> {
        let got = private.expose().len();
        if got < MIN_PRIVATE_KEY_LEN {
            return Err(AssocError::PrivateKeyTooShort {
                min: MIN_PRIVATE_KEY_LEN,
                got,
            });
        }
        let two = BigUint::from(2u32);
        Ok(BigUint::from_bytes_be(private.expose()) % (&self.modulus - two) + 1u32)
    }

    /// g^x mod p for the private key given as random bytes.
    pub fn public_key(&self, private: &Secret<Vec<u8>>) -> Result<BigUint, AssocError> {
        let x = self.private_exponent(private)?;
        Ok(self.generator.modpow(&x, &self.modulus))
    }

    /// H(btwoc(other^x mod p)) XOR `key`: how both sides hide and recover the MAC key.
    fn xor_shared(
        &self,
        session_type: SessionType,
        private: &Secret<Vec<u8>>,
        other_public: &BigUint,
        key: &[u8],
    ) -> Result<Secret<Vec<u8>>, AssocError> {
        let x = self.private_exponent(private)?;
        let shared = Secret::new(btwoc(&other_public.modpow(&x, &self.modulus)));
        let hash: Vec<u8> = match session_type {
            SessionType::DhSha256 => Sha256::digest(shared.expose()).to_vec(),
            _ => Sha1::digest(shared.expose()).to_vec(),
        };
        let hash = Secret::new(hash);
        Ok(Secret::new(
            key.iter()
                .zip(hash.expose().iter())
                .map(|(a, b)| a ^ b)
                .collect(),
        ))
    }
}

/// Whether 2 <= n <= p - 2.
fn in_range(n: &BigUint, p: &BigUint) -> bool {
    let two = BigUint::from(2u32);
    *n >= two && p >= &two && *n <= p - &two
}

/// The two's complement big-endian encoding of a non-negative integer (§4.2): the shortest
/// string of bytes whose high bit is clear, so 128 is `00 80`.
pub fn btwoc(n: &BigUint) -> Vec<u8> {
    let bytes = n.to_bytes_be();
    match bytes.first() {
        Some(first) if first & 0x80 != 0 => {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(0);
            out.extend_from_slice(&bytes);
            out
        }
        _ => bytes,
    }
}

/// Reads a btwoc integer, refusing negative numbers and empty strings.
pub fn from_btwoc(field: &'static str, bytes: &[u8]) -> Result<BigUint, AssocError> {
    match bytes.first() {
        None => Err(AssocError::EmptyInteger(field)),
        Some(first) if first & 0x80 != 0 => Err(AssocError::Negative(field)),
        Some(_) => Ok(BigUint::from_bytes_be(bytes)),
    }
}

/// base64(btwoc(n)), as integers travel in OpenID messages.
pub fn btwoc_base64(n: &BigUint) -> String {
    BASE64.encode(btwoc(n))
}

/// Reads the base64 btwoc integer in `openid.<field>`.
pub fn parse_btwoc_base64(field: &'static str, value: &str) -> Result<BigUint, AssocError> {
    let bytes = BASE64
        .decode(value)
        .map_err(|_| AssocError::BadBase64(field))?;
    from_btwoc(field, &bytes)
}

/// How the relying party asked for the MAC key to travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRequest {
    NoEncryption,
    DiffieHellman {
        session_type: SessionType,
        params: DhParams,
        consumer_public: BigUint,
    },
}

impl SessionRequest {
    pub fn session_type(&self) -> SessionType {
        match self {
            SessionRequest::NoEncryption => SessionType::NoEncryption,
            SessionRequest::DiffieHellman { session_type, .. } => *session_type,
        }
    }
}

/// A valid `associate` request (§8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateRequest {
    pub version: Version,
    pub assoc_type: AssocType,
    pub session: SessionRequest,
}

impl AssociateRequest {
    /// Reads an `associate` request. `over_https` says whether it came over TLS (or the
    /// operator allowed the MAC key in clear for local testing), without which
    /// `no-encryption` is refused (§8.4.1).
    ///
    /// In OpenID 1.1 (§14) `assoc_type` defaults to HMAC-SHA1 and an absent or empty
    /// `session_type` means no encryption; in 2.0 both fields are required.
    pub fn parse(message: &Message, over_https: bool) -> Result<Self, AssocError> {
        let mode = message.require("mode")?;
        if Mode::parse(mode) != Some(Mode::Associate) {
            return Err(AssocError::NotAssociate(mode.to_owned()));
        }
        let version = message.version();
        let fallback = match version {
            Version::V2 => AssocType::HmacSha256,
            Version::V1 => AssocType::HmacSha1,
        };
        let assoc_text = match (message.get("assoc_type"), version) {
            (Some(t), _) => t,
            (None, Version::V1) => AssocType::HmacSha1.as_str(),
            (None, Version::V2) => return Err(AssocError::Missing("assoc_type")),
        };
        let session_text = match (message.get("session_type"), version) {
            (Some(""), Version::V1) | (None, Version::V1) => SessionType::NoEncryption.as_str(),
            (Some(t), _) => t,
            (None, Version::V2) => return Err(AssocError::Missing("session_type")),
        };
        let Some(assoc_type) = AssocType::parse(assoc_text) else {
            return Err(AssocError::UnsupportedType {
                reason: format!("association type {assoc_text:?} is not supported"),
                assoc_type: fallback,
                session_type: fallback.dh_session(),
            });
        };
        let Some(session_type) = SessionType::parse(session_text) else {
            return Err(AssocError::UnsupportedType {
                reason: format!("session type {session_text:?} is not supported"),
                assoc_type,
                session_type: assoc_type.dh_session(),
            });
        };
        if !session_type.pairs_with(assoc_type) {
            return Err(AssocError::UnsupportedType {
                reason: format!(
                    "session type {} cannot carry an {} key (§8.4.2)",
                    session_type.as_str(),
                    assoc_type.as_str()
                ),
                assoc_type,
                session_type: assoc_type.dh_session(),
            });
        }
        let session = match session_type {
            SessionType::NoEncryption if !over_https => {
                return Err(AssocError::UnsupportedType {
                    reason: "session type no-encryption is allowed only over HTTPS (§8.4.1)"
                        .to_owned(),
                    assoc_type,
                    session_type: assoc_type.dh_session(),
                });
            }
            SessionType::NoEncryption => SessionRequest::NoEncryption,
            SessionType::DhSha1 | SessionType::DhSha256 => {
                let params =
                    DhParams::from_base64(message.get("dh_modulus"), message.get("dh_gen"))?;
                let public = message
                    .get("dh_consumer_public")
                    .ok_or(AssocError::Missing("dh_consumer_public"))?;
                let consumer_public = parse_btwoc_base64("dh_consumer_public", public)?;
                if !in_range(&consumer_public, params.modulus()) {
                    return Err(AssocError::ConsumerPublicOutOfRange);
                }
                SessionRequest::DiffieHellman {
                    session_type,
                    params,
                    consumer_public,
                }
            }
        };
        Ok(Self {
            version,
            assoc_type,
            session,
        })
    }

    /// The successful response (§8.2.1-§8.2.3), fields in this order: `ns`, `assoc_handle`,
    /// `session_type`, `assoc_type`, `expires_in`, then `mac_key` or `dh_server_public` and
    /// `enc_mac_key`. `server_private` is fresh random bytes (at least
    /// [`MIN_PRIVATE_KEY_LEN`]; 64 is plenty), used only for a DH session.
    ///
    /// An OpenID 1.1 no-encryption response has no `session_type`, as OpenID 1.1 had no
    /// name for it.
    pub fn answer(
        &self,
        assoc_handle: &str,
        expires_in: u64,
        mac_key: &MacKey,
        server_private: &Secret<Vec<u8>>,
    ) -> Result<Message, AssocError> {
        let expected = self.assoc_type.mac_key_len();
        if mac_key.expose().len() != expected {
            return Err(AssocError::MacKeyLength {
                assoc_type: self.assoc_type.as_str(),
                expected,
                got: mac_key.expose().len(),
            });
        }
        let mut out = Message::new(self.version);
        out.set("assoc_handle", assoc_handle);
        let session_type = self.session.session_type();
        if !(self.version == Version::V1 && session_type == SessionType::NoEncryption) {
            out.set("session_type", session_type.as_str());
        }
        out.set("assoc_type", self.assoc_type.as_str());
        out.set("expires_in", expires_in.to_string());
        match &self.session {
            SessionRequest::NoEncryption => {
                out.set("mac_key", BASE64.encode(mac_key.expose()));
            }
            SessionRequest::DiffieHellman {
                session_type,
                params,
                consumer_public,
            } => {
                let server_public = params.public_key(server_private)?;
                let enc = params.xor_shared(
                    *session_type,
                    server_private,
                    consumer_public,
                    mac_key.expose(),
                )?;
                out.set("dh_server_public", btwoc_base64(&server_public));
                out.set("enc_mac_key", BASE64.encode(enc.expose()));
            }
        }
        Ok(out)
    }
}

/// The relying party's side of a DH session (§8.2.3): recovers the MAC key from
/// `dh_server_public` and `enc_mac_key`. The OP does not need this; tests and test relying
/// parties do.
pub fn consumer_mac_key(
    params: &DhParams,
    session_type: SessionType,
    consumer_private: &Secret<Vec<u8>>,
    dh_server_public: &str,
    enc_mac_key: &str,
) -> Result<MacKey, AssocError> {
    let server_public = parse_btwoc_base64("dh_server_public", dh_server_public)?;
    if !in_range(&server_public, params.modulus()) {
        return Err(AssocError::ServerPublicOutOfRange);
    }
    let enc = Secret::new(
        BASE64
            .decode(enc_mac_key)
            .map_err(|_| AssocError::BadBase64("enc_mac_key"))?,
    );
    params.xor_shared(session_type, consumer_private, &server_public, enc.expose())
}

/// The fields of an `unsupported-type` answer to `associate` (§8.2.4), for a direct
/// error response: `error`, `error_code`, and the `session_type` and `assoc_type` to try.
pub fn unsupported_type_fields(
    reason: &str,
    assoc_type: AssocType,
    session_type: SessionType,
) -> Vec<(String, String)> {
    vec![
        ("error".to_owned(), reason.to_owned()),
        ("error_code".to_owned(), "unsupported-type".to_owned()),
        ("session_type".to_owned(), session_type.as_str().to_owned()),
        ("assoc_type".to_owned(), assoc_type.as_str().to_owned()),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::openid2::OPENID2_NS;

    fn big(n: u64) -> BigUint {
        BigUint::from(n)
    }

    fn message(list: &[(&str, &str)]) -> Message {
        let pairs: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| (format!("openid.{k}"), (*v).to_owned()))
            .collect();
        Message::from_pairs(&pairs).unwrap()
    }

    fn private(byte: u8) -> Secret<Vec<u8>> {
        Secret::new(vec![byte; 64])
    }

    #[test]
    fn btwoc_matches_the_examples_of_section_4_2() {
        assert_eq!(btwoc(&big(0)), [0x00]);
        assert_eq!(btwoc(&big(127)), [0x7F]);
        assert_eq!(btwoc(&big(128)), [0x00, 0x80]);
        assert_eq!(btwoc(&big(255)), [0x00, 0xFF]);
        assert_eq!(btwoc(&big(32768)), [0x00, 0x80, 0x00]);
        for n in [0u64, 127, 128, 255, 32768, 1 << 40] {
            assert_eq!(from_btwoc("x", &btwoc(&big(n))).unwrap(), big(n));
        }
        assert_eq!(from_btwoc("x", &[0x80]), Err(AssocError::Negative("x")));
        assert_eq!(from_btwoc("x", &[]), Err(AssocError::EmptyInteger("x")));
        assert_eq!(btwoc_base64(&big(128)), "AIA=");
        assert_eq!(parse_btwoc_base64("x", "AIA=").unwrap(), big(128));
        assert_eq!(
            parse_btwoc_base64("dh_gen", "not base64!"),
            Err(AssocError::BadBase64("dh_gen"))
        );
    }

    #[test]
    fn default_group_is_appendix_b() {
        let p = DhParams::default();
        assert_eq!(p.modulus().bits(), 1024);
        assert_eq!(*p.generator(), big(2));
        assert!(p.is_default());
        assert_eq!(
            p.modulus().to_string(),
            "155172898181473697471232257763715539915724801966915404479707795314057629378541917580\
651227423698188993727816152646631438561595825688188889951272158842675419950341258706556549803\
580104870537681476726513255747040765857479291291572334510643245094715007229621094194349783925\
984760375594985848253359305585439638443"
        );
    }

    #[test]
    fn relying_party_groups_are_validated() {
        let p = DhParams::default().modulus().clone();
        let g = big(2);
        assert!(DhParams::new(p.clone(), g.clone()).is_ok());
        assert_eq!(
            DhParams::new(&p + 1u32, g.clone()),
            Err(AssocError::EvenModulus)
        );
        let small = (BigUint::from(1u32) << 500u32) + 1u32;
        assert_eq!(
            DhParams::new(small, g.clone()),
            Err(AssocError::ModulusTooSmall(501))
        );
        let large = (BigUint::from(1u32) << 4096u32) + 1u32;
        assert_eq!(
            DhParams::new(large, g.clone()),
            Err(AssocError::ModulusTooLarge(4097))
        );
        assert_eq!(
            DhParams::new(p.clone(), big(1)),
            Err(AssocError::GeneratorOutOfRange)
        );
        assert_eq!(
            DhParams::new(p.clone(), &p - 1u32),
            Err(AssocError::GeneratorOutOfRange)
        );
        assert!(DhParams::new(p.clone(), &p - 2u32).is_ok());
        let (m64, g64) = (btwoc_base64(&p), btwoc_base64(&big(5)));
        let custom = DhParams::from_base64(Some(&m64), Some(&g64)).unwrap();
        assert_eq!(*custom.generator(), big(5));
        assert!(!custom.is_default());
        assert_eq!(
            DhParams::from_base64(Some(&m64), None),
            Err(AssocError::ModulusWithoutGenerator)
        );
        assert_eq!(
            DhParams::from_base64(Some("%%%"), Some(&g64)),
            Err(AssocError::BadBase64("dh_modulus"))
        );
        assert_eq!(
            DhParams::from_base64(Some(&m64), Some("/w==")),
            Err(AssocError::Negative("dh_gen"))
        );
    }

    fn dh_request(session: &str, assoc: &str, consumer: &Secret<Vec<u8>>) -> Message {
        let public = DhParams::default().public_key(consumer).unwrap();
        message(&[
            ("ns", OPENID2_NS),
            ("mode", "associate"),
            ("assoc_type", assoc),
            ("session_type", session),
            ("dh_consumer_public", &btwoc_base64(&public)),
        ])
    }

    #[test]
    fn dh_exchange_recovers_the_mac_key_on_both_sides() {
        for (session, assoc, len) in [
            ("DH-SHA1", "HMAC-SHA1", 20),
            ("DH-SHA256", "HMAC-SHA256", 32),
        ] {
            let consumer = private(0x5a);
            let req =
                AssociateRequest::parse(&dh_request(session, assoc, &consumer), false).unwrap();
            assert_eq!(req.assoc_type.as_str(), assoc);
            assert_eq!(req.session.session_type().as_str(), session);
            let mac_key: MacKey = Secret::new((0..len as u8).collect());
            let resp = req.answer("h1", 1209600, &mac_key, &private(0xa5)).unwrap();
            let keys: Vec<&str> = resp.fields().iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                keys,
                [
                    "ns",
                    "assoc_handle",
                    "session_type",
                    "assoc_type",
                    "expires_in",
                    "dh_server_public",
                    "enc_mac_key"
                ]
            );
            assert_eq!(resp.get("expires_in"), Some("1209600"));
            assert_ne!(
                resp.get("enc_mac_key").unwrap(),
                BASE64.encode(mac_key.expose())
            );
            let recovered = consumer_mac_key(
                &DhParams::default(),
                SessionType::parse(session).unwrap(),
                &consumer,
                resp.get("dh_server_public").unwrap(),
                resp.get("enc_mac_key").unwrap(),
            )
            .unwrap();
            assert_eq!(recovered.expose(), mac_key.expose());
        }
    }

    #[test]
    fn dh_matches_an_independent_computation() {
        // Checked with python3: x = 1 + int.from_bytes(b'\x07'*64) % (p - 2); y = pow(2, x, p);
        // the shared secret with itself as the consumer, SHA-1 of its btwoc.
        let params = DhParams::default();
        let key = Secret::new(vec![7u8; 64]);
        let y = params.public_key(&key).unwrap();
        let zero = Secret::new(vec![0u8; 20]);
        let h = params
            .xor_shared(SessionType::DhSha1, &key, &y, zero.expose())
            .unwrap();
        assert_eq!(hex::encode(&btwoc(&y)[..8]), PY_Y_PREFIX);
        assert_eq!(hex::encode(h.expose()), PY_SHA1_SHARED);
    }

    const PY_Y_PREFIX: &str = "00ac32131ae281c3";
    const PY_SHA1_SHARED: &str = "362b24478d3898c2c3f9a10ca6bbfc0524e6721d";

    #[test]
    fn no_encryption_sends_the_key_in_clear_over_https_only() {
        let req = message(&[
            ("ns", OPENID2_NS),
            ("mode", "associate"),
            ("assoc_type", "HMAC-SHA256"),
            ("session_type", "no-encryption"),
        ]);
        let err = AssociateRequest::parse(&req, false).unwrap_err();
        assert_eq!(
            err,
            AssocError::UnsupportedType {
                reason: "session type no-encryption is allowed only over HTTPS (§8.4.1)".into(),
                assoc_type: AssocType::HmacSha256,
                session_type: SessionType::DhSha256,
            }
        );
        assert_eq!(err.error_code(), Some("unsupported-type"));
        let parsed = AssociateRequest::parse(&req, true).unwrap();
        let key: MacKey = Secret::new(vec![1u8; 32]);
        let resp = parsed.answer("h", 60, &key, &Secret::new(vec![])).unwrap();
        assert_eq!(resp.get("session_type"), Some("no-encryption"));
        assert_eq!(resp.get("mac_key"), Some(BASE64.encode([1u8; 32]).as_str()));
        assert!(resp.get("enc_mac_key").is_none());
    }

    #[test]
    fn mismatched_and_unknown_types_get_unsupported_type_with_a_valid_pair() {
        let consumer = private(3);
        let err = AssociateRequest::parse(&dh_request("DH-SHA1", "HMAC-SHA256", &consumer), false)
            .unwrap_err();
        assert!(matches!(
            err,
            AssocError::UnsupportedType {
                assoc_type: AssocType::HmacSha256,
                session_type: SessionType::DhSha256,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "session type DH-SHA1 cannot carry an HMAC-SHA256 key (§8.4.2); \
             use assoc_type HMAC-SHA256 with session_type DH-SHA256"
        );
        let err = AssociateRequest::parse(&dh_request("DH-SHA256", "HMAC-SHA1", &consumer), false)
            .unwrap_err();
        assert!(matches!(
            err,
            AssocError::UnsupportedType {
                assoc_type: AssocType::HmacSha1,
                session_type: SessionType::DhSha1,
                ..
            }
        ));
        let err = AssociateRequest::parse(&dh_request("DH-SHA256", "HMAC-MD5", &consumer), false)
            .unwrap_err();
        assert!(matches!(
            err,
            AssocError::UnsupportedType {
                assoc_type: AssocType::HmacSha256,
                session_type: SessionType::DhSha256,
                ..
            }
        ));
        let err = AssociateRequest::parse(&dh_request("DH-SHA512", "HMAC-SHA1", &consumer), false)
            .unwrap_err();
        assert!(matches!(
            err,
            AssocError::UnsupportedType {
                assoc_type: AssocType::HmacSha1,
                session_type: SessionType::DhSha1,
                ..
            }
        ));
        assert_eq!(
            unsupported_type_fields("r", AssocType::HmacSha1, SessionType::DhSha1),
            vec![
                ("error".to_owned(), "r".to_owned()),
                ("error_code".to_owned(), "unsupported-type".to_owned()),
                ("session_type".to_owned(), "DH-SHA1".to_owned()),
                ("assoc_type".to_owned(), "HMAC-SHA1".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_requests_are_named() {
        let base = [("ns", OPENID2_NS), ("mode", "associate")];
        let with = |extra: &[(&str, &str)]| {
            let mut list = base.to_vec();
            list.extend_from_slice(extra);
            AssociateRequest::parse(&message(&list), true)
        };
        assert_eq!(
            with(&[("session_type", "DH-SHA1")]),
            Err(AssocError::Missing("assoc_type"))
        );
        assert_eq!(
            with(&[("assoc_type", "HMAC-SHA1")]),
            Err(AssocError::Missing("session_type"))
        );
        assert_eq!(
            with(&[("assoc_type", "HMAC-SHA1"), ("session_type", "DH-SHA1")]),
            Err(AssocError::Missing("dh_consumer_public"))
        );
        assert_eq!(
            with(&[
                ("assoc_type", "HMAC-SHA1"),
                ("session_type", "DH-SHA1"),
                ("dh_consumer_public", "AQ==")
            ]),
            Err(AssocError::ConsumerPublicOutOfRange)
        );
        let p_minus_1 = btwoc_base64(&(DhParams::default().modulus() - 1u32));
        assert_eq!(
            with(&[
                ("assoc_type", "HMAC-SHA1"),
                ("session_type", "DH-SHA1"),
                ("dh_consumer_public", &p_minus_1)
            ]),
            Err(AssocError::ConsumerPublicOutOfRange)
        );
        assert_eq!(
            with(&[
                ("assoc_type", "HMAC-SHA1"),
                ("session_type", "DH-SHA1"),
                ("dh_consumer_public", "@@")
            ]),
            Err(AssocError::BadBase64("dh_consumer_public"))
        );
        let not_assoc = message(&[("ns", OPENID2_NS), ("mode", "checkid_setup")]);
        assert_eq!(
            AssociateRequest::parse(&not_assoc, true),
            Err(AssocError::NotAssociate("checkid_setup".into()))
        );
    }

    #[test]
    fn answer_checks_key_lengths() {
        let consumer = private(9);
        let req =
            AssociateRequest::parse(&dh_request("DH-SHA1", "HMAC-SHA1", &consumer), false).unwrap();
        assert_eq!(
            req.answer("h", 1, &Secret::new(vec![0; 32]), &private(1)),
            Err(AssocError::MacKeyLength {
                assoc_type: "HMAC-SHA1",
                expected: 20,
                got: 32
            })
        );
        assert_eq!(
            req.answer("h", 1, &Secret::new(vec![0; 20]), &Secret::new(vec![1; 8])),
            Err(AssocError::PrivateKeyTooShort { min: 32, got: 8 })
        );
    }

    #[test]
    fn openid_1_1_defaults() {
        // No ns, no assoc_type, no session_type: HMAC-SHA1 in clear (over HTTPS).
        let m = message(&[("mode", "associate")]);
        let req = AssociateRequest::parse(&m, true).unwrap();
        assert_eq!(req.version, Version::V1);
        assert_eq!(req.assoc_type, AssocType::HmacSha1);
        assert_eq!(req.session, SessionRequest::NoEncryption);
        let resp = req
            .answer("h", 60, &Secret::new(vec![2; 20]), &Secret::new(vec![]))
            .unwrap();
        assert_eq!(resp.get("ns"), None);
        assert_eq!(resp.get("session_type"), None, "1.1 has no name for it");
        let m = message(&[("mode", "associate"), ("session_type", "")]);
        assert_eq!(
            AssociateRequest::parse(&m, true).unwrap().session,
            SessionRequest::NoEncryption
        );
        // The DH-SHA1 of OpenID 1.1 still names its session type.
        let consumer = private(4);
        let public = DhParams::default().public_key(&consumer).unwrap();
        let m = message(&[
            ("mode", "associate"),
            ("session_type", "DH-SHA1"),
            ("dh_consumer_public", &btwoc_base64(&public)),
        ]);
        let req = AssociateRequest::parse(&m, false).unwrap();
        let resp = req
            .answer("h", 60, &Secret::new(vec![2; 20]), &private(8))
            .unwrap();
        assert_eq!(resp.get("session_type"), Some("DH-SHA1"));
    }

    #[test]
    fn a_relying_party_group_is_used() {
        // An odd 512-bit modulus of the relying party's choosing: the exchange works for any
        // odd modulus, and whether it is prime is the relying party's business.
        let p = (BigUint::from(1u32) << 511u32) + 111u32;
        let params = DhParams::new(p.clone(), big(5)).unwrap();
        let consumer = private(0x11);
        let public = params.public_key(&consumer).unwrap();
        let m = message(&[
            ("ns", OPENID2_NS),
            ("mode", "associate"),
            ("assoc_type", "HMAC-SHA256"),
            ("session_type", "DH-SHA256"),
            ("dh_modulus", &btwoc_base64(&p)),
            ("dh_gen", &btwoc_base64(&big(5))),
            ("dh_consumer_public", &btwoc_base64(&public)),
        ]);
        let req = AssociateRequest::parse(&m, false).unwrap();
        let key: MacKey = Secret::new(vec![0x42; 32]);
        let resp = req.answer("h", 5, &key, &private(0x22)).unwrap();
        let got = consumer_mac_key(
            &params,
            SessionType::DhSha256,
            &consumer,
            resp.get("dh_server_public").unwrap(),
            resp.get("enc_mac_key").unwrap(),
        )
        .unwrap();
        assert_eq!(got.expose(), key.expose());
    }
}
