//! JOSE for the OpenID Connect provider: signing keys, JWTs as compact JWS (RFC 7515 §7.1,
//! RFC 7519), public JWKs and JWK Sets (RFC 7517, RFC 7518 §6, RFC 8037 §2), JWK thumbprints
//! as key ids (RFC 7638), and `at_hash`/`c_hash` (OpenID Connect Core §3.1.3.6, §3.3.2.11).
//!
//! Pure: no I/O and no clock (times are arguments). Randomness comes from the operating
//! system where the algorithms need it: key generation and ECDSA signatures.
//!
//! Three algorithms, and only these (DESIGN.md §2.7): RS256 (RSA 2048, the default every
//! relying party verifies), ES256 (P-256) and EdDSA (Ed25519). Signing and verifying run on
//! `ring`, whose RSA is constant-time; the `rsa` crate only generates RSA keys, which `ring`
//! cannot. A token's `alg` must be one of the three and must be the `alg` of the JWK its `kid`
//! names, so `none`, HMAC with a public key as the secret, or a key used for another algorithm
//! are refused before any signature check.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256, Sha512};
use time::OffsetDateTime;

use crate::secret::Secret;

/// The JWS algorithms the OP signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[allow(clippy::upper_case_acronyms)] // the JOSE names, as they appear on the wire
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048: what a client that registered no algorithm
    /// expects (Core §3.1.3.7, Registration §2).
    RS256,
    /// ECDSA with P-256 and SHA-256; the signature is R ‖ S (RFC 7518 §3.4).
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = JoseError;

    /// Exact JOSE names only (they are case-sensitive, RFC 7515 §4.1.1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            other => Err(JoseError::UnsupportedAlg(other.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("alg {0:?} is not accepted: only RS256, ES256 and EdDSA")]
    UnsupportedAlg(String),
    #[error("the token is not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("the token's header names no kid")]
    MissingKid,
    #[error("no published key has kid {0:?}")]
    UnknownKid(String),
    #[error("the token says alg {token_alg} but key {kid:?} is for {key_alg}")]
    AlgMismatch {
        kid: String,
        key_alg: String,
        token_alg: String,
    },
    #[error("the token's typ is {found:?}, expected {expected:?}")]
    WrongType {
        expected: String,
        found: Option<String>,
    },
    #[error("the token's header has crit, and no extension is understood here (RFC 7515 §4.1.11)")]
    CriticalHeader,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the JWK of kid {kid:?} is unusable: {reason}")]
    BadJwk { kid: String, reason: &'static str },
    #[error("the claims are not a JSON object")]
    ClaimsNotAnObject,
    #[error("the token has no numeric exp")]
    MissingExp,
    #[error("the token expired at {0}")]
    Expired(i64),
    #[error("the token is not valid before {0}")]
    NotYetValid(i64),
    #[error("the {0} private key is unusable: {1}")]
    BadPrivateKey(SigningAlg, String),
    #[error("cannot generate a {0} key: {1}")]
    KeyGeneration(SigningAlg, String),
    #[error("cannot sign: {0}")]
    Signing(String),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url: no padding, no stray bits, no other alphabet (RFC 7515 §2).
fn b64_decode(text: &str, what: &'static str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JoseError::Malformed(what))
}

/// The private half, parsed once for signing.
enum Pair {
    Rsa(sig::RsaKeyPair),
    Ec(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
}

/// What never changes about a key: its material and its public members.
struct Material {
    pkcs8: Secret<Vec<u8>>,
    pair: Pair,
    /// `kty` and the public members of the JWK (no `kid`, `use`, `alg`).
    public: Map<String, Value>,
}

/// A private signing key for one algorithm, with its `kid` and lifetime. Cheap to clone (the
/// material is shared); `Debug` shows everything but the private key.
#[derive(Clone)]
pub struct SigningKey {
    alg: SigningAlg,
    kid: String,
    created_at: OffsetDateTime,
    retired_at: Option<OffsetDateTime>,
    material: Arc<Material>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Generates a new key with randomness from the operating system: RSA 2048, P-256 or
    /// Ed25519. Its `kid` is its JWK thumbprint (RFC 7638).
    ///
    /// RSA generation is CPU-bound and takes from a tenth of a second to a few seconds: call
    /// this from `tokio::task::spawn_blocking`, never on an async worker thread.
    pub fn generate(alg: SigningAlg, created_at: OffsetDateTime) -> Result<Self, JoseError> {
        let failed = |e: &dyn fmt::Display| JoseError::KeyGeneration(alg, e.to_string());
        let pkcs8 = match alg {
            SigningAlg::RS256 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .map_err(|e| failed(&e))?;
                let der = key.to_pkcs8_der().map_err(|e| failed(&e))?;
                Secret::new(der.as_bytes().to_vec())
            }
            SigningAlg::ES256 => {
                let doc = sig::EcdsaKeyPair::generate_pkcs8(
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|e| failed(&e))?;
                Secret::new(doc.as_ref().to_vec())
            }
            SigningAlg::EdDSA => {
                let doc = sig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|e| failed(&e))?;
                Secret::new(doc.as_ref().to_vec())
            }
        };
        let material = Material::parse(alg, pkcs8)?;
        let kid = thumbprint(&material.public);
        Ok(Self {
            alg,
            kid,
            created_at,
            retired_at: None,
            material: Arc::new(material),
        })
    }

    /// Loads a key from its PKCS#8 DER (as [`Self::to_pkcs8_der`] wrote it; for Ed25519, v1
    /// or v2). Checks that the key fits `alg`, not that `kid` is its thumbprint: the sealing
    /// binds the bytes to their `kid` already.
    pub fn from_pkcs8_der(
        alg: SigningAlg,
        kid: String,
        pkcs8: &[u8],
        created_at: OffsetDateTime,
        retired_at: Option<OffsetDateTime>,
    ) -> Result<Self, JoseError> {
        let material = Material::parse(alg, Secret::new(pkcs8.to_vec()))?;
        Ok(Self {
            alg,
            kid,
            created_at,
            retired_at,
            material: Arc::new(material),
        })
    }

    /// The private key as PKCS#8 DER, for sealing.
    pub fn to_pkcs8_der(&self) -> Secret<Vec<u8>> {
        self.material.pkcs8.clone()
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When the key stopped signing (its not-after time); `None` while it is the active key
    /// of its algorithm.
    pub fn retired_at(&self) -> Option<OffsetDateTime> {
        self.retired_at
    }

    /// The same key with other lifetime fields (a reload saw it retired); shares the material.
    pub fn with_times(
        &self,
        created_at: OffsetDateTime,
        retired_at: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            created_at,
            retired_at,
            ..self.clone()
        }
    }

    /// The raw JWS signature over `signing_input` (RFC 7518 §3.3, §3.4; RFC 8037 §3.1).
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError> {
        let failed = |e: ring::error::Unspecified| JoseError::Signing(e.to_string());
        match &self.material.pair {
            Pair::Rsa(pair) => {
                let mut out = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signing_input,
                    &mut out,
                )
                .map_err(failed)?;
                Ok(out)
            }
            Pair::Ec(pair) => Ok(pair
                .sign(&SystemRandom::new(), signing_input)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed(pair) => Ok(pair.sign(signing_input).as_ref().to_vec()),
        }
    }
}

impl Material {
    fn parse(alg: SigningAlg, pkcs8: Secret<Vec<u8>>) -> Result<Self, JoseError> {
        let rejected = |e: ring::error::KeyRejected| JoseError::BadPrivateKey(alg, e.to_string());
        let der = pkcs8.expose().as_slice();
        let mut public = Map::new();
        let pair = match alg {
            SigningAlg::RS256 => {
                let pair = sig::RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                if pair.public().modulus_len() < 256 {
                    return Err(JoseError::BadPrivateKey(
                        alg,
                        "RSA keys must have at least 2048 bits (RFC 7518 §3.3)".into(),
                    ));
                }
                let parts: sig::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                public.insert("kty".into(), "RSA".into());
                public.insert("n".into(), b64(&parts.n).into());
                public.insert("e".into(), b64(&parts.e).into());
                Pair::Rsa(pair)
            }
            SigningAlg::ES256 => {
                let pair = sig::EcdsaKeyPair::from_pkcs8(
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                    &SystemRandom::new(),
                )
                .map_err(rejected)?;
                // Uncompressed point: 0x04 ‖ x ‖ y, 32 bytes each (SEC 1 §2.3.3).
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..)
                    .filter(|xy| point.first() == Some(&4) && xy.len() == 64)
                    .map(|xy| xy.split_at(32))
                    .ok_or_else(|| {
                        JoseError::BadPrivateKey(alg, "not an uncompressed P-256 point".into())
                    })?;
                public.insert("kty".into(), "EC".into());
                public.insert("crv".into(), "P-256".into());
                public.insert("x".into(), b64(x).into());
                public.insert("y".into(), b64(y).into());
                Pair::Ec(pair)
            }
            SigningAlg::EdDSA => {
                let pair =
                    sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?;
                public.insert("kty".into(), "OKP".into());
                public.insert("crv".into(), "Ed25519".into());
                public.insert("x".into(), b64(pair.public_key().as_ref()).into());
                Pair::Ed(pair)
            }
        };
        Ok(Self {
            pkcs8,
            pair,
            public,
        })
    }
}

/// The RFC 7638 thumbprint of a JWK's required public members: SHA-256 over their JSON with
/// the members in lexicographic order and no whitespace, base64url.
fn thumbprint(public: &Map<String, Value>) -> String {
    let member = |name: &str| public.get(name).and_then(Value::as_str).unwrap_or_default();
    // Written out rather than serialised: the order and spacing are the hash input, and the
    // values are base64url or fixed names, which need no JSON escaping.
    let canonical = match member("kty") {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e"),
            member("n")
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv"),
            member("x"),
            member("y")
        ),
        kty => format!(
            r#"{{"crv":"{}","kty":"{kty}","x":"{}"}}"#,
            member("crv"),
            member("x")
        ),
    };
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// The public JWK of `key` (RFC 7517 §4, RFC 7518 §6.2/§6.3, RFC 8037 §2): `kty` with `n`/`e`
/// (RSA), `crv` P-256 with `x`/`y` (EC) or `crv` Ed25519 with `x` (OKP), and `kid`,
/// `use: "sig"`, `alg`. Never a private member.
pub fn public_jwk(key: &SigningKey) -> Value {
    let mut jwk = key.material.public.clone();
    jwk.insert("kid".into(), key.kid.clone().into());
    jwk.insert("use".into(), "sig".into());
    jwk.insert("alg".into(), key.alg.as_str().into());
    Value::Object(jwk)
}

/// A JWK Set (RFC 7517 §5): what `/jwks` serves and what [`verify_jwt`] checks against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Value>,
}

impl Jwks {
    /// The public JWKs of `keys`, in the order given.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Self {
        Self {
            keys: keys.into_iter().map(public_jwk).collect(),
        }
    }

    /// The JWK with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&Value> {
        self.keys
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    }

    /// The `kid`s, in order.
    pub fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .filter_map(|k| k.get("kid").and_then(Value::as_str))
            .collect()
    }
}

/// Signs `claims` (a JSON object) as a JWT: compact JWS with header `alg`, `kid` and, when
/// given, `typ` (`"JWT"` for ID tokens, `"at+jwt"` for access tokens, RFC 9068 §2.1).
pub fn sign_jwt(key: &SigningKey, typ: Option<&str>, claims: &Value) -> Result<String, JoseError> {
    if !claims.is_object() {
        return Err(JoseError::ClaimsNotAnObject);
    }
    let mut header = Map::new();
    header.insert("alg".into(), key.alg.as_str().into());
    header.insert("kid".into(), key.kid.clone().into());
    if let Some(typ) = typ {
        header.insert("typ".into(), typ.into());
    }
    // A Value always serialises: its map keys are strings.
    let header = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| JoseError::Signing(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| JoseError::Signing(e.to_string()))?;
    let signing_input = format!("{}.{}", b64(&header), b64(&payload));
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

/// Whether a `typ` matches: media types compare case-insensitively, and `application/` may
/// be left out (RFC 7515 §4.1.9).
fn typ_matches(found: &str, expected: &str) -> bool {
    fn bare(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        }
    }
    bare(found).eq_ignore_ascii_case(bare(expected))
}

/// Verifies a compact JWS signed by a key of `jwks` and returns its claims (a JSON object).
///
/// The header's `alg` must be RS256, ES256 or EdDSA and equal the `alg` of the JWK its `kid`
/// names; a header with `crit` is refused. With `expected_typ`, the header's `typ` must match
/// it. Only the signature is checked here: `exp`/`nbf` ([`check_time`]), `iss`, `aud` and the
/// rest are the caller's.
pub fn verify_jwt(
    jwks: &Jwks,
    token: &str,
    expected_typ: Option<&str>,
) -> Result<Value, JoseError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed("it does not have three parts"));
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&b64_decode(header_b64, "the header is not base64url")?)
            .map_err(|_| JoseError::Malformed("the header is not a JSON object"))?;
    let alg: SigningAlg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JoseError::Malformed("the header has no alg"))?
        .parse()?;
    if header.contains_key("crit") {
        return Err(JoseError::CriticalHeader);
    }
    if let Some(expected) = expected_typ {
        let found = header.get("typ").and_then(Value::as_str);
        if !found.is_some_and(|t| typ_matches(t, expected)) {
            return Err(JoseError::WrongType {
                expected: expected.to_owned(),
                found: found.map(str::to_owned),
            });
        }
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JoseError::MissingKid)?;
    let jwk = jwks
        .find(kid)
        .ok_or_else(|| JoseError::UnknownKid(kid.to_owned()))?;
    let key_alg = jwk.get("alg").and_then(Value::as_str).unwrap_or_default();
    if key_alg != alg.as_str() {
        return Err(JoseError::AlgMismatch {
            kid: kid.to_owned(),
            key_alg: key_alg.to_owned(),
            token_alg: alg.to_string(),
        });
    }
    let signature = b64_decode(signature_b64, "the signature is not base64url")?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    verify_signature(alg, jwk, signing_input.as_bytes(), &signature)?;
    let claims: Value =
        serde_json::from_slice(&b64_decode(payload_b64, "the payload is not base64url")?)
            .map_err(|_| JoseError::ClaimsNotAnObject)?;
    if !claims.is_object() {
        return Err(JoseError::ClaimsNotAnObject);
    }
    Ok(claims)
}

/// Checks `signature` over `signing_input` with the public JWK `jwk` for `alg`.
fn verify_signature(
    alg: SigningAlg,
    jwk: &Value,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), JoseError> {
    let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or_default();
    let bad = |reason| JoseError::BadJwk {
        kid: kid.to_owned(),
        reason,
    };
    let member = |name: &str| -> Result<Vec<u8>, JoseError> {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| bad("a public member is missing or not base64url"))
    };
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let verified = match alg {
        SigningAlg::RS256 => {
            if text("kty") != Some("RSA") {
                return Err(bad("kty is not RSA"));
            }
            sig::RsaPublicKeyComponents {
                n: member("n")?,
                e: member("e")?,
            }
            .verify(&sig::RSA_PKCS1_2048_8192_SHA256, signing_input, signature)
        }
        SigningAlg::ES256 => {
            if text("kty") != Some("EC") || text("crv") != Some("P-256") {
                return Err(bad("not an EC P-256 key"));
            }
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(bad("x and y must be 32 bytes"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(signing_input, signature)
        }
        SigningAlg::EdDSA => {
            if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
                return Err(bad("not an OKP Ed25519 key"));
            }
            sig::UnparsedPublicKey::new(&sig::ED25519, member("x")?)
                .verify(signing_input, signature)
        }
    };
    verified.map_err(|_| JoseError::BadSignature)
}

/// Checks `exp` (required) and `nbf` (if present) of verified claims at `now`, allowing
/// `leeway` for clocks that disagree (RFC 7519 §4.1.4, §4.1.5).
pub fn check_time(
    claims: &Value,
    now: OffsetDateTime,
    leeway: time::Duration,
) -> Result<(), JoseError> {
    let now = now.unix_timestamp();
    let leeway = leeway.whole_seconds();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(JoseError::MissingExp)?;
    if now >= exp.saturating_add(leeway) {
        return Err(JoseError::Expired(exp));
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf
            .as_i64()
            .ok_or(JoseError::Malformed("nbf is not a number"))?;
        if now < nbf.saturating_sub(leeway) {
            return Err(JoseError::NotYetValid(nbf));
        }
    }
    Ok(())
}

/// `at_hash` / `c_hash` (Core §3.1.3.6, §3.3.2.11): the left half of the hash of the ASCII
/// `value`, base64url. The hash is the one of the ID token's `alg`: SHA-256 for RS256 and
/// ES256, SHA-512 for EdDSA with Ed25519 (as the `openidconnect` crate checks it).
pub fn token_hash(alg: SigningAlg, value: &str) -> String {
    let digest = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => Sha256::digest(value.as_bytes()).to_vec(),
        SigningAlg::EdDSA => Sha512::digest(value.as_bytes()).to_vec(),
    };
    b64(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn key(alg: SigningAlg) -> SigningKey {
        SigningKey::generate(alg, t0()).unwrap()
    }

    fn d(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "https://op.example", "sub": "abc", "aud": "client", "exp": 1_800_000_300})
    }

    /// Replaces one base64url part of a token.
    fn with_part(token: &str, index: usize, text: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = text;
        parts.join(".")
    }

    #[test]
    fn alg_names_round_trip() {
        for alg in SigningAlg::ALL {
            assert_eq!(alg.to_string().parse::<SigningAlg>().unwrap(), alg);
            assert_eq!(
                serde_json::to_value(alg).unwrap(),
                json!(alg.as_str()),
                "serde uses the JOSE name"
            );
        }
        for bad in ["none", "HS256", "rs256", "EDDSA", ""] {
            assert!(matches!(
                bad.parse::<SigningAlg>(),
                Err(JoseError::UnsupportedAlg(_))
            ));
        }
    }

    #[test]
    fn sign_then_verify_round_trips_for_every_alg() {
        let keys: Vec<_> = SigningAlg::ALL.into_iter().map(key).collect();
        let jwks = Jwks::from_keys(&keys);
        for key in &keys {
            let token = sign_jwt(key, Some("JWT"), &claims()).unwrap();
            let header: Value =
                serde_json::from_slice(&d(token.split('.').next().unwrap())).unwrap();
            assert_eq!(
                header,
                json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT"})
            );
            assert_eq!(verify_jwt(&jwks, &token, Some("JWT")).unwrap(), claims());
            assert_eq!(verify_jwt(&jwks, &token, None).unwrap(), claims());
            // A reloaded key signs the same way.
            let again = SigningKey::from_pkcs8_der(
                key.alg(),
                key.kid().to_owned(),
                key.to_pkcs8_der().expose(),
                t0(),
                None,
            )
            .unwrap();
            assert_eq!(public_jwk(&again), public_jwk(key));
            let token = sign_jwt(&again, Some("at+jwt"), &claims()).unwrap();
            assert_eq!(
                verify_jwt(&jwks, &token, Some("application/AT+JWT")).unwrap(),
                claims()
            );
        }
    }

    #[test]
    fn a_tampered_token_fails() {
        for alg in SigningAlg::ALL {
            let key = key(alg);
            let jwks = Jwks::from_keys([&key]);
            let token = sign_jwt(&key, Some("JWT"), &claims()).unwrap();
            let mut changed = claims();
            changed["sub"] = json!("someone-else");
            let forged = with_part(&token, 1, &b64(&serde_json::to_vec(&changed).unwrap()));
            assert_eq!(
                verify_jwt(&jwks, &forged, None),
                Err(JoseError::BadSignature),
                "{alg}"
            );
            let mut signature = d(token.split('.').nth(2).unwrap());
            signature[0] ^= 1;
            let forged = with_part(&token, 2, &b64(&signature));
            assert_eq!(
                verify_jwt(&jwks, &forged, None),
                Err(JoseError::BadSignature)
            );
            // Same bits, padded: not the compact serialisation.
            assert!(matches!(
                verify_jwt(&jwks, &format!("{token}="), None),
                Err(JoseError::Malformed(_))
            ));
        }
    }

    #[test]
    fn alg_or_kid_mismatches_fail() {
        let rsa = key(SigningAlg::RS256);
        let ec = key(SigningAlg::ES256);
        let jwks = Jwks::from_keys([&rsa, &ec]);
        let token = sign_jwt(&rsa, None, &claims()).unwrap();
        // The header claims ES256 for the RSA key's kid.
        let header = json!({"alg": "ES256", "kid": rsa.kid()});
        let forged = with_part(&token, 0, &b64(&serde_json::to_vec(&header).unwrap()));
        assert!(matches!(
            verify_jwt(&jwks, &forged, None),
            Err(JoseError::AlgMismatch { .. })
        ));
        // The header names the EC key for an RSA signature.
        let header = json!({"alg": "RS256", "kid": ec.kid()});
        let forged = with_part(&token, 0, &b64(&serde_json::to_vec(&header).unwrap()));
        assert!(matches!(
            verify_jwt(&jwks, &forged, None),
            Err(JoseError::AlgMismatch { .. })
        ));
        // A kid nobody published, and none at all.
        let header = json!({"alg": "RS256", "kid": "elsewhere"});
        let forged = with_part(&token, 0, &b64(&serde_json::to_vec(&header).unwrap()));
        assert_eq!(
            verify_jwt(&jwks, &forged, None),
            Err(JoseError::UnknownKid("elsewhere".into()))
        );
        let header = json!({"alg": "RS256"});
        let forged = with_part(&token, 0, &b64(&serde_json::to_vec(&header).unwrap()));
        assert_eq!(verify_jwt(&jwks, &forged, None), Err(JoseError::MissingKid));
        // The right kid, but a JWK that lies about its type.
        let mut lying = Jwks::from_keys([&rsa]);
        lying.keys[0]["kty"] = json!("oct");
        assert!(matches!(
            verify_jwt(&lying, &token, None),
            Err(JoseError::BadJwk { .. })
        ));
    }

    #[test]
    fn unsigned_hmac_and_critical_tokens_fail() {
        let rsa = key(SigningAlg::RS256);
        let jwks = Jwks::from_keys([&rsa]);
        let payload = b64(&serde_json::to_vec(&claims()).unwrap());
        for alg in ["none", "HS256", "RS512", "PS256"] {
            let header = b64(&serde_json::to_vec(&json!({"alg": alg, "kid": rsa.kid()})).unwrap());
            for signature in ["", "c2lnbmF0dXJl"] {
                let token = format!("{header}.{payload}.{signature}");
                assert_eq!(
                    verify_jwt(&jwks, &token, None),
                    Err(JoseError::UnsupportedAlg(alg.into())),
                    "{alg}"
                );
            }
        }
        let header = b64(br#"{"alg":"RS256"}"#);
        assert!(matches!(
            verify_jwt(&jwks, &format!("{header}.{payload}"), None),
            Err(JoseError::Malformed(_))
        ));
        let token = sign_jwt(&rsa, None, &claims()).unwrap();
        let header = json!({"alg": "RS256", "kid": rsa.kid(), "crit": ["exp"]});
        let forged = with_part(&token, 0, &b64(&serde_json::to_vec(&header).unwrap()));
        assert_eq!(
            verify_jwt(&jwks, &forged, None),
            Err(JoseError::CriticalHeader)
        );
    }

    #[test]
    fn typ_is_checked_when_expected() {
        let key = key(SigningAlg::ES256);
        let jwks = Jwks::from_keys([&key]);
        let id_token = sign_jwt(&key, Some("JWT"), &claims()).unwrap();
        assert!(matches!(
            verify_jwt(&jwks, &id_token, Some("at+jwt")),
            Err(JoseError::WrongType { .. })
        ));
        let untyped = sign_jwt(&key, None, &claims()).unwrap();
        assert_eq!(
            verify_jwt(&jwks, &untyped, Some("JWT")),
            Err(JoseError::WrongType {
                expected: "JWT".into(),
                found: None
            })
        );
        assert!(sign_jwt(&key, None, &json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn exp_and_nbf_are_checked_with_leeway() {
        let at = |s| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let none = time::Duration::ZERO;
        let claims = json!({"exp": 1000, "nbf": 900});
        assert_eq!(check_time(&claims, at(999), none), Ok(()));
        assert_eq!(
            check_time(&claims, at(1000), none),
            Err(JoseError::Expired(1000))
        );
        assert_eq!(
            check_time(&claims, at(1030), time::Duration::minutes(1)),
            Ok(())
        );
        assert_eq!(
            check_time(&claims, at(899), none),
            Err(JoseError::NotYetValid(900))
        );
        assert_eq!(
            check_time(&claims, at(870), time::Duration::minutes(1)),
            Ok(())
        );
        assert_eq!(
            check_time(&json!({}), at(0), none),
            Err(JoseError::MissingExp)
        );
    }

    #[test]
    fn token_hashes_match_openid_connect_core() {
        // Core §A.3 (at_hash) and §A.4 (c_hash), both RS256.
        assert_eq!(
            token_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            token_hash(
                SigningAlg::RS256,
                "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
            ),
            "LDktKdoQak3Pk0cnXxCltA"
        );
        // ES256 uses SHA-256 too.
        assert_eq!(
            token_hash(
                SigningAlg::ES256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // EdDSA: the left half of SHA-512. No specification example exists; the value was
        // computed independently with Python's hashlib:
        // urlsafe_b64encode(sha512(v).digest()[:32]).rstrip(b"=").
        assert_eq!(
            token_hash(SigningAlg::EdDSA, "dNZX1hEZ9wBCzNL40Upu646bdzQA"),
            "8xltSlOGYrWy8W9yNvRlEth1i_bXW-JROWPLvCv5zog"
        );
    }

    /// RFC 8037 Appendix A.1: the Ed25519 key (the RFC 8032 §7.1 test 1 seed) as PKCS#8 v1.
    fn rfc8037_key() -> SigningKey {
        let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
        der.extend(d("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"));
        SigningKey::from_pkcs8_der(SigningAlg::EdDSA, "rfc8037".into(), &der, t0(), None).unwrap()
    }

    #[test]
    fn ed25519_jwk_and_signature_match_rfc_8037() {
        let key = rfc8037_key();
        assert_eq!(
            public_jwk(&key),
            json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "rfc8037", "use": "sig", "alg": "EdDSA",
            })
        );
        // Appendix A.3: the thumbprint, which generated keys use as kid.
        assert_eq!(
            thumbprint(&key.material.public),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        // Appendix A.4: Ed25519 is deterministic, so the signature is exactly the RFC's.
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let expected = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        assert_eq!(b64(&key.sign(input.as_bytes()).unwrap()), expected);
        verify_signature(
            SigningAlg::EdDSA,
            &public_jwk(&key),
            input.as_bytes(),
            &d(expected),
        )
        .unwrap();
    }

    /// RFC 7515 Appendix A.2/A.3 signing input: `{"alg":…}` over the "joe" claims.
    const RFC7515_PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

    #[test]
    fn rsa_jwk_and_signature_match_rfc_7515() {
        use rsa::pkcs8::EncodePrivateKey as _;
        let n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
        let dd = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
        let p = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
        let q = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
        let big = |s| rsa::BigUint::from_bytes_be(&d(s));
        let private =
            rsa::RsaPrivateKey::from_components(big(n), big("AQAB"), big(dd), vec![big(p), big(q)])
                .unwrap();
        let der = private.to_pkcs8_der().unwrap();
        let key = SigningKey::from_pkcs8_der(
            SigningAlg::RS256,
            "2010-12-29".into(),
            der.as_bytes(),
            t0(),
            None,
        )
        .unwrap();
        assert_eq!(
            public_jwk(&key),
            json!({"kty": "RSA", "n": n, "e": "AQAB", "kid": "2010-12-29", "use": "sig", "alg": "RS256"})
        );
        // RSASSA-PKCS1-v1_5 is deterministic: Appendix A.2's signature, exactly.
        let input = format!("eyJhbGciOiJSUzI1NiJ9.{RFC7515_PAYLOAD}");
        let expected = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
        assert_eq!(b64(&key.sign(input.as_bytes()).unwrap()), expected);
    }

    #[test]
    fn ec_jwk_matches_rfc_7515_and_its_signature_verifies() {
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        // PKCS#8 v1 of an RFC 5915 ECPrivateKey on P-256 with its public key (the layout
        // ring generates): the private scalar d, then 0x04 ‖ x ‖ y.
        let mut der =
            hex::decode("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420")
                .unwrap();
        der.extend(d("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"));
        der.extend(hex::decode("a14403420004").unwrap());
        der.extend(d(x));
        der.extend(d(y));
        let key =
            SigningKey::from_pkcs8_der(SigningAlg::ES256, "a3".into(), &der, t0(), None).unwrap();
        assert_eq!(
            public_jwk(&key),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "a3", "use": "sig", "alg": "ES256"})
        );
        // Appendix A.3's signature (ECDSA is randomised, so only verifying it is exact).
        let input = format!("eyJhbGciOiJFUzI1NiJ9.{RFC7515_PAYLOAD}");
        let signature = d(
            "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
        );
        verify_signature(
            SigningAlg::ES256,
            &public_jwk(&key),
            input.as_bytes(),
            &signature,
        )
        .unwrap();
        let ours = key.sign(input.as_bytes()).unwrap();
        assert_eq!(ours.len(), 64, "R ‖ S, not DER");
        verify_signature(
            SigningAlg::ES256,
            &public_jwk(&key),
            input.as_bytes(),
            &ours,
        )
        .unwrap();
    }

    #[test]
    fn generated_keys_have_thumbprint_kids_and_never_print_the_private_key() {
        for alg in SigningAlg::ALL {
            let key = key(alg);
            assert_eq!(key.kid(), thumbprint(&key.material.public));
            let jwk = public_jwk(&key);
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(jwk.get(private).is_none(), "{alg} JWK has {private}");
            }
            let shown = format!("{key:?}");
            assert!(
                shown.contains("[redacted]") && shown.contains(key.kid()),
                "{shown}"
            );
            let der_hex = hex::encode(key.to_pkcs8_der().expose());
            assert!(!shown.contains(&der_hex[der_hex.len() - 16..]));
        }
        let rsa = key(SigningAlg::RS256);
        assert_eq!(
            d(public_jwk(&rsa)["n"].as_str().unwrap()).len(),
            256,
            "RSA 2048"
        );
    }

    #[test]
    fn a_key_for_another_alg_is_refused() {
        let ec = key(SigningAlg::ES256);
        let err = SigningKey::from_pkcs8_der(
            SigningAlg::RS256,
            "x".into(),
            ec.to_pkcs8_der().expose(),
            t0(),
            None,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            JoseError::BadPrivateKey(SigningAlg::RS256, _)
        ));
    }
}
