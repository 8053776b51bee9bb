//! The bootstrapping transaction identifier (TS 33.220 §4.5.2): B-TID = base64(RAND) "@" BSF
//! server name, in NAI form (TS 23.003 §19.3.4 uses the same RAND-based construction), so a NAF
//! can tell from the B-TID which BSF to ask over Zn.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::aka::Rand;

/// Why a B-TID was refused. Messages do not repeat the value: a B-TID names a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtidError {
    #[error("B-TID is longer than {} characters", Btid::MAX_LEN)]
    TooLong,
    #[error("B-TID has no '@' between RAND and the BSF host")]
    NoAt,
    #[error("B-TID does not start with base64 of a 16-octet RAND")]
    BadRand,
    #[error("B-TID has an empty BSF host")]
    EmptyHost,
    #[error("B-TID contains whitespace, a quote, a backslash or a control character")]
    BadCharacter,
}

/// A B-TID: `base64(RAND)@bsf-host`. Validated when built, so it can go into a quoted Digest
/// `username`, a JSON string or XML text as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Btid {
    value: String,
    rand: Rand,
}

impl Btid {
    /// NAI length limit (RFC 7542 §2.2 lets implementations stop at 253; the B-TID is a
    /// Digest username, and 255 octets is what the HSS accepts for IMPIs).
    pub const MAX_LEN: usize = 255;

    /// The B-TID for a bootstrapping with `rand` at the BSF whose host name is `bsf_host`.
    pub fn new(rand: &Rand, bsf_host: &str) -> Result<Self, BtidError> {
        let value = format!("{}@{}", STANDARD.encode(rand.0), bsf_host);
        check_text(&value, bsf_host)?;
        Ok(Self { value, rand: *rand })
    }

    /// The RAND of the bootstrapping run this B-TID names.
    pub fn rand(&self) -> Rand {
        self.rand
    }

    /// The BSF host part, after the '@'.
    pub fn host(&self) -> &str {
        // Base64 has no '@', so the first one ends the RAND part.
        self.value.split_once('@').map_or("", |(_, host)| host)
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// Checks what `FromStr` and `new` share; the RAND part is base64 and so already clean.
fn check_text(value: &str, host: &str) -> Result<(), BtidError> {
    if value.len() > Btid::MAX_LEN {
        return Err(BtidError::TooLong);
    }
    if host.is_empty() {
        return Err(BtidError::EmptyHost);
    }
    // A second '@' would make the NAI ambiguous; quotes, backslashes and controls would need
    // escaping in the Digest username and in logs.
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '@'))
    {
        return Err(BtidError::BadCharacter);
    }
    Ok(())
}

impl FromStr for Btid {
    type Err = BtidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > Self::MAX_LEN {
            return Err(BtidError::TooLong);
        }
        let (rand_b64, host) = s.split_once('@').ok_or(BtidError::NoAt)?;
        // Strict, padded base64: the B-TID is looked up as a string, so only the one
        // canonical spelling of a RAND may name it.
        let rand: [u8; 16] = STANDARD
            .decode(rand_b64)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(BtidError::BadRand)?;
        check_text(s, host)?;
        Ok(Self {
            value: s.to_owned(),
            rand: Rand(rand),
        })
    }
}

impl TryFrom<String> for Btid {
    type Error = BtidError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Btid> for String {
    fn from(btid: Btid) -> Self {
        btid.value
    }
}

impl fmt::Display for Btid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAND: Rand = Rand([
        0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf,
        0x35,
    ]);

    #[test]
    fn new_formats_and_parses_back() {
        let btid = Btid::new(&RAND, "127.0.0.1").unwrap();
        assert_eq!(btid.as_str(), "I1U8vpY3qJ0hiuZNrke/NQ==@127.0.0.1");
        assert_eq!(btid.to_string(), btid.as_str());
        assert_eq!(btid.rand(), RAND);
        assert_eq!(btid.host(), "127.0.0.1");
        let parsed: Btid = btid.as_str().parse().unwrap();
        assert_eq!(parsed, btid);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let btid = Btid::new(&RAND, "bsf.example").unwrap();
        let json = serde_json::to_string(&btid).unwrap();
        assert_eq!(json, "\"I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example\"");
        assert_eq!(serde_json::from_str::<Btid>(&json).unwrap(), btid);
        assert!(serde_json::from_str::<Btid>("\"nope\"").is_err());
    }

    #[test]
    fn bad_btids_are_refused() {
        let long = format!("I1U8vpY3qJ0hiuZNrke/NQ==@{}", "a".repeat(240));
        for (text, err) in [
            ("I1U8vpY3qJ0hiuZNrke/NQ==", BtidError::NoAt),
            ("I1U8vpY3qJ0hiuZNrke/NQ==@", BtidError::EmptyHost),
            ("I1U8vpY3qJ0hiuZNrke/NQ@bsf", BtidError::BadRand),
            ("I1U8vpY3qJ0hiuZNrke/NQ==x@bsf", BtidError::BadRand),
            ("AAAA@bsf", BtidError::BadRand),
            ("@bsf", BtidError::BadRand),
            ("I1U8vpY3qJ0hiuZNrke/NQ==@bsf host", BtidError::BadCharacter),
            ("I1U8vpY3qJ0hiuZNrke/NQ==@bsf\"", BtidError::BadCharacter),
            ("I1U8vpY3qJ0hiuZNrke/NQ==@bsf\n", BtidError::BadCharacter),
            ("I1U8vpY3qJ0hiuZNrke/NQ==@a@b", BtidError::BadCharacter),
            (long.as_str(), BtidError::TooLong),
        ] {
            assert_eq!(text.parse::<Btid>(), Err(err.clone()), "{text:?}");
        }
        assert_eq!(Btid::new(&RAND, ""), Err(BtidError::EmptyHost));
        assert_eq!(Btid::new(&RAND, "a b"), Err(BtidError::BadCharacter));
    }
}
