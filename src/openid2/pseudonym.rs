//! Pairwise pseudonyms (DESIGN.md §2.6): the identifier a relying party sees for a user
//! under `identifier_select`, and OpenID Connect's pairwise `sub` (Core 1.0 §8.1) for the
//! same site, so both protocols name a user the same way at one host and differently at two.
//!
//! pseudonym = base32(HMAC-SHA-256(secret, IMPI ‖ 0x00 ‖ host))[..26], lower-case, no
//! padding (RFC 4648 §6). 26 characters carry 130 bits. The NUL separator keeps the IMPI and
//! the host apart (an IMPI cannot contain NUL, see `ids::Impi`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of a pseudonym in base32 characters.
pub const PSEUDONYM_LEN: usize = 26;

/// The pseudonym of `impi` at `host` (the realm's host for OpenID 2.0, the sector host for
/// OpenID Connect). Host names are case-insensitive, so `host` is lower-cased first.
pub fn pseudonym(secret: &[u8], impi: &str, host: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(impi.as_bytes());
    mac.update(&[0]);
    mac.update(host.to_ascii_lowercase().as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut text = data_encoding::BASE32_NOPAD.encode(digest.as_slice());
    text.truncate(PSEUDONYM_LEN);
    text.make_ascii_lowercase();
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const IMPI: &str = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";

    #[test]
    fn matches_an_independent_computation() {
        // python3: base64.b32encode(hmac.new(b'\x01'*32, IMPI.encode() + b'\0' + b'example.com',
        //          hashlib.sha256).digest()).decode().lower()[:26]
        assert_eq!(pseudonym(&[1; 32], IMPI, "example.com"), PY_PSEUDONYM);
    }

    const PY_PSEUDONYM: &str = "cqms7wzbwjb4gbrqyvz3cumfzi";

    #[test]
    fn shape_and_separation() {
        let p = pseudonym(b"secret", IMPI, "rp.example");
        assert_eq!(p.len(), PSEUDONYM_LEN);
        assert!(
            p.chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
        assert_eq!(p, pseudonym(b"secret", IMPI, "RP.Example"));
        assert_ne!(p, pseudonym(b"secret", IMPI, "other.example"));
        assert_ne!(p, pseudonym(b"other secret", IMPI, "rp.example"));
        assert_ne!(
            p,
            pseudonym(
                b"secret",
                "001010000000002@ims.mnc001.mcc001.3gppnetwork.org",
                "rp.example"
            )
        );
        // Without the separator these two would hash the same bytes.
        assert_ne!(pseudonym(b"s", "a@b", "c.d"), pseudonym(b"s", "a@bc", ".d"));
    }
}
