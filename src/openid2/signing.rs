//! Signatures on positive assertions (OpenID Authentication 2.0 §10.1, §6) and their
//! verification for `check_authentication` (§11.4.2), plus the `response_nonce` (§10.1) and
//! the UTC timestamps it and PAPE's `auth_time` use.
//!
//! The OP signs every field of the response it sends (except `sig` and `signed`), so the
//! fields §10.1 requires (`op_endpoint`, `return_to`, `response_nonce`, `assoc_handle`, and
//! `claimed_id`/`identity` when present) and every extension field are covered; the token is
//! the key-value form of the signed fields in `signed` order (§6.1), and `sig` is
//! base64(HMAC(MAC key, token)).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset, macros::format_description};

use super::assoc::{AssocType, MacKey};
use super::kv::{self, KvError};
use super::message::{Message, Mode, Version};

/// Why a message could not be signed or its signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("openid.{0} is missing; an assertion cannot be signed without it")]
    Missing(&'static str),
    #[error("openid.signed is missing")]
    NoSignedList,
    #[error("openid.sig is missing")]
    NoSignature,
    #[error("openid.signed has an empty entry")]
    EmptySignedEntry,
    #[error("openid.signed names {0:?} twice")]
    DuplicateSignedEntry(String),
    #[error("openid.signed names {0:?}, which the message does not have")]
    SignedFieldMissing(String),
    #[error("openid.{0} is present but not signed; it must be")]
    NotSigned(&'static str),
    #[error("openid.sig is not valid base64")]
    SignatureNotBase64,
    #[error("the signature does not verify")]
    BadSignature,
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// Why a `response_nonce` or a timestamp could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error(
        "the unique part of a response_nonce may hold only printable ASCII without spaces \
         (33-126), not {0:?}"
    )]
    BadUniqueChar(char),
    #[error("a response_nonce is at most 255 characters; this one would be {0}")]
    TooLong(usize),
    #[error("year {0} cannot be written as a four-digit OpenID timestamp")]
    YearOutOfRange(i32),
    #[error("{0:?} does not start with a UTC timestamp like 2005-05-15T17:11:51Z")]
    BadTimestamp(String),
}

/// The longest `response_nonce` (§10.1).
pub const MAX_NONCE_LEN: usize = 255;

/// Fields the signature must cover when present (§10.1; §14 for OpenID 1.1, where python-openid
/// requires `return_to` and `identity`).
fn must_sign(version: Version) -> &'static [&'static str] {
    match version {
        Version::V2 => &[
            "op_endpoint",
            "return_to",
            "response_nonce",
            "assoc_handle",
            "claimed_id",
            "identity",
        ],
        Version::V1 => &["return_to", "identity", "assoc_handle"],
    }
}

/// Fields §10.1 requires in every 2.0 assertion, present or not.
const ALWAYS_REQUIRED_V2: &[&str] = &["op_endpoint", "return_to", "response_nonce", "assoc_handle"];

/// HMAC of `data` under `key` with the association's hash.
pub fn mac(assoc_type: AssocType, key: &MacKey, data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so new_from_slice cannot fail.
    match assoc_type {
        AssocType::HmacSha1 => match Hmac::<Sha1>::new_from_slice(key.expose()) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => unreachable!("HMAC takes any key length"),
        },
        AssocType::HmacSha256 => match Hmac::<Sha256>::new_from_slice(key.expose()) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => unreachable!("HMAC takes any key length"),
        },
    }
}

/// The token the signature covers (§6.1): key-value form of `key:value` for each signed key
/// in order. A `check_authentication` request is verified as the `id_res` it copies
/// (§11.4.2.1), so its `mode` counts as `id_res`.
pub fn token_contents(message: &Message, signed: &[&str]) -> Result<String, SigningError> {
    let check_auth = message.get("mode") == Some(Mode::CheckAuthentication.as_str());
    let mut pairs = Vec::with_capacity(signed.len());
    for key in signed {
        let value = match (*key, check_auth) {
            ("mode", true) => Mode::IdRes.as_str(),
            _ => message
                .get(key)
                .ok_or_else(|| SigningError::SignedFieldMissing((*key).to_owned()))?,
        };
        pairs.push((*key, value));
    }
    Ok(kv::encode(&pairs)?)
}

/// Signs `message` in place: sets `signed` to every field except `sig` and `signed`, in
/// message order, then `sig`. `assoc_handle` must already be set; in 2.0, so must
/// `op_endpoint`, `return_to` and `response_nonce`.
pub fn sign(
    message: &mut Message,
    assoc_type: AssocType,
    mac_key: &MacKey,
) -> Result<(), SigningError> {
    message.remove("sig");
    message.remove("signed");
    let required: &[&'static str] = match message.version() {
        Version::V2 => ALWAYS_REQUIRED_V2,
        Version::V1 => &["return_to", "assoc_handle"],
    };
    if let Some(missing) = required.iter().find(|k| message.get(k).is_none()) {
        return Err(SigningError::Missing(missing));
    }
    let keys: Vec<String> = message.fields().iter().map(|(k, _)| k.clone()).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let token = token_contents(message, &key_refs)?;
    let sig = BASE64.encode(mac(assoc_type, mac_key, token.as_bytes()));
    message.set("signed", keys.join(","));
    message.set("sig", sig);
    Ok(())
}

/// Verifies the signature of a message (an `id_res`, or a `check_authentication` request
/// copying one) with the association's key, in constant time. The `signed` list must cover
/// every field §10.1 requires that the message has.
pub fn verify(
    message: &Message,
    assoc_type: AssocType,
    mac_key: &MacKey,
) -> Result<(), SigningError> {
    let signed_text = message.get("signed").ok_or(SigningError::NoSignedList)?;
    let sig_text = message.get("sig").ok_or(SigningError::NoSignature)?;
    let mut signed: Vec<&str> = Vec::new();
    for entry in signed_text.split(',') {
        if entry.is_empty() {
            return Err(SigningError::EmptySignedEntry);
        }
        if signed.contains(&entry) {
            return Err(SigningError::DuplicateSignedEntry(entry.to_owned()));
        }
        signed.push(entry);
    }
    if let Some(unsigned) = must_sign(message.version())
        .iter()
        .find(|k| message.get(k).is_some() && !signed.contains(k))
    {
        return Err(SigningError::NotSigned(unsigned));
    }
    let token = token_contents(message, &signed)?;
    let given = BASE64
        .decode(sig_text)
        .map_err(|_| SigningError::SignatureNotBase64)?;
    let expected = mac(assoc_type, mac_key, token.as_bytes());
    if bool::from(expected.ct_eq(&given)) {
        Ok(())
    } else {
        Err(SigningError::BadSignature)
    }
}

/// `2005-05-15T17:11:51Z`: RFC 3339 in UTC, whole seconds (§10.1; PAPE `auth_time`).
pub fn format_timestamp(time: OffsetDateTime) -> Result<String, NonceError> {
    let t = time.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(NonceError::YearOutOfRange(t.year()));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// Reads a timestamp as [`format_timestamp`] writes it, from the start of `text`; returns
/// the time and the rest of the text.
pub fn parse_timestamp(text: &str) -> Result<(OffsetDateTime, &str), NonceError> {
    let bad = || NonceError::BadTimestamp(text.to_owned());
    let (stamp, rest) = match (text.get(..20), text.get(20..)) {
        (Some(stamp), Some(rest)) => (stamp, rest),
        _ => return Err(bad()),
    };
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let time = PrimitiveDateTime::parse(stamp, format).map_err(|_| bad())?;
    Ok((time.assume_utc(), rest))
}

/// A `response_nonce` (§10.1): the time of the response, then `unique` (printable ASCII
/// 33-126, chosen by the caller to make the nonce unique), at most 255 characters.
pub fn format_nonce(time: OffsetDateTime, unique: &str) -> Result<String, NonceError> {
    if let Some(c) = unique.chars().find(|c| !('!'..='~').contains(c)) {
        return Err(NonceError::BadUniqueChar(c));
    }
    let nonce = format_timestamp(time)? + unique;
    if nonce.len() > MAX_NONCE_LEN {
        return Err(NonceError::TooLong(nonce.len()));
    }
    Ok(nonce)
}

/// The time at the start of a `response_nonce`, which bounds how long it must be remembered.
pub fn parse_nonce(nonce: &str) -> Result<OffsetDateTime, NonceError> {
    if nonce.len() > MAX_NONCE_LEN {
        return Err(NonceError::TooLong(nonce.len()));
    }
    let (time, unique) = parse_timestamp(nonce)?;
    if let Some(c) = unique.chars().find(|c| !('!'..='~').contains(c)) {
        return Err(NonceError::BadUniqueChar(c));
    }
    Ok(time)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::openid2::OPENID2_NS;
    use crate::secret::Secret;
    use time::macros::datetime;

    fn assertion() -> Message {
        let mut m = Message::new(Version::V2);
        m.set("mode", "id_res");
        m.set("op_endpoint", "https://op.example/openid");
        m.set("claimed_id", "https://op.example/id/abc");
        m.set("identity", "https://op.example/id/abc");
        m.set("return_to", "https://rp.example/back?x=1");
        m.set("response_nonce", "2005-05-15T17:11:51ZUNIQUE");
        m.set("assoc_handle", "h1");
        m.set("ns.sreg", "http://openid.net/extensions/sreg/1.1");
        m.set("sreg.nickname", "alice");
        m
    }

    #[test]
    fn signs_every_field_and_verifies() {
        for assoc_type in [AssocType::HmacSha1, AssocType::HmacSha256] {
            let key: MacKey = Secret::new(vec![0x0b; assoc_type.mac_key_len()]);
            let mut m = assertion();
            sign(&mut m, assoc_type, &key).unwrap();
            assert_eq!(
                m.get("signed"),
                Some(
                    "ns,mode,op_endpoint,claimed_id,identity,return_to,response_nonce,\
                     assoc_handle,ns.sreg,sreg.nickname"
                )
            );
            verify(&m, assoc_type, &key).unwrap();
            // Signing again replaces the old signature rather than signing it.
            sign(&mut m, assoc_type, &key).unwrap();
            verify(&m, assoc_type, &key).unwrap();
            let other: MacKey = Secret::new(vec![0x0c; assoc_type.mac_key_len()]);
            assert_eq!(
                verify(&m, assoc_type, &other),
                Err(SigningError::BadSignature)
            );
            let mut tampered = m.clone();
            tampered.set("sreg.nickname", "mallory");
            assert_eq!(
                verify(&tampered, assoc_type, &key),
                Err(SigningError::BadSignature)
            );
        }
    }

    #[test]
    fn signature_matches_python_hmac() {
        // python3: base64.b64encode(hmac.new(b'\x0b'*20, token, hashlib.sha1).digest())
        let key: MacKey = Secret::new(vec![0x0b; 20]);
        let mut m = Message::new(Version::V2);
        m.set("mode", "id_res");
        m.set("op_endpoint", "https://op.example/openid");
        m.set("return_to", "https://rp.example/");
        m.set("response_nonce", "2005-05-15T17:11:51ZUNIQUE");
        m.set("assoc_handle", "h1");
        sign(&mut m, AssocType::HmacSha1, &key).unwrap();
        let token = token_contents(
            &m,
            &[
                "ns",
                "mode",
                "op_endpoint",
                "return_to",
                "response_nonce",
                "assoc_handle",
            ],
        )
        .unwrap();
        assert_eq!(
            token,
            format!(
                "ns:{OPENID2_NS}\nmode:id_res\nop_endpoint:https://op.example/openid\n\
                 return_to:https://rp.example/\nresponse_nonce:2005-05-15T17:11:51ZUNIQUE\n\
                 assoc_handle:h1\n"
            )
        );
        assert_eq!(m.get("sig"), Some(PY_SHA1_SIG));
        let key256: MacKey = Secret::new(vec![0x0b; 32]);
        assert_eq!(
            BASE64.encode(mac(AssocType::HmacSha256, &key256, token.as_bytes())),
            PY_SHA256_SIG
        );
    }

    const PY_SHA1_SIG: &str = "0XWBZgiS9vhZMkgtlTiGFfyzohA=";
    const PY_SHA256_SIG: &str = "9S0Se4JhwVhguYXewbLDA6ZdaU7JQGHhMlIYPzdwkxM=";

    #[test]
    fn check_authentication_verifies_as_id_res() {
        let key: MacKey = Secret::new(vec![1; 32]);
        let mut m = assertion();
        sign(&mut m, AssocType::HmacSha256, &key).unwrap();
        let mut pairs = m.to_form_fields();
        for (k, v) in &mut pairs {
            if k == "openid.mode" {
                *v = "check_authentication".to_owned();
            }
        }
        let request = Message::from_pairs(&pairs).unwrap();
        verify(&request, AssocType::HmacSha256, &key).unwrap();
    }

    #[test]
    fn sign_requires_the_fields_of_section_10_1() {
        let key: MacKey = Secret::new(vec![1; 20]);
        let mut m = assertion();
        m.remove("response_nonce");
        assert_eq!(
            sign(&mut m, AssocType::HmacSha1, &key),
            Err(SigningError::Missing("response_nonce"))
        );
        let mut v1 = Message::new(Version::V1);
        v1.set("mode", "id_res");
        v1.set("return_to", "http://rp.example/");
        assert_eq!(
            sign(&mut v1, AssocType::HmacSha1, &key),
            Err(SigningError::Missing("assoc_handle"))
        );
        v1.set("assoc_handle", "h");
        v1.set("identity", "http://op.example/id/x");
        sign(&mut v1, AssocType::HmacSha1, &key).unwrap();
        assert_eq!(
            v1.get("signed"),
            Some("mode,return_to,assoc_handle,identity")
        );
        verify(&v1, AssocType::HmacSha1, &key).unwrap();
    }

    #[test]
    fn verify_names_each_fault() {
        let key: MacKey = Secret::new(vec![1; 20]);
        let mut m = assertion();
        sign(&mut m, AssocType::HmacSha1, &key).unwrap();
        let with = |signed: &str| {
            let mut c = m.clone();
            c.set("signed", signed);
            verify(&c, AssocType::HmacSha1, &key)
        };
        assert_eq!(
            with("op_endpoint,return_to,response_nonce,assoc_handle,claimed_id"),
            Err(SigningError::NotSigned("identity"))
        );
        assert_eq!(with("a,,b"), Err(SigningError::EmptySignedEntry));
        assert_eq!(
            with("mode,mode"),
            Err(SigningError::DuplicateSignedEntry("mode".into()))
        );
        assert_eq!(
            with("op_endpoint,return_to,response_nonce,assoc_handle,claimed_id,identity,nope"),
            Err(SigningError::SignedFieldMissing("nope".into()))
        );
        let mut c = m.clone();
        c.set("sig", "***");
        assert_eq!(
            verify(&c, AssocType::HmacSha1, &key),
            Err(SigningError::SignatureNotBase64)
        );
        c.remove("sig");
        assert_eq!(
            verify(&c, AssocType::HmacSha1, &key),
            Err(SigningError::NoSignature)
        );
        c.remove("signed");
        assert_eq!(
            verify(&c, AssocType::HmacSha1, &key),
            Err(SigningError::NoSignedList)
        );
        // A signature made with the other hash does not verify.
        assert_eq!(
            verify(&m, AssocType::HmacSha256, &key),
            Err(SigningError::BadSignature)
        );
    }

    #[test]
    fn nonces_carry_a_utc_timestamp() {
        let t = datetime!(2005-05-15 19:11:51 +02:00);
        assert_eq!(format_timestamp(t).unwrap(), "2005-05-15T17:11:51Z");
        let nonce = format_nonce(t, "UNIQUE").unwrap();
        assert_eq!(nonce, "2005-05-15T17:11:51ZUNIQUE");
        assert_eq!(
            parse_nonce(&nonce).unwrap(),
            datetime!(2005-05-15 17:11:51 UTC)
        );
        assert_eq!(format_nonce(t, "").unwrap(), "2005-05-15T17:11:51Z");
        assert_eq!(
            parse_timestamp("2005-05-15T17:11:51Zrest").unwrap(),
            (datetime!(2005-05-15 17:11:51 UTC), "rest")
        );
        let subsecond = datetime!(2005-05-15 17:11:51.999 UTC);
        assert_eq!(format_timestamp(subsecond).unwrap(), "2005-05-15T17:11:51Z");
    }

    #[test]
    fn nonce_errors_are_named() {
        let t = datetime!(2005-05-15 17:11:51 UTC);
        assert_eq!(format_nonce(t, "a b"), Err(NonceError::BadUniqueChar(' ')));
        assert_eq!(format_nonce(t, "é"), Err(NonceError::BadUniqueChar('é')));
        assert_eq!(
            format_nonce(t, &"x".repeat(236)),
            Err(NonceError::TooLong(256))
        );
        assert_eq!(format_nonce(t, &"x".repeat(235)).unwrap().len(), 255);
        assert_eq!(
            format_timestamp(datetime!(-0001-01-01 0:00 UTC)),
            Err(NonceError::YearOutOfRange(-1))
        );
        for bad in [
            "",
            "2005-05-15T17:11:51",
            "2005-05-15 17:11:51Z",
            "2005-13-15T17:11:51Z",
        ] {
            assert_eq!(
                parse_nonce(bad),
                Err(NonceError::BadTimestamp(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_nonce("2005-05-15T17:11:51Zx\ty"),
            Err(NonceError::BadUniqueChar('\t'))
        );
        assert!(matches!(
            parse_nonce(&"2".repeat(300)),
            Err(NonceError::TooLong(300))
        ));
    }
}
