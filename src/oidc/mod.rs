//! OpenID Connect provider (Core 1.0, Discovery 1.0; DESIGN.md §2.7): JOSE, the signing
//! keys, registered clients, the discovery document, grants (codes, refresh tokens, PKCE,
//! scopes) and token claims, and the HTTP handlers so far.

pub mod authorize;
pub mod client;
pub mod discovery;
pub mod endpoint;
pub mod grant;
pub mod jose;
pub mod keys;
pub mod token;

/// Whether a URL's host is a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`): where plain
/// `http://` is acceptable for an issuer or a redirect URI, since nothing crosses a network.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(addr)) => addr.is_loopback(),
        Some(url::Host::Ipv6(addr)) => addr.is_loopback(),
        None => false,
    }
}
