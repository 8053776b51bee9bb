//! The Digest AKA nonce and AUTS encodings (RFC 3310 §3.2 and §3.4, TS 24.109 §4.4.3).
//!
//! The BSF's nonce is base64(RAND ‖ AUTN ‖ server data); the client takes RAND and AUTN from
//! its first 32 octets and ignores the rest, which is the server's to use. On a
//! synchronisation failure the client returns base64(AUTS) in the `auts` parameter.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::digest::DigestError;
use crate::aka::{Autn, Auts, Rand};

/// Standard base64 that accepts values with or without padding: RFC 3310 says "base64"
/// without more, and a client that drops the `=` still means the same bytes.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The nonce of a Ub challenge: base64(RAND ‖ AUTN), standard alphabet, padded.
pub fn aka_nonce(rand: &Rand, autn: &Autn) -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&rand.0);
    bytes[16..].copy_from_slice(&autn.0);
    STANDARD.encode(bytes)
}

/// RAND and AUTN from a Digest AKA nonce; octets after the first 32 are server data and
/// ignored (RFC 3310 §3.2).
pub fn parse_aka_nonce(nonce: &str) -> Result<(Rand, Autn), DigestError> {
    let bytes = LENIENT.decode(nonce).map_err(|_| DigestError::BadValue {
        param: "nonce",
        reason: "is not base64".into(),
    })?;
    if bytes.len() < 32 {
        return Err(DigestError::BadValue {
            param: "nonce",
            reason: format!(
                "holds {} octets, fewer than RAND and AUTN (32)",
                bytes.len()
            ),
        });
    }
    let mut rand = [0u8; 16];
    let mut autn = [0u8; 16];
    rand.copy_from_slice(&bytes[..16]);
    autn.copy_from_slice(&bytes[16..32]);
    Ok((Rand(rand), Autn(autn)))
}

/// The `auts` parameter value: base64(AUTS), standard alphabet, padded.
pub fn encode_auts(auts: &Auts) -> String {
    STANDARD.encode(auts.0)
}

/// AUTS from the `auts` parameter: base64 of exactly 14 octets (RFC 3310 §3.4).
pub fn parse_auts(value: &str) -> Result<Auts, DigestError> {
    let bytes = LENIENT.decode(value).map_err(|_| DigestError::BadValue {
        param: "auts",
        reason: "is not base64".into(),
    })?;
    let auts: [u8; 14] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| DigestError::BadValue {
            param: "auts",
            reason: format!("holds {} octets, AUTS has 14", bytes.len()),
        })?;
    Ok(Auts(auts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand() -> Rand {
        Rand(core::array::from_fn(|i| i as u8))
    }

    fn autn() -> Autn {
        Autn(core::array::from_fn(|i| 0x10 + i as u8))
    }

    #[test]
    fn nonce_round_trips() {
        let nonce = aka_nonce(&rand(), &autn());
        assert_eq!(nonce, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        assert_eq!(parse_aka_nonce(&nonce).unwrap(), (rand(), autn()));
        // Without padding, too.
        assert_eq!(
            parse_aka_nonce(nonce.trim_end_matches('=')).unwrap(),
            (rand(), autn())
        );
    }

    #[test]
    fn server_data_after_autn_is_ignored() {
        let mut bytes = vec![0u8; 32];
        bytes[..16].copy_from_slice(&rand().0);
        bytes[16..].copy_from_slice(&autn().0);
        bytes.extend_from_slice(b"server-specific data");
        let nonce = STANDARD.encode(&bytes);
        assert_eq!(parse_aka_nonce(&nonce).unwrap(), (rand(), autn()));
    }

    #[test]
    fn short_or_garbled_nonces_are_refused() {
        let short = STANDARD.encode([0u8; 31]);
        let err = parse_aka_nonce(&short).unwrap_err();
        assert!(matches!(err, DigestError::BadValue { param: "nonce", .. }));
        assert!(err.to_string().contains("31 octets"), "{err}");
        for bad in ["", "not base64!", "AAEC*wQF"] {
            assert!(
                matches!(
                    parse_aka_nonce(bad),
                    Err(DigestError::BadValue { param: "nonce", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn auts_round_trips_and_must_be_14_octets() {
        let auts = Auts(core::array::from_fn(|i| 0xa0 + i as u8));
        let encoded = encode_auts(&auts);
        assert_eq!(encoded.len(), 20);
        assert_eq!(parse_auts(&encoded).unwrap(), auts);
        for bytes in [&[0u8; 13][..], &[0u8; 15][..], &[][..]] {
            assert!(
                matches!(
                    parse_auts(&STANDARD.encode(bytes)),
                    Err(DigestError::BadValue { param: "auts", .. })
                ),
                "{} octets",
                bytes.len()
            );
        }
        assert!(parse_auts("%%%").is_err());
    }
}
