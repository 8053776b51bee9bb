//! What `/authorize` hands out and `/token` redeems, pure (DESIGN.md §2.7): authorization codes
//! and refresh tokens with their stored hashes, grant ids, PKCE (RFC 7636) and scopes
//! (RFC 6749 §3.3, OpenID Connect Core §5.4, §11).
//!
//! No I/O: randomness comes through [`Entropy`] and the time is a parameter, so tests are
//! exact.
//!
//! - Codes and refresh tokens carry 32 random bytes, base64url without padding (43
//!   characters): 256 bits, far beyond RFC 6749 §10.10's 2^-128 guessing bound. The database
//!   keeps only their SHA-256 ([`TokenHash`]); for a uniformly random 256-bit value a plain
//!   hash is as good as a slow one, and a leaked table yields nothing to present. A code
//!   starts with its issue time, and its key in the database with that time then 208 bits of
//!   the hash, as grant ids start with theirs: rows written together sit together
//!   ([`TokenHash::of_code`]).
//! - PKCE: only `S256` (RFC 7636 §4.2). A challenge without a method means `plain` (§4.3) and
//!   is refused like `plain` itself, since `plain` protects nothing against a code
//!   interceptor who can read the authorization request. The verifier is checked as §4.6
//!   says, in constant time; a `code_verifier` sent for a code issued without a challenge is
//!   refused too (RFC 9700 §2.1.1: otherwise an attacker could downgrade PKCE).
//! - Scopes: `openid` is required (this is an OpenID Connect provider, and without it Core
//!   §3.1.2.1 leaves the behaviour unspecified). Unknown scope values are ignored, as Core
//!   §3.1.2.1 says ("Scope values used that are not understood by an implementation SHOULD be
//!   ignored") and RFC 6749 §3.3 allows; the token response then names the scopes granted.
//!   A value that breaks the RFC 6749 §3.3 syntax is refused (`invalid_scope`).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use time::OffsetDateTime;

use crate::secret::Secret;

/// Where random bytes come from: the operating system in production, a fixed sequence in tests.
pub trait Entropy {
    fn fill(&mut self, dest: &mut [u8]);
}

/// The operating system's random generator (through `rand`'s thread-local CSPRNG).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        rand::Rng::fill(&mut rand::rng(), dest);
    }
}

/// The bytes of a new code or token.
const TOKEN_BYTES: usize = 32;
/// The bytes of a new grant id or JWT id: unique, not secret.
const ID_BYTES: usize = 16;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_b64<const N: usize>(rng: &mut dyn Entropy) -> Secret<String> {
    let mut bytes = Secret::new([0u8; N]);
    rng.fill(bytes.expose_mut());
    Secret::new(b64(bytes.expose()))
}

/// The base64url characters in ASCII order: a string of them sorts as the number it encodes.
const SORTABLE: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/// Characters that encode a time: 48 bits of milliseconds since 1970.
const TIME_CHARS: usize = 8;

/// `now` in milliseconds as [`TIME_CHARS`] characters of [`SORTABLE`]: later times sort later.
fn sortable_time(now: OffsetDateTime) -> String {
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    (0..TIME_CHARS)
        .rev()
        .map(|i| char::from(SORTABLE[((millis >> (6 * i)) & 63) as usize]))
        .collect()
}

/// The number a string of [`SORTABLE`] characters encodes; `None` for any other character.
fn sortable_value(text: &str) -> Option<u64> {
    text.bytes().try_fold(0u64, |value, b| {
        let digit = SORTABLE.iter().position(|&c| c == b)?;
        Some((value << 6) | digit as u64)
    })
}

/// SHA-256 of a code or refresh token: the only form in which the database knows them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of a value as presented (any string: an unknown one simply matches no row).
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    /// The key of an authorization code as presented: the issue time its first characters
    /// carry (6 bytes of milliseconds), then the first 26 bytes of SHA-256 of the whole code.
    /// Codes issued together get neighbouring keys, so a batch of them is written to one
    /// B-tree page and redeemed from it, instead of one random page each. Knowing the time
    /// helps nobody find a code: the 208 bits of hash still have to match.
    pub fn of_code(presented: &str) -> Self {
        let digest = Sha256::digest(presented.as_bytes());
        let mut key = [0u8; 32];
        if let Some(millis) = presented.get(..TIME_CHARS).and_then(sortable_value) {
            key[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        }
        key[6..].copy_from_slice(&digest[..26]);
        Self(key)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From a stored hash; `None` unless it is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for TokenHash {
    /// A prefix is enough to tell hashes apart in logs; the hash is not a secret anyway.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..6]))
    }
}

macro_rules! secret_token {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Not `Clone`: it is handed out once. `Debug` prints `[redacted]`.
        pub struct $name(Secret<String>);

        impl $name {
            /// A new one: 32 bytes from `rng`, base64url (43 characters).
            pub fn generate(rng: &mut dyn Entropy) -> Self {
                Self(random_b64::<TOKEN_BYTES>(rng))
            }

            /// The value to send to the client. Call sites are the places to audit.
            pub fn expose(&self) -> &str {
                self.0.expose()
            }

            /// What the database stores instead of the value.
            pub fn hash(&self) -> TokenHash {
                TokenHash::of(self.0.expose())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

/// An authorization code (RFC 6749 §4.1.2): single use, short-lived. Its issue time (8
/// characters, see [`TokenHash::of_code`]) then 32 random bytes, base64url: 51 characters.
///
/// Not `Clone`: it is handed out once. `Debug` prints `[redacted]`.
pub struct AuthorizationCode(Secret<String>);

impl AuthorizationCode {
    pub fn generate(rng: &mut dyn Entropy, now: OffsetDateTime) -> Self {
        let random = random_b64::<TOKEN_BYTES>(rng);
        let mut code = sortable_time(now);
        code.push_str(random.expose());
        Self(Secret::new(code))
    }

    /// The value to send to the client. Call sites are the places to audit.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// What the database stores instead of the value.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of_code(self.0.expose())
    }
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizationCode([redacted])")
    }
}

secret_token!(
    /// A refresh token (RFC 6749 §1.5, §6): rotated at each use.
    RefreshToken
);

/// Why an identifier read back from a token or the database was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not 22 base64url characters")]
pub struct InvalidGrantId {
    what: &'static str,
    value: String,
}

fn parse_id(what: &'static str, s: &str) -> Result<String, InvalidGrantId> {
    let ok = s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(InvalidGrantId {
            what,
            value: s.chars().take(40).collect(),
        })
    }
}

/// One authorization a subscriber gave a client: every code and token issued from it
/// carries its id, and revoking it revokes them all. 22 base64url characters: the creation
/// time in milliseconds (8 characters), then 84 random bits, in an alphabet whose ASCII order
/// is its value order. Ids therefore sort by creation time, and a new grant's row goes to the
/// end of the table's B-tree: a batch of grants written together changes one leaf page, not
/// one random page each.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantId(String);

impl GrantId {
    pub fn generate(rng: &mut dyn Entropy, now: OffsetDateTime) -> Self {
        let mut id = sortable_time(now);
        let mut random = [0u8; 22 - TIME_CHARS];
        rng.fill(&mut random);
        // 64 divides 256: the low six bits of a uniform byte are uniform.
        id.extend(
            random
                .iter()
                .map(|b| char::from(SORTABLE[usize::from(b & 63)])),
        );
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for GrantId {
    type Err = InvalidGrantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_id("grant id", s).map(Self)
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JWT's `jti` (RFC 7519 §4.1.7): 16 random bytes, base64url; unique per token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwtId(String);

impl JwtId {
    pub fn generate(rng: &mut dyn Entropy) -> Self {
        let mut bytes = [0u8; ID_BYTES];
        rng.fill(&mut bytes);
        Self(b64(&bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for JwtId {
    type Err = InvalidGrantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_id("jti", s).map(Self)
    }
}

/// Why PKCE parameters were refused. [`PkceError::oauth_error`] names the RFC 6749 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error(
        "code_challenge_method is plain (or missing, which means plain): only S256 is supported"
    )]
    PlainRefused,
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    #[error("code_challenge_method without a code_challenge")]
    MethodWithoutChallenge,
    #[error("code_challenge is not 43 base64url characters (BASE64URL(SHA-256(code_verifier)))")]
    MalformedChallenge,
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)")]
    MalformedVerifier,
    #[error("the authorization request had a code_challenge: code_verifier is required")]
    MissingVerifier,
    #[error("code_verifier sent for a code issued without a code_challenge")]
    UnexpectedVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

impl PkceError {
    /// The RFC 6749 error code: `invalid_request` at /authorize (§4.4.1), `invalid_grant` at
    /// /token (§4.6).
    pub fn oauth_error(self) -> &'static str {
        match self {
            Self::PlainRefused
            | Self::UnsupportedMethod
            | Self::MethodWithoutChallenge
            | Self::MalformedChallenge => "invalid_request",
            Self::MalformedVerifier
            | Self::MissingVerifier
            | Self::UnexpectedVerifier
            | Self::Mismatch => "invalid_grant",
        }
    }
}

/// An S256 `code_challenge` (RFC 7636 §4.2): BASE64URL(SHA-256(code_verifier)), 43 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The PKCE parameters of an authorization request (RFC 7636 §4.3): `None` when the
    /// client sent none; S256 only.
    pub fn from_request(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Option<Self>, PkceError> {
        match (challenge, method) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(PkceError::MethodWithoutChallenge),
            (Some(_), None | Some("plain")) => Err(PkceError::PlainRefused),
            (Some(challenge), Some("S256")) => challenge.parse().map(Some),
            (Some(_), Some(_)) => Err(PkceError::UnsupportedMethod),
        }
    }

    /// The S256 challenge of a verifier (the client's side, RFC 7636 §4.2).
    pub fn s256(verifier: &str) -> Self {
        Self(b64(&Sha256::digest(verifier.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: BASE64URL(SHA-256(ASCII(code_verifier))) == code_challenge, after
    /// checking the verifier's syntax (§4.1). Constant time in the comparison.
    pub fn verify(&self, verifier: &str) -> Result<(), PkceError> {
        let ok_syntax = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !ok_syntax {
            return Err(PkceError::MalformedVerifier);
        }
        let computed = Self::s256(verifier);
        if bool::from(computed.0.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(PkceError::Mismatch)
        }
    }
}

impl FromStr for CodeChallenge {
    type Err = PkceError;

    /// An S256 challenge: 43 base64url characters, which is 32 bytes (§4.2).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() == 43 && URL_SAFE_NO_PAD.decode(s).is_ok_and(|d| d.len() == 32);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(PkceError::MalformedChallenge)
        }
    }
}

/// The PKCE check at /token (RFC 7636 §4.5, §4.6; RFC 9700 §2.1.1): the code's stored
/// challenge against the request's `code_verifier`.
pub fn check_pkce(stored: Option<&CodeChallenge>, verifier: Option<&str>) -> Result<(), PkceError> {
    match (stored, verifier) {
        (None, None) => Ok(()),
        (Some(challenge), Some(verifier)) => challenge.verify(verifier),
        (Some(_), None) => Err(PkceError::MissingVerifier),
        (None, Some(_)) => Err(PkceError::UnexpectedVerifier),
    }
}

/// A scope value this provider understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Core §3.1.2.1: makes the request an OpenID Connect one.
    Openid,
    /// Core §5.4: `phone_number`, `phone_number_verified` (the MSISDN, with consent).
    Phone,
    /// Core §5.4: the profile claims the operator keeps, with consent.
    Profile,
    /// Core §11: a refresh token for use while the subscriber is away.
    OfflineAccess,
    /// OpenID 2.0 → OpenID Connect Migration 1.0 §4: the `openid2_id` claim.
    Openid2,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Self::Openid,
        Self::Phone,
        Self::Profile,
        Self::OfflineAccess,
        Self::Openid2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openid => "openid",
            Self::Phone => "phone",
            Self::Profile => "profile",
            Self::OfflineAccess => "offline_access",
            Self::Openid2 => "openid2",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Why a `scope` parameter was refused; all are `invalid_scope` (RFC 6749 §5.2, §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope must include openid")]
    MissingOpenid,
    #[error("scope contains {0:?}, which RFC 6749 §3.3 does not allow in a scope value")]
    BadCharacter(char),
    #[error("scope {0:?} was not granted to this refresh token")]
    NotGranted(&'static str),
    #[error("stored scope {0:?} is not one this version knows")]
    Unknown(String),
}

impl ScopeError {
    pub fn oauth_error(&self) -> &'static str {
        "invalid_scope"
    }
}

/// A set of known scopes. Written space-separated in [`Scope::ALL`] order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// The `scope` of an authorization request: `openid` required, unknown values ignored
    /// (see the module docs). Values are separated by spaces (RFC 6749 §3.3); runs of spaces
    /// and spaces at either end are tolerated.
    pub fn from_request(text: &str) -> Result<Self, ScopeError> {
        let scopes = Self::parse_lenient(text)?;
        if scopes.contains(Scope::Openid) {
            Ok(scopes)
        } else {
            Err(ScopeError::MissingOpenid)
        }
    }

    /// The `scope` of a refresh request (RFC 6749 §6): a subset of what `self` granted;
    /// `None` (no parameter) keeps all of it. A known scope not granted is refused, unknown
    /// ones are ignored as at /authorize. Without `openid` the answer carries no ID token
    /// (Core §12.2: it "might not contain an id_token").
    pub fn narrow(self, requested: Option<&str>) -> Result<Self, ScopeError> {
        let Some(text) = requested else {
            return Ok(self);
        };
        let asked = Self::parse_lenient(text)?;
        if let Some(extra) = asked.iter().find(|s| !self.contains(*s)) {
            return Err(ScopeError::NotGranted(extra.as_str()));
        }
        Ok(asked)
    }

    /// A stored value, written by [`Scopes::to_string`]: every value must be known.
    pub fn from_stored(text: &str) -> Result<Self, ScopeError> {
        let mut scopes = Self::default();
        for name in text.split(' ').filter(|n| !n.is_empty()) {
            let scope = Scope::from_name(name).ok_or_else(|| ScopeError::Unknown(name.into()))?;
            scopes = scopes.with(scope);
        }
        Ok(scopes)
    }

    fn parse_lenient(text: &str) -> Result<Self, ScopeError> {
        // scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), RFC 6749 §3.3.
        if let Some(bad) = text
            .chars()
            .find(|&c| c != ' ' && (!c.is_ascii_graphic() || c == '"' || c == '\\'))
        {
            return Err(ScopeError::BadCharacter(bad));
        }
        Ok(text
            .split(' ')
            .filter_map(Scope::from_name)
            .fold(Self::default(), Self::with))
    }

    #[must_use]
    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Entropy that yields 0, 1, 2, … so every generated value is known in advance.
    #[derive(Debug, Default)]
    pub(crate) struct Counting(pub u8);

    impl Entropy for Counting {
        fn fill(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.0;
                self.0 = self.0.wrapping_add(1);
            }
        }
    }

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(CodeChallenge::s256(VERIFIER).as_str(), CHALLENGE);
        let challenge = CodeChallenge::from_request(Some(CHALLENGE), Some("S256"))
            .unwrap()
            .unwrap();
        assert_eq!(challenge.verify(VERIFIER), Ok(()));
        assert_eq!(check_pkce(Some(&challenge), Some(VERIFIER)), Ok(()));
    }

    #[test]
    fn pkce_wrong_verifier_is_a_mismatch() {
        let challenge: CodeChallenge = CHALLENGE.parse().unwrap();
        let mut wrong = VERIFIER.to_owned();
        wrong.replace_range(0..1, "e");
        assert_eq!(challenge.verify(&wrong), Err(PkceError::Mismatch));
        assert_eq!(PkceError::Mismatch.oauth_error(), "invalid_grant");
    }

    #[test]
    fn pkce_verifier_syntax_is_checked_first() {
        let challenge: CodeChallenge = CHALLENGE.parse().unwrap();
        // 42 characters: one short of §4.1's minimum.
        assert_eq!(
            challenge.verify(&VERIFIER[..42]),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            challenge.verify(&"a".repeat(129)),
            Err(PkceError::MalformedVerifier)
        );
        let with_plus = format!("{}+", &VERIFIER[..42]);
        assert_eq!(
            challenge.verify(&with_plus),
            Err(PkceError::MalformedVerifier)
        );
        // The longest allowed verifier, with every unreserved punctuation character.
        let long = format!("{}-._~", "A".repeat(124));
        let long_challenge = CodeChallenge::s256(&long);
        assert_eq!(long_challenge.verify(&long), Ok(()));
    }

    #[test]
    fn pkce_request_parameters_s256_only() {
        assert_eq!(CodeChallenge::from_request(None, None), Ok(None));
        assert_eq!(
            CodeChallenge::from_request(Some(CHALLENGE), None),
            Err(PkceError::PlainRefused),
            "no method means plain (RFC 7636 §4.3)"
        );
        assert_eq!(
            CodeChallenge::from_request(Some(CHALLENGE), Some("plain")),
            Err(PkceError::PlainRefused)
        );
        assert_eq!(
            CodeChallenge::from_request(Some(CHALLENGE), Some("s256")),
            Err(PkceError::UnsupportedMethod),
            "method names are case-sensitive"
        );
        assert_eq!(
            CodeChallenge::from_request(None, Some("S256")),
            Err(PkceError::MethodWithoutChallenge)
        );
        assert_eq!(
            CodeChallenge::from_request(Some(&CHALLENGE[..42]), Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
        assert_eq!(
            CodeChallenge::from_request(Some(&format!("{}=", &CHALLENGE[..42])), Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
        assert_eq!(PkceError::PlainRefused.oauth_error(), "invalid_request");
    }

    #[test]
    fn pkce_at_the_token_endpoint_needs_both_or_neither() {
        let challenge: CodeChallenge = CHALLENGE.parse().unwrap();
        assert_eq!(check_pkce(None, None), Ok(()));
        assert_eq!(
            check_pkce(Some(&challenge), None),
            Err(PkceError::MissingVerifier)
        );
        assert_eq!(
            check_pkce(None, Some(VERIFIER)),
            Err(PkceError::UnexpectedVerifier),
            "RFC 9700 §2.1.1: no PKCE downgrade"
        );
    }

    #[test]
    fn codes_and_tokens_are_32_random_bytes_base64url() {
        let mut rng = Counting(0);
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let code = AuthorizationCode::generate(&mut rng, at);
        assert_eq!(code.expose().len(), 51);
        // The issue time, then the 32 random bytes.
        assert_eq!(
            code.expose(),
            "-NjEtLV-AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
        let token = RefreshToken::generate(&mut rng);
        let expected: Vec<u8> = (32..64).collect();
        assert_eq!(token.expose(), URL_SAFE_NO_PAD.encode(&expected));
        let grant = GrantId::generate(&mut rng, at);
        // 1_700_000_000_000 ms in six-bit digits, most significant first.
        assert_eq!(&grant.as_str()[..8], "-NjEtLV-");
        // Then the low six bits of the bytes 64, 65, …: 0, 1, …
        assert_eq!(&grant.as_str()[8..], "-0123456789ABC");
        assert_eq!(grant.as_str().parse::<GrantId>(), Ok(grant.clone()));
        let jti = JwtId::generate(&mut rng);
        assert_eq!(jti.as_str().len(), 22);
        assert_ne!(jti.as_str(), grant.as_str());
    }

    #[test]
    fn grant_ids_sort_by_creation_time() {
        let at = |ms: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        };
        let mut ids: Vec<String> = [
            1_700_000_000_000,
            1_700_000_000_001,
            1_700_000_000_064,
            1_800_000_000_000,
        ]
        .into_iter()
        .map(|ms| {
            GrantId::generate(&mut OsEntropy, at(ms))
                .as_str()
                .to_owned()
        })
        .collect();
        let made = ids.clone();
        ids.sort();
        assert_eq!(ids, made);
        assert!(made.iter().all(|id| id.parse::<GrantId>().is_ok()));
    }

    #[test]
    fn os_entropy_gives_different_codes() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let a = AuthorizationCode::generate(&mut OsEntropy, now);
        let b = AuthorizationCode::generate(&mut OsEntropy, now);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 51);
    }

    #[test]
    fn a_code_key_is_its_time_then_its_hash_and_keys_sort_by_time() {
        let at = |ms: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        };
        let code = AuthorizationCode::generate(&mut Counting(0), at(1_700_000_000_000));
        let key = code.hash();
        assert_eq!(key, TokenHash::of_code(code.expose()));
        assert_eq!(key.as_bytes()[..6], 1_700_000_000_000u64.to_be_bytes()[2..]);
        assert_eq!(
            key.as_bytes()[6..],
            TokenHash::of(code.expose()).as_bytes()[..26]
        );
        let later = AuthorizationCode::generate(&mut OsEntropy, at(1_700_000_000_001));
        assert!(later.hash().as_bytes() > key.as_bytes());
        // Another code, or the same one altered, has another key.
        let mut altered = code.expose().to_owned();
        altered.replace_range(50.., "A");
        assert_ne!(TokenHash::of_code(&altered), key);
        assert_ne!(TokenHash::of_code("not a code"), key);
        assert_eq!(TokenHash::of_code("").as_bytes()[..6], [0; 6]);
    }

    #[test]
    fn token_hash_is_sha256_of_the_presented_value() {
        let token = RefreshToken::generate(&mut Counting(0));
        let hash = token.hash();
        assert_eq!(hash, TokenHash::of(token.expose()));
        assert_eq!(
            hex::encode(TokenHash::of("abc").as_bytes()),
            // FIPS 180-2 Appendix B.1.
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TokenHash::from_slice(hash.as_bytes()), Some(hash));
        assert_eq!(TokenHash::from_slice(&[0; 31]), None);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let code = AuthorizationCode::generate(&mut Counting(0), now);
        let token = RefreshToken::generate(&mut Counting(0));
        assert_eq!(format!("{code:?}"), "AuthorizationCode([redacted])");
        assert_eq!(format!("{token:?}"), "RefreshToken([redacted])");
        assert!(!format!("{:?}", code.hash()).contains(code.expose()));
    }

    #[test]
    fn grant_ids_are_checked_when_read_back() {
        assert!("AAECAwQFBgcICQoLDA0ODw".parse::<GrantId>().is_ok());
        assert!("AAECAwQFBgcICQoLDA0OD".parse::<GrantId>().is_err());
        assert!("AAECAwQFBgcICQoLDA0OD+".parse::<GrantId>().is_err());
        assert!("".parse::<JwtId>().is_err());
    }

    #[test]
    fn scope_requires_openid_and_ignores_unknown_values() {
        let scopes = Scopes::from_request("openid phone email offline_access").unwrap();
        assert_eq!(scopes.to_string(), "openid phone offline_access");
        assert!(scopes.contains(Scope::Phone));
        assert!(!scopes.contains(Scope::Profile));
        assert_eq!(
            Scopes::from_request("profile phone"),
            Err(ScopeError::MissingOpenid)
        );
        assert_eq!(Scopes::from_request(""), Err(ScopeError::MissingOpenid));
        assert_eq!(
            Scopes::from_request("OPENID"),
            Err(ScopeError::MissingOpenid),
            "scope values are case-sensitive"
        );
        assert_eq!(
            Scopes::from_request("  openid   openid2 ")
                .unwrap()
                .to_string(),
            "openid openid2"
        );
        assert_eq!(
            Scopes::from_request("openid2 profile openid offline_access phone")
                .unwrap()
                .to_string(),
            "openid phone profile offline_access openid2",
            "canonical order"
        );
        assert_eq!(ScopeError::MissingOpenid.oauth_error(), "invalid_scope");
    }

    #[test]
    fn scope_syntax_errors_are_refused() {
        assert_eq!(
            Scopes::from_request("openid \"phone\""),
            Err(ScopeError::BadCharacter('"'))
        );
        assert_eq!(
            Scopes::from_request("openid\tphone"),
            Err(ScopeError::BadCharacter('\t'))
        );
        assert_eq!(
            Scopes::from_request("openid é"),
            Err(ScopeError::BadCharacter('é'))
        );
    }

    #[test]
    fn refresh_scope_may_only_narrow() {
        let granted = Scopes::from_request("openid phone offline_access").unwrap();
        assert_eq!(granted.narrow(None), Ok(granted));
        assert_eq!(
            granted
                .narrow(Some("openid offline_access"))
                .unwrap()
                .to_string(),
            "openid offline_access"
        );
        assert_eq!(
            granted.narrow(Some("openid profile")),
            Err(ScopeError::NotGranted("profile"))
        );
        assert_eq!(
            granted.narrow(Some("openid unknown")).unwrap().to_string(),
            "openid"
        );
    }

    #[test]
    fn stored_scopes_round_trip_and_must_be_known() {
        let scopes = Scopes::from_request("openid phone profile offline_access openid2").unwrap();
        assert_eq!(Scopes::from_stored(&scopes.to_string()), Ok(scopes));
        assert_eq!(
            Scopes::from_stored("openid email"),
            Err(ScopeError::Unknown("email".into()))
        );
        assert_eq!(
            format!("{scopes:?}"),
            "Scopes(openid phone profile offline_access openid2)"
        );
    }
}
