//! Identifier types shared by several modules. Each is validated once, when it is built, so
//! the rest of the code can rely on its shape.

use std::fmt;
use std::str::FromStr;

/// Why an identifier was refused; the message is shown to operators and clients as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(String);

/// IP Multimedia Private Identity: an NAI `user@realm` (TS 23.003 §13.3), e.g.
/// `001010000000001@ims.mnc001.mcc001.3gppnetwork.org`.
///
/// It travels inside quoted Digest parameters and serves as associated data when sealing,
/// so it is restricted to visible ASCII without `"`, `\` and NUL, at most 255 octets.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Impi(String);

impl TryFrom<String> for Impi {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Impi> for String {
    fn from(impi: Impi) -> Self {
        impi.0
    }
}

impl Impi {
    pub const MAX_LEN: usize = 255;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Impi {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(InvalidId("IMPI is empty".into()));
        }
        if s.len() > Self::MAX_LEN {
            return Err(InvalidId(format!(
                "IMPI is {} characters long; at most {} are allowed",
                s.len(),
                Self::MAX_LEN
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !c.is_ascii_graphic() || *c == '"' || *c == '\\')
        {
            return Err(InvalidId(format!(
                "IMPI contains {c:?}; only visible ASCII without quotes and backslashes is allowed"
            )));
        }
        match s.split_once('@') {
            Some((user, realm))
                if !user.is_empty() && !realm.is_empty() && !realm.contains('@') =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(InvalidId(format!(
                "IMPI {s:?} is not of the form user@realm (TS 23.003 §13.3)"
            ))),
        }
    }
}

impl fmt::Display for Impi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subscriber's phone number in E.164 form: `+` and 1 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msisdn(String);

impl Msisdn {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Msisdn {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('+').ok_or_else(|| {
            InvalidId(format!(
                "MSISDN {s:?} must start with + (E.164, e.g. +447700900123)"
            ))
        })?;
        let ok = (1..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId(format!(
                "MSISDN {s:?} must be + and 1 to 15 digits, the first not 0 (E.164)"
            )))
        }
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OpenID Connect client's `client_id` (RFC 6749 §2.2): 128 random bits, base64url without
/// padding (22 characters), made by [`ClientId::from_random`]. Parsing accepts any 1 to 255
/// unreserved URL characters (RFC 3986 §2.3), so an identifier from a request is looked up
/// (and found or not) without escaping anywhere; it is compared exactly.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_LEN: usize = 255;

    /// A new client_id from 16 random bytes.
    pub fn from_random(bytes: &[u8; 16]) -> Self {
        use base64::Engine as _;
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(InvalidId(format!(
                "client_id must be 1 to {} characters long",
                Self::MAX_LEN
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~')))
        {
            return Err(InvalidId(format!(
                "client_id contains {c:?}; only letters, digits, '-', '_', '.' and '~' are allowed"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for ClientId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> Self {
        id.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impi_accepts_nais() {
        for ok in [
            "001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
            "user1_private@home1.net",
        ] {
            assert_eq!(ok.parse::<Impi>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn impi_refusals_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("nobody", "user@realm"),
            ("@realm", "user@realm"),
            ("a@b@c", "user@realm"),
            ("a b@c", "' '"),
            ("a\"b@c", "'\"'"),
            ("a\u{e9}@c", "'é'"),
        ] {
            let err = bad.parse::<Impi>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        let long = format!("{}@x", "a".repeat(300));
        assert!(
            long.parse::<Impi>()
                .unwrap_err()
                .to_string()
                .contains("at most 255")
        );
    }

    #[test]
    fn msisdn_is_e164() {
        assert!("+447700900123".parse::<Msisdn>().is_ok());
        for bad in ["447700900123", "+", "+0123", "+12345678901234567", "+12a4"] {
            assert!(bad.parse::<Msisdn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids_are_url_safe() {
        let id = ClientId::from_random(&[0xfb; 16]);
        assert_eq!(id.as_str().len(), 22);
        assert_eq!(id.as_str().parse::<ClientId>().unwrap(), id);
        assert!(id.as_str().bytes().all(|b| b != b'+' && b != b'/'));
        for bad in ["", "a b", "a/b", "a%20", "caf\u{e9}"] {
            assert!(bad.parse::<ClientId>().is_err(), "{bad}");
        }
        assert!("x".repeat(256).parse::<ClientId>().is_err());
    }
}
