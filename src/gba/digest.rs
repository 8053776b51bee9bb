//! HTTP Digest authentication (RFC 7616, RFC 2617) as GBA uses it: Digest AKA on Ub
//! (RFC 3310, TS 24.109 §4 and Annex A) and Digest keyed by Ks_NAF on Ua (TS 24.109 §5,
//! TS 33.222 §5.3).
//!
//! Parsing follows the auth-param grammar of RFC 7235 §2.1 / RFC 7230 §3.2.6 (`token "="
//! ( token / quoted-string )`, comma-separated, optional whitespace) and treats the header as
//! hostile: bounded lengths, duplicated parameters refused, required parameters named when
//! missing, unknown parameters ignored (RFC 7616 §3.4: "any unrecognized directive MUST be
//! ignored"). Error messages name parameters but never repeat their values, so a log line of
//! an error cannot carry a password-equivalent.
//!
//! The digest computations are RFC 2617 §3.2.2 (request-digest) and §3.2.3 (rspauth), with MD5
//! as both `MD5` (Ua) and `AKAv1-MD5` (Ub, where the password is RES, RFC 3310 §3.3) require.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use md5::{Digest as _, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Longest header value accepted, in bytes. A Ub header is a few hundred bytes; a Ua header
/// repeats the request target in `uri`, and an OpenID request target may be several KiB.
/// This bounds the work a hostile client can cause.
pub const MAX_HEADER_LEN: usize = 12 * 1024;
/// Longest parameter value accepted (after unquoting), in bytes, but for `uri`.
pub const MAX_VALUE_LEN: usize = 1024;
/// Longest `uri` accepted: the request target, as long as the server accepts URLs.
pub const MAX_URI_LEN: usize = 8 * 1024;

fn max_len(name: &str) -> usize {
    if name == "uri" {
        MAX_URI_LEN
    } else {
        MAX_VALUE_LEN
    }
}
/// Longest parameter name accepted; the longest one defined is `nextnonce`.
const MAX_NAME_LEN: usize = 64;

/// The Ub algorithm name (RFC 3310 §3.1).
pub const AKAV1_MD5: &str = "AKAv1-MD5";
/// The Ua algorithm name (RFC 2617 §3.2.1; TS 24.109 §5.2.1).
pub const MD5: &str = "MD5";

/// Why a Digest header was refused. Messages name the parameter, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the Authorization header does not use the Digest scheme")]
    NotDigest,
    #[error("the Digest header is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("malformed Digest header: {0}")]
    Malformed(String),
    #[error("Digest parameter {0:?} appears more than once")]
    Duplicate(String),
    #[error("Digest parameter {0:?} is missing")]
    Missing(&'static str),
    #[error(
        "Digest parameter {0:?} is too long ({MAX_VALUE_LEN} bytes at most, {MAX_URI_LEN} for uri)"
    )]
    ValueTooLong(String),
    #[error("Digest parameter {param:?} is invalid: {reason}")]
    BadValue { param: &'static str, reason: String },
}

impl DigestError {
    fn bad(param: &'static str, reason: impl Into<String>) -> Self {
        Self::BadValue {
            param,
            reason: reason.into(),
        }
    }
}

/// Quality of protection (RFC 2617 §3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication of the request line only.
    Auth,
    /// `auth-int`: the entity body is covered too. Ub requires it (TS 24.109 §4.4.3).
    AuthInt,
}

impl Qop {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Qop {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // qop values are tokens; RFC 7616 does not make them case-sensitive, and accepting
        // `Auth-Int` costs nothing.
        if s.eq_ignore_ascii_case("auth") {
            Ok(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Ok(Qop::AuthInt)
        } else {
            Err(DigestError::bad("qop", "must be auth or auth-int"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Headers

/// The client's `Authorization: Digest …` (RFC 7616 §3.4; RFC 3310 §3.2 adds `auts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    /// Empty in the first Ub request (TS 24.109 §4.4.2), which carries no response yet.
    pub nonce: String,
    pub uri: String,
    /// Lower-case hex request-digest; empty in the first Ub request.
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    /// nonce-count, 8 lower-case hex digits on the wire.
    pub nc: Option<u32>,
    pub qop: Option<Qop>,
    pub opaque: Option<String>,
    /// base64(AUTS) when the USIM reports a synchronisation failure (RFC 3310 §3.4).
    pub auts: Option<String>,
}

impl Credentials {
    /// Parses an `Authorization` header value.
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let mut params = Params::parse(strip_digest_scheme(header)?)?;
        let qop = params.take("qop").map(|q| q.parse()).transpose()?;
        let nc = params.take("nc").map(|n| parse_nc(&n)).transpose()?;
        let cnonce = params.take("cnonce");
        // RFC 7616 §3.4: cnonce and nc MUST be sent with a qop, and the digest depends on
        // them, so a request without them cannot be verified.
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(DigestError::Missing("cnonce"));
            }
            if nc.is_none() {
                return Err(DigestError::Missing("nc"));
            }
        }
        Ok(Self {
            username: params.required("username")?,
            realm: params.required("realm")?,
            nonce: params.required("nonce")?,
            uri: params.required("uri")?,
            response: params.required("response")?,
            algorithm: params.take("algorithm"),
            cnonce,
            nc,
            qop,
            opaque: params.take("opaque"),
            auts: params.take("auts"),
        })
    }

    /// The header value, `Digest username="…", …`.
    pub fn to_header(&self) -> String {
        let mut w = HeaderWriter::new("Digest ");
        w.quoted("username", &self.username);
        w.quoted("realm", &self.realm);
        w.quoted("nonce", &self.nonce);
        w.quoted("uri", &self.uri);
        w.quoted("response", &self.response);
        if let Some(algorithm) = &self.algorithm {
            w.token_or_quoted("algorithm", algorithm);
        }
        if let Some(cnonce) = &self.cnonce {
            w.quoted("cnonce", cnonce);
        }
        if let Some(nc) = self.nc {
            w.raw("nc", &format_nc(nc));
        }
        if let Some(qop) = self.qop {
            w.raw("qop", qop.as_str());
        }
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque);
        }
        if let Some(auts) = &self.auts {
            w.quoted("auts", auts);
        }
        w.finish()
    }

    /// The request-digest these credentials should carry for `ha1`, `method` and `body`.
    pub fn expected_response(&self, ha1: &Ha1, method: &str, body: &[u8]) -> String {
        request_digest(
            ha1,
            &self.nonce,
            self.nc.unwrap_or(0),
            self.cnonce.as_deref().unwrap_or(""),
            self.qop,
            method,
            &self.uri,
            body,
        )
    }

    /// Whether `response` is right for `ha1`, compared in constant time.
    pub fn response_matches(&self, ha1: &Ha1, method: &str, body: &[u8]) -> bool {
        digest_eq(&self.expected_response(ha1, method, body), &self.response)
    }
}

/// The server's `WWW-Authenticate: Digest …` (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: Option<String>,
    /// The qop options offered; empty means the RFC 2069 form without qop.
    pub qop: Vec<Qop>,
    pub opaque: Option<String>,
    /// The nonce was stale, the credentials were right: retry without asking the user.
    pub stale: bool,
}

impl Challenge {
    /// Parses one Digest challenge (a header value holding only that challenge).
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let mut params = Params::parse(strip_digest_scheme(header)?)?;
        let qop = match params.take("qop") {
            None => Vec::new(),
            Some(list) => {
                // RFC 7616 §3.3: unrecognised options are ignored; a challenge offering only
                // options we do not know cannot be answered at all.
                let offered: Vec<Qop> = list
                    .split(',')
                    .filter_map(|q| q.trim().parse().ok())
                    .collect();
                if offered.is_empty() {
                    return Err(DigestError::bad("qop", "offers neither auth nor auth-int"));
                }
                offered
            }
        };
        Ok(Self {
            realm: params.required("realm")?,
            nonce: params.required("nonce")?,
            algorithm: params.take("algorithm"),
            qop,
            opaque: params.take("opaque"),
            stale: params
                .take("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The header value, e.g. `Digest realm="x", nonce="…", algorithm=AKAv1-MD5,
    /// qop="auth-int", opaque="…"`.
    pub fn to_header(&self) -> String {
        let mut w = HeaderWriter::new("Digest ");
        w.quoted("realm", &self.realm);
        w.quoted("nonce", &self.nonce);
        if let Some(algorithm) = &self.algorithm {
            w.token_or_quoted("algorithm", algorithm);
        }
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            w.quoted("qop", &list.join(","));
        }
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque);
        }
        if self.stale {
            w.raw("stale", "true");
        }
        w.finish()
    }
}

/// The server's `Authentication-Info` (RFC 7615, RFC 2617 §3.2.3): mutual authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationInfo {
    pub qop: Option<Qop>,
    pub rspauth: String,
    pub cnonce: Option<String>,
    pub nc: Option<u32>,
    pub nextnonce: Option<String>,
}

impl AuthenticationInfo {
    /// Parses an `Authentication-Info` header value (it has no scheme prefix).
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        if header.len() > MAX_HEADER_LEN {
            return Err(DigestError::TooLong);
        }
        let mut params = Params::parse(header)?;
        Ok(Self {
            qop: params.take("qop").map(|q| q.parse()).transpose()?,
            rspauth: params.required("rspauth")?,
            cnonce: params.take("cnonce"),
            nc: params.take("nc").map(|n| parse_nc(&n)).transpose()?,
            nextnonce: params.take("nextnonce"),
        })
    }

    /// The header value, e.g. `qop=auth-int, rspauth="…", cnonce="…", nc=00000001`.
    pub fn to_header(&self) -> String {
        let mut w = HeaderWriter::new("");
        if let Some(qop) = self.qop {
            w.raw("qop", qop.as_str());
        }
        w.quoted("rspauth", &self.rspauth);
        if let Some(cnonce) = &self.cnonce {
            w.quoted("cnonce", cnonce);
        }
        if let Some(nc) = self.nc {
            w.raw("nc", &format_nc(nc));
        }
        if let Some(nextnonce) = &self.nextnonce {
            w.quoted("nextnonce", nextnonce);
        }
        w.finish()
    }
}

fn parse_nc(value: &str) -> Result<u32, DigestError> {
    // nc-value = 8LHEX (RFC 7616 §3.4). The digest is computed over the wire form, so a form
    // that would not round-trip (upper case, other lengths) is refused rather than guessed at.
    if value.len() != 8
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(DigestError::bad(
            "nc",
            "must be 8 lower-case hexadecimal digits",
        ));
    }
    u32::from_str_radix(value, 16)
        .map_err(|_| DigestError::bad("nc", "must be 8 lower-case hexadecimal digits"))
}

fn format_nc(nc: u32) -> String {
    format!("{nc:08x}")
}

/// Strips the `Digest` auth-scheme (case-insensitive, RFC 7235 §2.1) and the length check.
fn strip_digest_scheme(header: &str) -> Result<&str, DigestError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(DigestError::TooLong);
    }
    let header = header.trim_start_matches([' ', '\t']);
    let (scheme, rest) = match header.find([' ', '\t']) {
        Some(at) => header.split_at(at),
        None => (header, ""),
    };
    if scheme.eq_ignore_ascii_case("Digest") {
        Ok(rest)
    } else {
        Err(DigestError::NotDigest)
    }
}

// ---------------------------------------------------------------------------------------------
// auth-param lists

/// The parameters of one header, names lower-cased (RFC 7235 §2.1: case-insensitive).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(input: &str) -> Result<Self, DigestError> {
        let b = input.as_bytes();
        let mut map = HashMap::new();
        let mut i = 0;
        loop {
            i = skip_ows(b, i);
            if i == b.len() {
                break;
            }
            // RFC 7230 §7: recipients accept empty list elements ("a=1,,b=2").
            if b[i] == b',' {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && is_tchar(b[i]) {
                i += 1;
            }
            if start == i {
                return Err(DigestError::Malformed(format!(
                    "expected a parameter name at byte {start}"
                )));
            }
            if i - start > MAX_NAME_LEN {
                return Err(DigestError::Malformed(format!(
                    "a parameter name is longer than {MAX_NAME_LEN} bytes"
                )));
            }
            let name = input[start..i].to_ascii_lowercase();
            i = skip_ows(b, i);
            if b.get(i) != Some(&b'=') {
                return Err(DigestError::Malformed(format!(
                    "parameter {name:?} has no '=value'"
                )));
            }
            i = skip_ows(b, i + 1);
            let value = if b.get(i) == Some(&b'"') {
                let (value, next) = read_quoted(b, i + 1, &name)?;
                i = next;
                value
            } else {
                let start = i;
                while i < b.len() && is_tchar(b[i]) {
                    i += 1;
                }
                if start == i {
                    return Err(DigestError::Malformed(format!(
                        "parameter {name:?} has no value"
                    )));
                }
                input[start..i].to_owned()
            };
            if value.len() > max_len(&name) {
                return Err(DigestError::ValueTooLong(name));
            }
            if map.contains_key(&name) {
                // Two values for one parameter let a proxy and the server read different
                // credentials; refuse rather than pick one.
                return Err(DigestError::Duplicate(name));
            }
            i = skip_ows(b, i);
            if i < b.len() && b[i] != b',' {
                return Err(DigestError::Malformed(format!(
                    "expected ',' after parameter {name:?}"
                )));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    fn take(&mut self, name: &'static str) -> Option<String> {
        self.0.remove(name)
    }

    fn required(&mut self, name: &'static str) -> Result<String, DigestError> {
        self.take(name).ok_or(DigestError::Missing(name))
    }
}

/// Reads a quoted-string body starting after the opening quote; returns the unescaped value
/// and the index after the closing quote.
fn read_quoted(b: &[u8], mut i: usize, name: &str) -> Result<(String, usize), DigestError> {
    let unterminated = || {
        DigestError::Malformed(format!(
            "parameter {name:?} has an unterminated quoted string"
        ))
    };
    let control =
        || DigestError::Malformed(format!("parameter {name:?} contains a control character"));
    let mut out = Vec::new();
    loop {
        let c = *b.get(i).ok_or_else(unterminated)?;
        match c {
            b'"' => break,
            b'\\' => {
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                let escaped = *b.get(i + 1).ok_or_else(unterminated)?;
                if is_ctl(escaped) {
                    return Err(control());
                }
                out.push(escaped);
                i += 2;
            }
            c if is_ctl(c) => return Err(control()),
            c => {
                out.push(c);
                i += 1;
            }
        }
        // Checked while reading so a hostile value is not copied in full first.
        if out.len() > max_len(name) {
            return Err(DigestError::ValueTooLong(name.to_owned()));
        }
    }
    // Only whole UTF-8 sequences of a &str were copied (a backslash escapes the first byte of
    // a multi-byte character, whose other bytes follow as obs-text), so this cannot fail.
    let value = String::from_utf8(out)
        .map_err(|_| DigestError::Malformed(format!("parameter {name:?} is not valid UTF-8")))?;
    Ok((value, i + 1))
}

fn skip_ows(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// tchar of RFC 7230 §3.2.6.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Control characters other than HTAB, which quoted-strings may not hold.
fn is_ctl(c: u8) -> bool {
    (c < 0x20 && c != b'\t') || c == 0x7f
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Writes `name=value` pairs joined by ", ".
struct HeaderWriter {
    out: String,
    first: bool,
}

impl HeaderWriter {
    fn new(prefix: &str) -> Self {
        Self {
            out: prefix.to_owned(),
            first: true,
        }
    }

    fn raw(&mut self, name: &str, value: &str) {
        if !self.first {
            self.out.push_str(", ");
        }
        self.first = false;
        self.out.push_str(name);
        self.out.push('=');
        self.out.push_str(value);
    }

    fn quoted(&mut self, name: &str, value: &str) {
        let mut q = String::with_capacity(value.len() + 2);
        q.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        self.raw(name, &q);
    }

    /// RFC 7616 sends `algorithm` as a bare token; quote it only if it is not one.
    fn token_or_quoted(&mut self, name: &str, value: &str) {
        if is_token(value) {
            self.raw(name, value);
        } else {
            self.quoted(name, value);
        }
    }

    fn finish(self) -> String {
        self.out
    }
}

// ---------------------------------------------------------------------------------------------
// Computation (RFC 2617 §3.2.2)

/// H(A1) for the plain (non-`-sess`) algorithms: a password equivalent, hence a `Secret`.
pub type Ha1 = Secret<[u8; 16]>;

/// MD5 over `parts` joined by ':'.
fn h(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HA1 = MD5(username ":" realm ":" password). For AKAv1-MD5 the password is RES as raw
/// bytes (RFC 3310 §3.3), and empty when the client reports a synchronisation failure
/// (§3.4); on Ua it is base64(Ks_NAF) (TS 33.220 §5.3, TS 24.109 §5.2.2).
pub fn ha1(username: &str, realm: &str, password: &[u8]) -> Ha1 {
    Secret::new(h(&[username.as_bytes(), realm.as_bytes(), password]))
}

/// KD(H(A1), nonce ":" [nc ":" cnonce ":" qop ":"] H(A2)) in lower-case hex, shared by
/// request-digest and rspauth, which differ only in A2.
fn kd(ha1: &Ha1, nonce: &str, nc: u32, cnonce: &str, qop: Option<Qop>, ha2: &[u8; 16]) -> String {
    // The hex of HA1 is as much a password equivalent as HA1 itself.
    let ha1_hex = Zeroizing::new(hex::encode(ha1.expose()));
    let ha2_hex = hex::encode(ha2);
    let digest = match qop {
        Some(qop) => h(&[
            ha1_hex.as_bytes(),
            nonce.as_bytes(),
            format_nc(nc).as_bytes(),
            cnonce.as_bytes(),
            qop.as_str().as_bytes(),
            ha2_hex.as_bytes(),
        ]),
        // RFC 2069 compatibility (RFC 2617 §3.2.2.1): no qop, no nc/cnonce.
        None => h(&[ha1_hex.as_bytes(), nonce.as_bytes(), ha2_hex.as_bytes()]),
    };
    hex::encode(digest)
}

/// H(A2), where A2 = method ":" uri [":" H(entity-body)] (the hash only with auth-int).
fn ha2(method: &str, uri: &str, qop: Option<Qop>, body: &[u8]) -> [u8; 16] {
    match qop {
        Some(Qop::AuthInt) => {
            let body_hex = hex::encode(h(&[body]));
            h(&[method.as_bytes(), uri.as_bytes(), body_hex.as_bytes()])
        }
        _ => h(&[method.as_bytes(), uri.as_bytes()]),
    }
}

/// The request-digest a client sends as `response` (RFC 2617 §3.2.2.1), lower-case hex.
/// `nc` and `cnonce` are not used when `qop` is `None`; `body` only with `auth-int`.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per input RFC 2617 §3.2.2.1 names"
)]
pub fn request_digest(
    ha1: &Ha1,
    nonce: &str,
    nc: u32,
    cnonce: &str,
    qop: Option<Qop>,
    method: &str,
    uri: &str,
    body: &[u8],
) -> String {
    kd(ha1, nonce, nc, cnonce, qop, &ha2(method, uri, qop, body))
}

/// The `rspauth` of Authentication-Info (RFC 2617 §3.2.3): as the request-digest but with
/// A2 = ":" uri [":" H(entity-body)], `body` being the response's body.
pub fn response_auth(
    ha1: &Ha1,
    nonce: &str,
    nc: u32,
    cnonce: &str,
    qop: Option<Qop>,
    uri: &str,
    body: &[u8],
) -> String {
    kd(ha1, nonce, nc, cnonce, qop, &ha2("", uri, qop, body))
}

/// Compares a computed digest with a received one in time independent of where they differ,
/// so the comparison leaks nothing about the expected value. Hex case is ignored.
pub fn digest_eq(expected: &str, received: &str) -> bool {
    if expected.len() != received.len() {
        // The length of a digest is public (it follows from the algorithm).
        return false;
    }
    let received = received.to_ascii_lowercase();
    let expected = expected.to_ascii_lowercase();
    expected.as_bytes().ct_eq(received.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5, the worked example.
    #[test]
    fn rfc2617_example_response() {
        let ha1 = ha1("Mufasa", "testrealm@host.com", b"Circle Of Life");
        let response = request_digest(
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            1,
            "0a4f113b",
            Some(Qop::Auth),
            "GET",
            "/dir/index.html",
            b"",
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc2617_example_header_parses_and_verifies() {
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#
            .replace('\n', "");
        let creds = Credentials::parse(&header).unwrap();
        assert_eq!(creds.username, "Mufasa");
        assert_eq!(creds.nc, Some(1));
        assert_eq!(creds.qop, Some(Qop::Auth));
        let ha1 = ha1("Mufasa", "testrealm@host.com", b"Circle Of Life");
        assert!(creds.response_matches(&ha1, "GET", b""));
        let wrong = super::ha1("Mufasa", "testrealm@host.com", b"circle of life");
        assert!(!creds.response_matches(&wrong, "GET", b""));
    }

    #[test]
    fn auth_int_covers_the_body() {
        // Computed by hand from RFC 2617 §3.2.2.3:
        // HA2 = MD5("POST:/:" ‖ hex(MD5(body))), response = MD5(hex(HA1):nonce:nc:cnonce:qop:hex(HA2)).
        let ha1 = ha1("user", "realm", b"pw");
        let body = b"<x/>";
        let body_hex = hex::encode(h(&[body]));
        let ha2_hex = hex::encode(h(&[b"POST", b"/", body_hex.as_bytes()]));
        let ha1_hex = hex::encode(ha1.expose());
        let expected = hex::encode(h(&[
            ha1_hex.as_bytes(),
            b"n",
            b"0000000a",
            b"c",
            b"auth-int",
            ha2_hex.as_bytes(),
        ]));
        let got = request_digest(&ha1, "n", 10, "c", Some(Qop::AuthInt), "POST", "/", body);
        assert_eq!(got, expected);
        let other_body = request_digest(&ha1, "n", 10, "c", Some(Qop::AuthInt), "POST", "/", b"");
        assert_ne!(got, other_body);
        // auth ignores the body.
        assert_eq!(
            request_digest(&ha1, "n", 10, "c", Some(Qop::Auth), "POST", "/", body),
            request_digest(&ha1, "n", 10, "c", Some(Qop::Auth), "POST", "/", b"")
        );
    }

    #[test]
    fn rfc2069_form_without_qop() {
        let ha1 = ha1("Mufasa", "testrealm@host.com", b"Circle Of Life");
        let ha1_hex = hex::encode(ha1.expose());
        let ha2_hex = hex::encode(h(&[b"GET", b"/dir/index.html"]));
        let expected = hex::encode(h(&[ha1_hex.as_bytes(), b"abc", ha2_hex.as_bytes()]));
        let got = request_digest(
            &ha1,
            "abc",
            99,
            "ignored",
            None,
            "GET",
            "/dir/index.html",
            b"",
        );
        assert_eq!(got, expected);
    }

    #[test]
    fn rspauth_uses_empty_method() {
        let ha1 = ha1("u", "r", b"p");
        let ha1_hex = hex::encode(ha1.expose());
        let body = b"<BootstrappingInfo/>";
        let ha2_hex = hex::encode(h(&[b"", b"/", hex::encode(h(&[body])).as_bytes()]));
        let expected = hex::encode(h(&[
            ha1_hex.as_bytes(),
            b"n",
            b"00000001",
            b"c",
            b"auth-int",
            ha2_hex.as_bytes(),
        ]));
        assert_eq!(
            response_auth(&ha1, "n", 1, "c", Some(Qop::AuthInt), "/", body),
            expected
        );
    }

    #[test]
    fn digest_eq_compares_whole_values() {
        assert!(digest_eq("6629fae4", "6629fae4"));
        assert!(digest_eq("6629fae4", "6629FAE4"));
        assert!(!digest_eq("6629fae4", "6629fae5"));
        assert!(!digest_eq("6629fae4", "6629fae"));
        assert!(!digest_eq("6629fae4", ""));
    }

    #[test]
    fn ha1_debug_is_redacted() {
        let ha1 = ha1("u", "r", b"secret-res");
        assert_eq!(format!("{ha1:?}"), "[redacted]");
    }

    fn sample_credentials() -> Credentials {
        Credentials {
            username: "user1_private@home1.net".into(),
            realm: "bsf.home1.net".into(),
            nonce: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            uri: "/".into(),
            response: "6629fae49393a05397450978507c4ef1".into(),
            algorithm: Some(AKAV1_MD5.into()),
            cnonce: Some("a \"quoted\" \\ cnonce".into()),
            nc: Some(0x1f),
            qop: Some(Qop::AuthInt),
            opaque: Some("opaque-value".into()),
            auts: Some("AAECAwQFBgcICQoLDA0=".into()),
        }
    }

    #[test]
    fn credentials_round_trip() {
        let creds = sample_credentials();
        let header = creds.to_header();
        assert!(header.starts_with("Digest username=\"user1_private@home1.net\", "));
        assert!(header.contains("algorithm=AKAv1-MD5"));
        assert!(header.contains("nc=0000001f"));
        assert!(header.contains("qop=auth-int"));
        assert_eq!(Credentials::parse(&header).unwrap(), creds);
    }

    #[test]
    fn first_ub_request_with_empty_nonce_and_response_parses() {
        let header = r#"Digest username="user1_private@home1.net", realm="bsf.home1.net", nonce="", uri="/", response="""#;
        let creds = Credentials::parse(header).unwrap();
        assert_eq!(creds.nonce, "");
        assert_eq!(creds.response, "");
        assert_eq!(creds.qop, None);
        assert_eq!(creds.to_header(), header);
    }

    #[test]
    fn names_and_scheme_are_case_insensitive_and_unknown_params_ignored() {
        let header = "dIGEST  USERNAME=\"u\" ,Realm=r,NONCE=\"n\",\tUri=\"/\",, Response=\"\", \
                      userhash=false, charset=UTF-8";
        let creds = Credentials::parse(header).unwrap();
        assert_eq!(creds.username, "u");
        assert_eq!(creds.realm, "r");
        assert_eq!(creds.uri, "/");
    }

    #[test]
    fn challenge_round_trip() {
        let challenge = Challenge {
            realm: "3GPP-bootstrapping@op.example".into(),
            nonce: "bm9uY2U=".into(),
            algorithm: Some(MD5.into()),
            qop: vec![Qop::AuthInt, Qop::Auth],
            opaque: Some("xyz".into()),
            stale: true,
        };
        let header = challenge.to_header();
        assert_eq!(
            header,
            "Digest realm=\"3GPP-bootstrapping@op.example\", nonce=\"bm9uY2U=\", \
             algorithm=MD5, qop=\"auth-int,auth\", opaque=\"xyz\", stale=true"
        );
        assert_eq!(Challenge::parse(&header).unwrap(), challenge);
    }

    #[test]
    fn ub_challenge_matches_design() {
        let challenge = Challenge {
            realm: "127.0.0.1".into(),
            nonce: "n".into(),
            algorithm: Some(AKAV1_MD5.into()),
            qop: vec![Qop::AuthInt],
            opaque: Some("o".into()),
            stale: false,
        };
        assert_eq!(
            challenge.to_header(),
            r#"Digest realm="127.0.0.1", nonce="n", algorithm=AKAv1-MD5, qop="auth-int", opaque="o""#
        );
    }

    #[test]
    fn challenge_ignores_unknown_qop_options_but_needs_one_known() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-conf, auth""#).unwrap();
        assert_eq!(c.qop, vec![Qop::Auth]);
        assert!(!c.stale);
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-conf""#),
            Err(DigestError::bad("qop", "offers neither auth nor auth-int"))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r""#),
            Err(DigestError::Missing("nonce"))
        );
    }

    #[test]
    fn authentication_info_round_trip() {
        let info = AuthenticationInfo {
            qop: Some(Qop::AuthInt),
            rspauth: "0123456789abcdef0123456789abcdef".into(),
            cnonce: Some("c".into()),
            nc: Some(1),
            nextnonce: Some("next".into()),
        };
        let header = info.to_header();
        assert_eq!(
            header,
            "qop=auth-int, rspauth=\"0123456789abcdef0123456789abcdef\", cnonce=\"c\", \
             nc=00000001, nextnonce=\"next\""
        );
        assert_eq!(AuthenticationInfo::parse(&header).unwrap(), info);
        assert_eq!(
            AuthenticationInfo::parse("qop=auth"),
            Err(DigestError::Missing("rspauth"))
        );
    }

    const GOOD: &str = r#"Digest username="u", realm="r", nonce="n", uri="/", response="""#;

    #[test]
    fn hostile_too_long() {
        let header = format!("{GOOD}, x=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(Credentials::parse(&header), Err(DigestError::TooLong));
        assert_eq!(Challenge::parse(&header), Err(DigestError::TooLong));
        assert_eq!(
            AuthenticationInfo::parse(&header),
            Err(DigestError::TooLong)
        );
    }

    #[test]
    fn hostile_value_too_long() {
        let header = format!("{GOOD}, opaque=\"{}\"", "a".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(
            Credentials::parse(&header),
            Err(DigestError::ValueTooLong("opaque".into()))
        );
        let header = format!("{GOOD}, opaque={}", "a".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(
            Credentials::parse(&header),
            Err(DigestError::ValueTooLong("opaque".into()))
        );
    }

    #[test]
    fn hostile_duplicate_param() {
        let header = format!("{GOOD}, Username=\"admin\"");
        let err = Credentials::parse(&header).unwrap_err();
        assert_eq!(err, DigestError::Duplicate("username".into()));
        assert_eq!(
            err.to_string(),
            "Digest parameter \"username\" appears more than once"
        );
    }

    #[test]
    fn hostile_unterminated_quote() {
        let header = r#"Digest username="u", realm="r, nonce="n", uri="/", response="x"#;
        let err = Credentials::parse(header).unwrap_err();
        assert!(matches!(err, DigestError::Malformed(_)), "{err:?}");
        let header = r#"Digest username="u\"#;
        assert!(matches!(
            Credentials::parse(header),
            Err(DigestError::Malformed(_))
        ));
    }

    #[test]
    fn hostile_missing_required_params() {
        for name in ["username", "realm", "nonce", "uri", "response"] {
            let header = GOOD
                .split(", ")
                .filter(|p| !p.contains(&format!("{name}=")))
                .collect::<Vec<_>>()
                .join(", ");
            let header = if header.starts_with("Digest") {
                header
            } else {
                format!("Digest {header}")
            };
            let err = Credentials::parse(&header).unwrap_err();
            assert_eq!(err, DigestError::Missing(name), "{header}");
            assert_eq!(
                err.to_string(),
                format!("Digest parameter {name:?} is missing")
            );
        }
    }

    #[test]
    fn hostile_bad_nc() {
        for nc in ["1", "0000000G", "0000000A", "000000001", "\"\""] {
            let header = format!("{GOOD}, qop=auth, cnonce=\"c\", nc={nc}");
            let err = Credentials::parse(&header).unwrap_err();
            assert!(
                matches!(err, DigestError::BadValue { param: "nc", .. }),
                "{nc}: {err:?}"
            );
        }
    }

    #[test]
    fn qop_without_cnonce_or_nc_is_refused() {
        assert_eq!(
            Credentials::parse(&format!("{GOOD}, qop=auth, nc=00000001")),
            Err(DigestError::Missing("cnonce"))
        );
        assert_eq!(
            Credentials::parse(&format!("{GOOD}, qop=auth, cnonce=\"c\"")),
            Err(DigestError::Missing("nc"))
        );
        assert!(matches!(
            Credentials::parse(&format!("{GOOD}, qop=auth-conf, cnonce=\"c\", nc=00000001")),
            Err(DigestError::BadValue { param: "qop", .. })
        ));
    }

    #[test]
    fn hostile_other_scheme_and_garbage() {
        assert_eq!(
            Credentials::parse("Basic dXNlcjpwYXNz"),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Credentials::parse("Digestusername=\"u\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(Credentials::parse(""), Err(DigestError::NotDigest));
        for header in [
            "Digest username",
            "Digest =\"u\"",
            "Digest username=\"u\" realm=\"r\"",
            "Digest username=",
            "Digest username=\"a\nb\"",
        ] {
            assert!(
                matches!(Credentials::parse(header), Err(DigestError::Malformed(_))),
                "{header:?}"
            );
        }
    }

    #[test]
    fn errors_never_echo_values() {
        let secret = "s3cr3t-value";
        for header in [
            format!("Digest username=\"{secret}"),
            format!("Digest username=\"{secret}\", username=\"{secret}\""),
            format!("{GOOD}, qop=auth, cnonce=\"{secret}\", nc={secret}"),
            format!("{GOOD}, qop={secret}, cnonce=\"c\", nc=00000001"),
            format!("Digest username=\"{secret}\" realm=\"r\""),
        ] {
            let err = Credentials::parse(&header).unwrap_err();
            assert!(!err.to_string().contains(secret), "{err}");
            assert!(!format!("{err:?}").contains(secret), "{err:?}");
        }
    }

    #[test]
    fn non_ascii_values_survive_quoting() {
        let header =
            "Digest username=\"ü\\ser\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\"";
        assert_eq!(Credentials::parse(header).unwrap().username, "üser");
    }
}
