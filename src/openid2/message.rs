//! OpenID messages (OpenID Authentication 2.0 §4.1, §4.1.2, §4.1.3, §5, §12, §14): the
//! ordered `openid.*` fields of a request or response, their namespace (2.0 or OpenID 1.1
//! compatibility mode), the aliases of extensions, and the three ways a message leaves the
//! OP: key-value form (direct responses, §5.1.2), a redirect to `return_to` with the fields
//! appended to its query (§5.2.1, §10.1), or a self-posting HTML form when that URL would be
//! too long for a redirect (§5.2.2, DESIGN.md §2.7).
//!
//! Fields are stored without their `openid.` prefix, in the order they arrived or were set,
//! so signing (§10.1) and key-value encoding see the same order.

use url::Url;

use super::kv::{self, KvError};
use super::{OPENID1_0_NS, OPENID1_1_NS, OPENID2_NS, SREG_1_0_NS};

/// The protocol version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// OpenID Authentication 2.0: `openid.ns` is `http://specs.openid.net/auth/2.0`.
    V2,
    /// OpenID 1.1 compatibility mode (§14): `openid.ns` absent (or a 1.x namespace URI).
    V1,
}

/// The `openid.mode` values this OP knows (§8, §9, §10, §11.4.2, §5.1.2.2, §5.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Associate,
    CheckidSetup,
    CheckidImmediate,
    CheckAuthentication,
    IdRes,
    Cancel,
    SetupNeeded,
    Error,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Associate => "associate",
            Mode::CheckidSetup => "checkid_setup",
            Mode::CheckidImmediate => "checkid_immediate",
            Mode::CheckAuthentication => "check_authentication",
            Mode::IdRes => "id_res",
            Mode::Cancel => "cancel",
            Mode::SetupNeeded => "setup_needed",
            Mode::Error => "error",
        }
    }

    pub fn parse(value: &str) -> Option<Mode> {
        [
            Mode::Associate,
            Mode::CheckidSetup,
            Mode::CheckidImmediate,
            Mode::CheckAuthentication,
            Mode::IdRes,
            Mode::Cancel,
            Mode::SetupNeeded,
            Mode::Error,
        ]
        .into_iter()
        .find(|m| m.as_str() == value)
    }
}

/// Why a message could not be read or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the request has no openid.* fields")]
    Empty,
    #[error("field \"openid.\" has no name")]
    EmptyKey,
    #[error("openid.{0} appears more than once")]
    DuplicateField(String),
    #[error(
        "openid.ns {0:?} is not a known OpenID namespace; \
         OpenID 2.0 uses http://specs.openid.net/auth/2.0"
    )]
    UnknownNamespace(String),
    #[error(
        "namespace alias {0:?} is not allowed: an alias must be non-empty and contain no period"
    )]
    BadAlias(String),
    #[error("namespace alias {0:?} is an OpenID field name and cannot name an extension")]
    ReservedAlias(String),
    #[error("openid.ns.{0} is empty; it must be the extension's namespace URI")]
    EmptyNamespaceUri(String),
    #[error("namespace {uri} is declared twice, as {first:?} and as {second:?}")]
    NamespaceDeclaredTwice {
        uri: String,
        first: String,
        second: String,
    },
    #[error("alias {alias:?} is already used for {existing}, so it cannot also name {uri}")]
    AliasInUse {
        alias: String,
        existing: String,
        uri: String,
    },
    #[error("openid.{0} is missing")]
    Missing(String),
    #[error("openid.mode {0:?} is not an OpenID mode")]
    UnknownMode(String),
    #[error("openid.return_to {url:?} is not a usable URL: {reason}")]
    BadReturnTo { url: String, reason: String },
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// Field names of OpenID itself, which §12 forbids as extension aliases.
const RESERVED_ALIASES: &[&str] = &[
    "assoc_handle",
    "assoc_type",
    "claimed_id",
    "contact",
    "delegate",
    "dh_consumer_public",
    "dh_gen",
    "dh_modulus",
    "error",
    "identity",
    "invalidate_handle",
    "mode",
    "ns",
    "op_endpoint",
    "openid",
    "realm",
    "reference",
    "response_nonce",
    "return_to",
    "server",
    "session_type",
    "sig",
    "signed",
    "trust_root",
];

/// Checks an extension alias against §12.
fn check_alias(alias: &str) -> Result<(), MessageError> {
    if alias.is_empty() || alias.contains('.') || alias.contains(',') {
        return Err(MessageError::BadAlias(alias.to_owned()));
    }
    if RESERVED_ALIASES.contains(&alias) {
        return Err(MessageError::ReservedAlias(alias.to_owned()));
    }
    Ok(())
}

/// An extension's namespace alias in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AliasDecl {
    alias: String,
    uri: String,
}

/// An OpenID message: its version, its fields in order (without the `openid.` prefix) and
/// the extension aliases it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    version: Version,
    fields: Vec<(String, String)>,
    aliases: Vec<AliasDecl>,
}

/// One extension's fields in a message, found by namespace URI whatever alias was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionArgs<'a> {
    /// The alias the sender chose (`sreg`, `ax`, `pape`, or anything else).
    pub alias: &'a str,
    /// The extension's namespace URI.
    pub ns_uri: &'a str,
    /// The extension's fields with `openid.<alias>.` removed, in message order.
    pub fields: Vec<(&'a str, &'a str)>,
}

impl<'a> ExtensionArgs<'a> {
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// An extension's response fields, ready to add to a message under the alias the relying
/// party used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub alias: String,
    pub ns_uri: String,
    /// Field names without `openid.<alias>.`, in the order they are sent.
    pub fields: Vec<(String, String)>,
}

/// Where an indirect message goes (§5.2): a redirect, or a form that posts itself when the
/// redirect URL would be too long for some browsers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indirect {
    /// `303 See Other` to this URL.
    Redirect(String),
    /// An HTML form posting `fields` to `action` (the `return_to` URL as given).
    FormPost {
        action: String,
        fields: Vec<(String, String)>,
    },
}

/// Redirect URLs longer than this go by a self-posting form instead (§5.2.2; DESIGN.md §2.7).
pub const MAX_REDIRECT_URL_LEN: usize = 2048;

impl Message {
    /// An empty message to send. A 2.0 message starts with `ns`.
    pub fn new(version: Version) -> Self {
        let fields = match version {
            Version::V2 => vec![("ns".to_owned(), OPENID2_NS.to_owned())],
            Version::V1 => Vec::new(),
        };
        Self {
            version,
            fields,
            aliases: Vec::new(),
        }
    }

    /// Reads a message from form or query pairs. Only `openid.*` pairs belong to it; others
    /// (a relying party's own parameters) are ignored. A repeated `openid.*` key is an error,
    /// since which value would be signed is then ambiguous.
    pub fn from_pairs<K, V>(pairs: &[(K, V)]) -> Result<Self, MessageError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = key.as_ref().strip_prefix("openid.") else {
                continue;
            };
            if name.is_empty() {
                return Err(MessageError::EmptyKey);
            }
            if fields.iter().any(|(k, _)| k == name) {
                return Err(MessageError::DuplicateField(name.to_owned()));
            }
            fields.push((name.to_owned(), value.as_ref().to_owned()));
        }
        if fields.is_empty() {
            return Err(MessageError::Empty);
        }
        Self::from_fields(fields)
    }

    /// Reads a message from key-value form, as a relying party would read a direct response.
    pub fn from_kv(text: &str) -> Result<Self, MessageError> {
        let fields = kv::parse(text)?;
        if fields.is_empty() {
            return Err(MessageError::Empty);
        }
        Self::from_fields(fields)
    }

    fn from_fields(fields: Vec<(String, String)>) -> Result<Self, MessageError> {
        let version = match fields.iter().find(|(k, _)| k == "ns") {
            None => Version::V1,
            Some((_, ns)) if ns == OPENID2_NS => Version::V2,
            Some((_, ns)) if ns == OPENID1_1_NS || ns == OPENID1_0_NS => Version::V1,
            Some((_, ns)) => return Err(MessageError::UnknownNamespace(ns.clone())),
        };
        let mut aliases: Vec<AliasDecl> = Vec::new();
        for (key, uri) in &fields {
            let Some(alias) = key.strip_prefix("ns.") else {
                continue;
            };
            check_alias(alias)?;
            if uri.is_empty() {
                return Err(MessageError::EmptyNamespaceUri(alias.to_owned()));
            }
            if let Some(first) = aliases.iter().find(|d| d.uri == *uri) {
                return Err(MessageError::NamespaceDeclaredTwice {
                    uri: uri.clone(),
                    first: first.alias.clone(),
                    second: alias.to_owned(),
                });
            }
            aliases.push(AliasDecl {
                alias: alias.to_owned(),
                uri: uri.clone(),
            });
        }
        // OpenID 1.1 relying parties send Simple Registration as bare `openid.sreg.*`.
        if version == Version::V1
            && !aliases.iter().any(|d| d.alias == "sreg")
            && !aliases.iter().any(|d| d.uri == SREG_1_0_NS)
            && fields.iter().any(|(k, _)| k.starts_with("sreg."))
        {
            aliases.push(AliasDecl {
                alias: "sreg".to_owned(),
                uri: SREG_1_0_NS.to_owned(),
            });
        }
        Ok(Self {
            version,
            fields,
            aliases,
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn is_openid1(&self) -> bool {
        self.version == Version::V1
    }

    /// The fields in order, without the `openid.` prefix.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The value of `openid.<key>`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `openid.<key>`, or an error naming it.
    pub fn require(&self, key: &str) -> Result<&str, MessageError> {
        self.get(key)
            .ok_or_else(|| MessageError::Missing(key.to_owned()))
    }

    /// `openid.mode`, which every message has.
    pub fn mode(&self) -> Result<Mode, MessageError> {
        let value = self.require("mode")?;
        Mode::parse(value).ok_or_else(|| MessageError::UnknownMode(value.to_owned()))
    }

    /// Sets `openid.<key>`, replacing its value in place or appending it.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    /// Removes `openid.<key>`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(index).1)
    }

    /// The alias this message uses for the extension `ns_uri`.
    pub fn alias_of(&self, ns_uri: &str) -> Option<&str> {
        self.aliases
            .iter()
            .find(|d| d.uri == ns_uri)
            .map(|d| d.alias.as_str())
    }

    /// The extension namespace URIs this message declares, with their aliases.
    pub fn extensions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases
            .iter()
            .map(|d| (d.alias.as_str(), d.uri.as_str()))
    }

    /// The fields of the extension `ns_uri`, whatever alias the sender gave it; `None` when
    /// the message does not declare it.
    pub fn extension(&self, ns_uri: &str) -> Option<ExtensionArgs<'_>> {
        let decl = self.aliases.iter().find(|d| d.uri == ns_uri)?;
        let fields = self
            .fields
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(decl.alias.as_str())?.strip_prefix('.')?;
                Some((rest, v.as_str()))
            })
            .collect();
        Some(ExtensionArgs {
            alias: &decl.alias,
            ns_uri: &decl.uri,
            fields,
        })
    }

    /// Adds an extension's fields under its alias, declaring the alias with `ns.<alias>`
    /// (except OpenID 1.1's implicit `sreg`, which is never declared).
    pub fn add_extension(&mut self, ext: &Extension) -> Result<(), MessageError> {
        check_alias(&ext.alias)?;
        if let Some(existing) = self.aliases.iter().find(|d| d.alias == ext.alias) {
            if existing.uri != ext.ns_uri {
                return Err(MessageError::AliasInUse {
                    alias: ext.alias.clone(),
                    existing: existing.uri.clone(),
                    uri: ext.ns_uri.clone(),
                });
            }
        } else {
            if let Some(other) = self.aliases.iter().find(|d| d.uri == ext.ns_uri) {
                return Err(MessageError::NamespaceDeclaredTwice {
                    uri: ext.ns_uri.clone(),
                    first: other.alias.clone(),
                    second: ext.alias.clone(),
                });
            }
            let implicit =
                self.version == Version::V1 && ext.alias == "sreg" && ext.ns_uri == SREG_1_0_NS;
            if !implicit {
                self.set(&format!("ns.{}", ext.alias), ext.ns_uri.clone());
            }
            self.aliases.push(AliasDecl {
                alias: ext.alias.clone(),
                uri: ext.ns_uri.clone(),
            });
        }
        for (key, value) in &ext.fields {
            self.set(&format!("{}.{}", ext.alias, key), value.clone());
        }
        Ok(())
    }

    /// Key-value form, keys without `openid.` (§5.1.2).
    pub fn to_kv(&self) -> Result<String, KvError> {
        kv::encode(&self.fields)
    }

    /// The fields with their `openid.` prefix, for a form or a query string.
    pub fn to_form_fields(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(k, v)| (format!("openid.{k}"), v.clone()))
            .collect()
    }

    /// `return_to` with the message appended to its query (§10.1: the relying party's own
    /// parameters stay, the OpenID fields come after them). The relying party's URL is kept
    /// byte for byte (not re-serialised), since some relying parties compare it exactly; a
    /// fragment stays at the end.
    pub fn to_redirect_url(&self, return_to: &str) -> Result<String, MessageError> {
        let bad = |reason: &str| MessageError::BadReturnTo {
            url: return_to.to_owned(),
            reason: reason.to_owned(),
        };
        if return_to
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("it contains white space or control characters"));
        }
        let url = Url::parse(return_to).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad("it is not an http or https URL"));
        }
        let (base, fragment) = match return_to.find('#') {
            Some(i) => return_to.split_at(i),
            None => (return_to, ""),
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.fields {
            query.append_pair(&format!("openid.{k}"), v);
        }
        let separator = match base.find('?') {
            None => "?",
            Some(_) if base.ends_with('?') || base.ends_with('&') => "",
            Some(_) => "&",
        };
        Ok(format!("{base}{separator}{}{fragment}", query.finish()))
    }

    /// How to deliver this message to `return_to`: a redirect when the URL is at most
    /// [`MAX_REDIRECT_URL_LEN`] bytes, a self-posting form otherwise.
    pub fn to_indirect(&self, return_to: &str) -> Result<Indirect, MessageError> {
        let url = self.to_redirect_url(return_to)?;
        if url.len() <= MAX_REDIRECT_URL_LEN {
            Ok(Indirect::Redirect(url))
        } else {
            Ok(Indirect::FormPost {
                action: return_to.to_owned(),
                fields: self.to_form_fields(),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::openid2::{AX_NS, SREG_1_1_NS};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_a_2_0_request_and_ignores_other_parameters() {
        let m = Message::from_pairs(&pairs(&[
            ("openid.ns", OPENID2_NS),
            ("openid.mode", "checkid_setup"),
            ("openid.return_to", "https://rp.example/back?x=1"),
            ("session", "rp-cookie-like"),
        ]))
        .unwrap();
        assert_eq!(m.version(), Version::V2);
        assert!(!m.is_openid1());
        assert_eq!(m.mode().unwrap(), Mode::CheckidSetup);
        assert_eq!(m.get("return_to"), Some("https://rp.example/back?x=1"));
        assert_eq!(m.get("session"), None);
        assert_eq!(m.fields().len(), 3);
    }

    #[test]
    fn no_ns_means_openid_1_1_compatibility() {
        let m = Message::from_pairs(&pairs(&[("openid.mode", "checkid_setup")])).unwrap();
        assert_eq!(m.version(), Version::V1);
        let m = Message::from_pairs(&pairs(&[
            ("openid.ns", OPENID1_1_NS),
            ("openid.mode", "associate"),
        ]))
        .unwrap();
        assert!(m.is_openid1());
    }

    #[test]
    fn bad_messages_are_named() {
        assert_eq!(
            Message::from_pairs(&pairs(&[("other", "x")])),
            Err(MessageError::Empty)
        );
        assert_eq!(
            Message::from_pairs(&pairs(&[("openid.", "x")])),
            Err(MessageError::EmptyKey)
        );
        assert_eq!(
            Message::from_pairs(&pairs(&[("openid.mode", "a"), ("openid.mode", "b")])),
            Err(MessageError::DuplicateField("mode".into()))
        );
        assert_eq!(
            Message::from_pairs(&pairs(&[("openid.ns", "http://example.com/openid/3")])),
            Err(MessageError::UnknownNamespace(
                "http://example.com/openid/3".into()
            ))
        );
        let m = Message::from_pairs(&pairs(&[("openid.mode", "dance")])).unwrap();
        assert_eq!(m.mode(), Err(MessageError::UnknownMode("dance".into())));
        let m = Message::from_pairs(&pairs(&[("openid.ns", OPENID2_NS)])).unwrap();
        assert_eq!(m.mode(), Err(MessageError::Missing("mode".into())));
        assert_eq!(m.mode().unwrap_err().to_string(), "openid.mode is missing");
    }

    #[test]
    fn extensions_are_found_by_uri_whatever_the_alias() {
        let m = Message::from_pairs(&pairs(&[
            ("openid.ns", OPENID2_NS),
            ("openid.ns.profile", SREG_1_1_NS),
            ("openid.profile.required", "email"),
            ("openid.ns.attrs", AX_NS),
            ("openid.attrs.mode", "fetch_request"),
            ("openid.profilex.required", "not sreg"),
        ]))
        .unwrap();
        assert_eq!(m.alias_of(SREG_1_1_NS), Some("profile"));
        let sreg = m.extension(SREG_1_1_NS).unwrap();
        assert_eq!(sreg.alias, "profile");
        assert_eq!(sreg.fields, vec![("required", "email")]);
        assert_eq!(sreg.get("required"), Some("email"));
        let ax = m.extension(AX_NS).unwrap();
        assert_eq!(ax.get("mode"), Some("fetch_request"));
        assert!(m.extension(SREG_1_0_NS).is_none());
        assert_eq!(m.extensions().count(), 2);
    }

    #[test]
    fn bad_aliases_are_refused() {
        let with_alias = |alias: &str, uri: &str| {
            Message::from_pairs(&pairs(&[
                ("openid.ns", OPENID2_NS),
                (&format!("openid.ns.{alias}"), uri),
            ]))
        };
        assert_eq!(
            with_alias("a.b", AX_NS),
            Err(MessageError::BadAlias("a.b".into()))
        );
        assert_eq!(
            with_alias("mode", AX_NS),
            Err(MessageError::ReservedAlias("mode".into()))
        );
        assert_eq!(
            with_alias("ax", ""),
            Err(MessageError::EmptyNamespaceUri("ax".into()))
        );
        let twice = Message::from_pairs(&pairs(&[("openid.ns.a", AX_NS), ("openid.ns.b", AX_NS)]));
        assert_eq!(
            twice,
            Err(MessageError::NamespaceDeclaredTwice {
                uri: AX_NS.into(),
                first: "a".into(),
                second: "b".into()
            })
        );
    }

    #[test]
    fn openid_1_1_sreg_needs_no_declaration() {
        let m = Message::from_pairs(&pairs(&[
            ("openid.mode", "checkid_setup"),
            ("openid.sreg.optional", "nickname"),
        ]))
        .unwrap();
        assert_eq!(m.alias_of(SREG_1_0_NS), Some("sreg"));
        assert_eq!(
            m.extension(SREG_1_0_NS).unwrap().get("optional"),
            Some("nickname")
        );
        // In 2.0 an undeclared alias is just an unknown field.
        let m = Message::from_pairs(&pairs(&[
            ("openid.ns", OPENID2_NS),
            ("openid.sreg.optional", "nickname"),
        ]))
        .unwrap();
        assert_eq!(m.alias_of(SREG_1_0_NS), None);
    }

    #[test]
    fn adding_extensions_declares_aliases() {
        let ext = Extension {
            alias: "sreg".into(),
            ns_uri: SREG_1_0_NS.into(),
            fields: vec![("nickname".into(), "alice".into())],
        };
        let mut v2 = Message::new(Version::V2);
        v2.set("mode", "id_res");
        v2.add_extension(&ext).unwrap();
        assert_eq!(
            v2.fields(),
            pairs(&[
                ("ns", OPENID2_NS),
                ("mode", "id_res"),
                ("ns.sreg", SREG_1_0_NS),
                ("sreg.nickname", "alice"),
            ])
        );
        let mut v1 = Message::new(Version::V1);
        v1.set("mode", "id_res");
        v1.add_extension(&ext).unwrap();
        assert_eq!(
            v1.fields(),
            pairs(&[("mode", "id_res"), ("sreg.nickname", "alice")])
        );
        let clash = Extension {
            alias: "sreg".into(),
            ns_uri: AX_NS.into(),
            fields: vec![],
        };
        assert!(matches!(
            v2.add_extension(&clash),
            Err(MessageError::AliasInUse { .. })
        ));
        let reserved = Extension {
            alias: "sig".into(),
            ns_uri: AX_NS.into(),
            fields: vec![],
        };
        assert_eq!(
            v2.add_extension(&reserved),
            Err(MessageError::ReservedAlias("sig".into()))
        );
    }

    #[test]
    fn set_replaces_in_place_and_remove_removes() {
        let mut m = Message::new(Version::V2);
        m.set("mode", "id_res");
        m.set("sig", "x");
        m.set("mode", "cancel");
        assert_eq!(m.fields()[1], ("mode".into(), "cancel".into()));
        assert_eq!(m.remove("sig"), Some("x".into()));
        assert_eq!(m.remove("sig"), None);
    }

    #[test]
    fn redirect_keeps_the_relying_partys_query() {
        let mut m = Message::new(Version::V2);
        m.set("mode", "cancel");
        let url = m
            .to_redirect_url("https://rp.example/finish?session=a%20b&x=1")
            .unwrap();
        assert_eq!(
            url,
            "https://rp.example/finish?session=a%20b&x=1\
             &openid.ns=http%3A%2F%2Fspecs.openid.net%2Fauth%2F2.0&openid.mode=cancel"
        );
        let url = m.to_redirect_url("https://rp.example/finish").unwrap();
        assert!(url.starts_with("https://rp.example/finish?openid.ns="));
        // The relying party's URL is not normalised, and a fragment stays last.
        let url = m.to_redirect_url("HTTPS://RP.example:443/f?#top").unwrap();
        assert_eq!(
            url,
            "HTTPS://RP.example:443/f?openid.ns=http%3A%2F%2Fspecs.openid.net%2Fauth%2F2.0\
             &openid.mode=cancel#top"
        );
        assert!(matches!(
            m.to_redirect_url("https://rp.example/a b"),
            Err(MessageError::BadReturnTo { .. })
        ));
        assert!(matches!(
            m.to_redirect_url("not a url"),
            Err(MessageError::BadReturnTo { .. })
        ));
        assert!(matches!(
            m.to_redirect_url("mailto:a@b"),
            Err(MessageError::BadReturnTo { .. })
        ));
    }

    #[test]
    fn long_responses_post_a_form() {
        let mut m = Message::new(Version::V2);
        m.set("mode", "id_res");
        assert!(matches!(
            m.to_indirect("https://rp.example/r").unwrap(),
            Indirect::Redirect(_)
        ));
        m.set("sreg.fullname", "x".repeat(2100));
        match m.to_indirect("https://rp.example/r?a=1").unwrap() {
            Indirect::FormPost { action, fields } => {
                assert_eq!(action, "https://rp.example/r?a=1");
                assert_eq!(fields[0], ("openid.ns".into(), OPENID2_NS.into()));
                assert_eq!(fields.len(), 3);
            }
            other => panic!("expected a form, got {other:?}"),
        }
    }

    #[test]
    fn kv_round_trip() {
        let mut m = Message::new(Version::V2);
        m.set("is_valid", "true");
        let text = m.to_kv().unwrap();
        assert_eq!(text, format!("ns:{OPENID2_NS}\nis_valid:true\n"));
        assert_eq!(Message::from_kv(&text).unwrap(), m);
        m.set("error", "two\nlines");
        assert!(m.to_kv().is_err());
        assert_eq!(Message::from_kv(""), Err(MessageError::Empty));
    }
}
