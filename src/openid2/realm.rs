//! Realms (OpenID Authentication 2.0 §9.2; `openid.trust_root` in OpenID 1.1, §14): the
//! pattern of URLs a relying party asks the user to trust, how a `return_to` URL is checked
//! against it, which realms are too broad to assert to, and the host that names the relying
//! party for pairwise pseudonyms (DESIGN.md §2.6).
//!
//! Both URLs are parsed and normalised by the `url` crate (lower-case host, default ports
//! known, dot segments removed), so `http://Example.COM:80/a/../b` and `http://example.com/b`
//! are the same place (RFC 3986 §6.2.3).

use std::fmt;

use url::{Host, Url};

use super::message::{Message, MessageError, Version};

/// Why a realm was refused, or why a `return_to` URL is not inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmError {
    #[error("realm {realm:?} is not a URL: {reason}")]
    NotAUrl { realm: String, reason: String },
    #[error("realm {0:?} must use http or https")]
    BadScheme(String),
    #[error("realm {0:?} must not contain a fragment (#...)")]
    Fragment(String),
    #[error("realm {0:?} must not contain a user name or password")]
    UserInfo(String),
    #[error("realm {0:?} has no host")]
    NoHost(String),
    #[error("realm {0:?} may hold a wildcard only as \"*.\" before the first label of its host")]
    WildcardPosition(String),
    #[error("realm {0:?} is too broad: a wildcard may not cover a public suffix or an IP address")]
    Overbroad(String),
    #[error("openid.return_to {return_to:?} is not inside the realm {realm:?}: {reason}")]
    ReturnToOutsideRealm {
        return_to: String,
        realm: String,
        reason: &'static str,
    },
    #[error("openid.return_to and openid.realm are both missing; one of them is required")]
    NoRealmOrReturnTo,
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// A relying party's realm (§9.2), e.g. `https://*.example.com/` or `https://rp.example/app/`.
#[derive(Clone, PartialEq, Eq)]
pub struct Realm {
    /// As the relying party sent it.
    text: String,
    /// The realm with the leading `*.` removed from its host.
    url: Url,
    wildcard: bool,
}

impl fmt::Debug for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Realm({:?})", self.text)
    }
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Path and query, as §9.2's path rule compares them.
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

impl Realm {
    /// Parses a realm: an http or https URL without fragment or user information, whose host
    /// may start with the wildcard label `*.`.
    pub fn parse(text: &str) -> Result<Self, RealmError> {
        let (to_parse, wildcard) = match text.split_once("://") {
            Some((scheme, rest)) if rest.starts_with("*.") => {
                (format!("{scheme}://{}", &rest[2..]), true)
            }
            _ => (text.to_owned(), false),
        };
        let url = Url::parse(&to_parse).map_err(|e| RealmError::NotAUrl {
            realm: text.to_owned(),
            reason: e.to_string(),
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(RealmError::BadScheme(text.to_owned()));
        }
        if url.fragment().is_some() {
            return Err(RealmError::Fragment(text.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RealmError::UserInfo(text.to_owned()));
        }
        match url.host_str() {
            None | Some("") => return Err(RealmError::NoHost(text.to_owned())),
            Some(host) if host.contains('*') => {
                return Err(RealmError::WildcardPosition(text.to_owned()));
            }
            Some(_) => {}
        }
        Ok(Self {
            text: text.to_owned(),
            url,
            wildcard,
        })
    }

    /// The realm a checkid request names (§9.1): `openid.realm` in 2.0, `openid.trust_root`
    /// in OpenID 1.1 (§14), and `openid.return_to` when that is absent. The `return_to` URL,
    /// when present, must be inside it.
    pub fn from_request(message: &Message) -> Result<Self, RealmError> {
        let field = match message.version() {
            Version::V2 => "realm",
            Version::V1 => "trust_root",
        };
        let return_to = message.get("return_to");
        let text = message
            .get(field)
            .or(return_to)
            .ok_or(RealmError::NoRealmOrReturnTo)?;
        let realm = Self::parse(text)?;
        if let Some(return_to) = return_to {
            realm.check(return_to)?;
        }
        Ok(realm)
    }

    /// The realm as the relying party sent it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the host starts with the wildcard `*.`.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The realm's host without the wildcard (`*.example.com` → `example.com`), lower-case:
    /// the relying party's name in pairwise pseudonyms (DESIGN.md §2.6).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// Whether `return_to` is inside this realm (§9.2).
    pub fn matches(&self, return_to: &str) -> bool {
        self.check(return_to).is_ok()
    }

    /// Checks `return_to` against this realm (§9.2): same scheme, same port (default ports
    /// included), the same host or, for a wildcard realm, a host under it at a label
    /// boundary, and a path equal to the realm's or below it.
    pub fn check(&self, return_to: &str) -> Result<(), RealmError> {
        let outside = |reason| RealmError::ReturnToOutsideRealm {
            return_to: return_to.to_owned(),
            realm: self.text.clone(),
            reason,
        };
        let url = Url::parse(return_to).map_err(|_| outside("it is not a URL"))?;
        if url.scheme() != self.url.scheme() {
            return Err(outside("the schemes differ"));
        }
        if url.port_or_known_default() != self.url.port_or_known_default() {
            return Err(outside("the ports differ"));
        }
        let Some(host) = url.host_str() else {
            return Err(outside("it has no host"));
        };
        let base = self.host();
        let host_ok = if self.wildcard {
            host == base
                || (matches!(url.host(), Some(Host::Domain(_)))
                    && host.len() > base.len()
                    && host.ends_with(base)
                    && host.as_bytes()[host.len() - base.len() - 1] == b'.')
        } else {
            host == base
        };
        if !host_ok {
            return Err(outside("the hosts differ"));
        }
        if !path_inside(&path_and_query(&self.url), &path_and_query(&url)) {
            return Err(outside("its path is not the realm's path or below it"));
        }
        Ok(())
    }

    /// Whether asserting to this realm would cover sites of many owners: a wildcard over a
    /// public suffix (`*.com`, `*.co.uk`, `*.github.io`) or over an IP address (§9.2
    /// recommends refusing such realms).
    pub fn is_overbroad(&self) -> bool {
        if !self.wildcard {
            return false;
        }
        match self.url.host() {
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.');
                psl::domain(domain.as_bytes()).is_none()
            }
            Some(Host::Ipv4(_)) | Some(Host::Ipv6(_)) | None => true,
        }
    }
}

/// §9.2's path rule, as python-openid applies it: the return_to path equals the realm's, or
/// starts with it and continues at a boundary (`/` or `?` after a path, `&` after a query).
fn path_inside(realm: &str, url: &str) -> bool {
    if realm == url {
        return true;
    }
    let Some(rest) = url.strip_prefix(realm) else {
        return false;
    };
    let allowed: &[char] = if realm.contains('?') {
        &['&']
    } else {
        &['?', '/']
    };
    realm.ends_with(allowed) || rest.starts_with(allowed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::openid2::OPENID2_NS;

    fn realm(text: &str) -> Realm {
        Realm::parse(text).unwrap()
    }

    #[test]
    fn parses_plain_and_wildcard_realms() {
        let r = realm("https://rp.example/app/");
        assert!(!r.is_wildcard());
        assert_eq!(r.host(), "rp.example");
        assert_eq!(r.as_str(), "https://rp.example/app/");
        assert_eq!(r.to_string(), "https://rp.example/app/");
        let r = realm("http://*.Example.com/");
        assert!(r.is_wildcard());
        assert_eq!(r.host(), "example.com");
        assert_eq!(format!("{r:?}"), "Realm(\"http://*.Example.com/\")");
    }

    #[test]
    fn refuses_bad_realms_with_a_reason() {
        assert!(matches!(
            Realm::parse("not a url"),
            Err(RealmError::NotAUrl { .. })
        ));
        assert_eq!(
            Realm::parse("ftp://example.com/"),
            Err(RealmError::BadScheme("ftp://example.com/".into()))
        );
        assert_eq!(
            Realm::parse("http://example.com/#frag"),
            Err(RealmError::Fragment("http://example.com/#frag".into()))
        );
        assert_eq!(
            Realm::parse("http://user:pw@example.com/"),
            Err(RealmError::UserInfo("http://user:pw@example.com/".into()))
        );
        for text in [
            "http://www.*.example.com/",
            "http://*/",
            "http://a*.example.com/",
        ] {
            let err = Realm::parse(text).unwrap_err();
            assert!(
                matches!(
                    err,
                    RealmError::WildcardPosition(_) | RealmError::NotAUrl { .. }
                ),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn matching_follows_section_9_2() {
        let r = realm("http://*.example.com/");
        assert!(r.matches("http://example.com/"));
        assert!(r.matches("http://www.example.com/return?x=1"));
        assert!(r.matches("http://a.b.example.com:80/deep/path"));
        assert!(!r.matches("http://notexample.com/"), "label boundary");
        assert!(!r.matches("https://www.example.com/"), "scheme");
        assert!(!r.matches("http://www.example.com:8080/"), "port");
        assert!(!r.matches("not a url"));

        let r = realm("https://rp.example/app");
        assert!(r.matches("https://rp.example/app"));
        assert!(r.matches("https://rp.example/app/finish"));
        assert!(r.matches("https://rp.example/app?step=2"));
        assert!(r.matches("https://RP.example:443/app/x/../y"));
        assert!(!r.matches("https://rp.example/apple"));
        assert!(!r.matches("https://rp.example/"));
        assert!(!r.matches("https://www.rp.example/app"), "no wildcard");
        assert!(!r.matches("http://rp.example/app"));

        let r = realm("https://rp.example/app?x=1");
        assert!(r.matches("https://rp.example/app?x=1&y=2"));
        assert!(!r.matches("https://rp.example/app?x=12"));

        let r = realm("https://rp.example:8443/");
        assert!(r.matches("https://rp.example:8443/r"));
        assert!(!r.matches("https://rp.example/r"));
    }

    #[test]
    fn mismatch_says_why() {
        let err = realm("https://rp.example/app/")
            .check("https://rp.example/other")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "openid.return_to \"https://rp.example/other\" is not inside the realm \
             \"https://rp.example/app/\": its path is not the realm's path or below it"
        );
        let err = realm("https://rp.example/")
            .check("https://evil.example/")
            .unwrap_err();
        assert!(err.to_string().ends_with("the hosts differ"));
    }

    #[test]
    fn overbroad_realms_are_detected() {
        for text in [
            "http://*.com/",
            "http://*.co.uk/",
            "https://*.github.io/",
            "http://*.192.168.0.1/",
            "http://*.com./",
        ] {
            assert!(realm(text).is_overbroad(), "{text}");
        }
        for text in [
            "http://*.example.com/",
            "http://*.example.co.uk/",
            "http://com/",
            "http://192.168.0.1/",
            "https://rp.example/",
        ] {
            assert!(!realm(text).is_overbroad(), "{text}");
        }
    }

    fn message(list: &[(&str, &str)]) -> Message {
        let pairs: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Message::from_pairs(&pairs).unwrap()
    }

    #[test]
    fn realm_of_a_request() {
        let m = message(&[
            ("openid.ns", OPENID2_NS),
            ("openid.realm", "https://*.rp.example/"),
            ("openid.return_to", "https://www.rp.example/back"),
        ]);
        assert_eq!(
            Realm::from_request(&m).unwrap().as_str(),
            "https://*.rp.example/"
        );
        // §9.1: the realm defaults to return_to.
        let m = message(&[
            ("openid.ns", OPENID2_NS),
            ("openid.return_to", "https://rp.example/back?x=1"),
        ]);
        assert_eq!(
            Realm::from_request(&m).unwrap().as_str(),
            "https://rp.example/back?x=1"
        );
        // §14: OpenID 1.1 calls it trust_root.
        let m = message(&[
            ("openid.mode", "checkid_setup"),
            ("openid.trust_root", "http://rp.example/"),
            ("openid.return_to", "http://rp.example/back"),
        ]);
        assert_eq!(Realm::from_request(&m).unwrap().host(), "rp.example");
        let m = message(&[
            ("openid.ns", OPENID2_NS),
            ("openid.realm", "https://rp.example/"),
            ("openid.return_to", "https://evil.example/back"),
        ]);
        assert!(matches!(
            Realm::from_request(&m),
            Err(RealmError::ReturnToOutsideRealm { .. })
        ));
        let m = message(&[("openid.ns", OPENID2_NS), ("openid.mode", "checkid_setup")]);
        assert_eq!(Realm::from_request(&m), Err(RealmError::NoRealmOrReturnTo));
    }
}
