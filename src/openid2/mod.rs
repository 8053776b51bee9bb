//! OpenID Authentication 2.0 (final), provider side, with OpenID 1.1 compatibility (§14)
//! (DESIGN.md §2.6). Pure: no I/O, no clock, no randomness of its own; times and random
//! bytes come in as arguments, so the HTTP endpoint decides where they come from and tests
//! are exact.
//!
//! - [`kv`]: key-value form (§4.1.1).
//! - [`message`]: messages, namespaces and extension aliases, and how they are sent
//!   (§4.1, §5, §12, §14).
//! - [`realm`]: realms, `return_to` matching, over-broad realms (§9.2).
//! - [`assoc`]: association and session types, Diffie-Hellman, `associate` responses
//!   (§8, §4.2 btwoc, Appendix B).
//! - [`signing`]: `signed`/`sig`, `check_authentication` verification, `response_nonce`
//!   (§10.1, §11.4, §6).
//! - [`checkid`]: `checkid_setup`/`checkid_immediate` requests and their answers (§9, §10).
//! - [`ext`]: Simple Registration 1.0/1.1, Attribute Exchange 1.0 fetch, PAPE 1.0.
//! - [`pseudonym`]: pairwise identifiers (DESIGN.md §2.6).
//! - [`xrds`]: Yadis XRDS documents for discovery (§7.3) and relying party discovery (§13).
//!
//! The I/O lives in two modules of its own: [`endpoint`] (the HTTP handlers) and
//! [`rp_discovery`] (fetching a relying party's XRDS, under an address policy).

pub mod assoc;
pub mod checkid;
pub mod endpoint;
pub mod ext;
pub mod kv;
pub mod message;
pub mod pseudonym;
pub mod realm;
pub mod rp_discovery;
pub mod signing;
pub mod xrds;

pub use assoc::{AssocError, AssocType, AssociateRequest, DhParams, MacKey, SessionType};
pub use checkid::{CheckIdError, CheckIdRequest};
pub use ext::ExtError;
pub use kv::KvError;
pub use message::{Extension, Indirect, Message, MessageError, Mode, Version};
pub use pseudonym::pseudonym;
pub use realm::{Realm, RealmError};
pub use signing::{NonceError, SigningError};
pub use xrds::XrdsError;

/// `openid.ns` of OpenID Authentication 2.0 (§4.1.2).
pub const OPENID2_NS: &str = "http://specs.openid.net/auth/2.0";
/// OpenID 1.0's namespace and discovery type, accepted as `openid.ns` for 1.x messages.
pub const OPENID1_0_NS: &str = "http://openid.net/signon/1.0";
/// OpenID 1.1's namespace and discovery type.
pub const OPENID1_1_NS: &str = "http://openid.net/signon/1.1";
/// `openid.claimed_id`/`openid.identity` when the OP is to choose the identifier (§9.1).
pub const IDENTIFIER_SELECT: &str = "http://specs.openid.net/auth/2.0/identifier_select";
/// Discovery type of an OP identifier element (§7.3.2.1.1).
pub const SERVER_TYPE: &str = "http://specs.openid.net/auth/2.0/server";
/// Discovery type of a claimed identifier element (§7.3.2.1.2).
pub const SIGNON_TYPE: &str = "http://specs.openid.net/auth/2.0/signon";
/// Discovery type of a relying party's return_to endpoints (§13).
pub const RETURN_TO_TYPE: &str = "http://specs.openid.net/auth/2.0/return_to";

/// Simple Registration 1.0 (also implied by a bare `openid.sreg.*` in OpenID 1.1).
pub const SREG_1_0_NS: &str = "http://openid.net/sreg/1.0";
/// Simple Registration 1.1.
pub const SREG_1_1_NS: &str = "http://openid.net/extensions/sreg/1.1";
/// Attribute Exchange 1.0.
pub const AX_NS: &str = "http://openid.net/srv/ax/1.0";
/// Provider Authentication Policy Extension 1.0.
pub const PAPE_NS: &str = "http://specs.openid.net/extensions/pape/1.0";

/// The OpenID `error_code` of §8.2.4.
pub const UNSUPPORTED_TYPE: &str = "unsupported-type";

/// Any error of this module, with the OpenID error response it becomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Realm(#[from] RealmError),
    #[error(transparent)]
    Assoc(#[from] AssocError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Nonce(#[from] NonceError),
    #[error(transparent)]
    CheckId(#[from] CheckIdError),
    #[error(transparent)]
    Ext(#[from] ExtError),
    #[error(transparent)]
    Xrds(#[from] XrdsError),
}

impl Error {
    /// The `error_code` field, where the spec defines one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Error::Assoc(e) => e.error_code(),
            _ => None,
        }
    }

    /// A direct error response (§5.1.2.2), to send as key-value form with status 400:
    /// `ns` (2.0), `error`, and `error_code` with its extra fields where defined.
    pub fn direct_response(&self, version: Version) -> Message {
        let mut m = Message::new(version);
        match self {
            Error::Assoc(AssocError::UnsupportedType {
                reason,
                assoc_type,
                session_type,
            }) => {
                for (k, v) in assoc::unsupported_type_fields(reason, *assoc_type, *session_type) {
                    m.set(&k, v);
                }
            }
            other => m.set("error", one_line(&other.to_string())),
        }
        m
    }

    /// An indirect error response (§5.2.3), to send to a `return_to` URL that has been
    /// checked against the realm: `ns` (2.0), `mode=error`, `error`.
    pub fn indirect_response(&self, version: Version) -> Message {
        let mut m = Message::new(version);
        m.set("mode", Mode::Error.as_str());
        m.set("error", one_line(&self.to_string()));
        if let Some(code) = self.error_code() {
            m.set("error_code", code);
        }
        m
    }
}

/// Error texts go into key-value form, which has no room for newlines.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn direct_errors_are_key_value_form() {
        let e = Error::from(MessageError::Missing("mode".into()));
        assert_eq!(e.error_code(), None);
        assert_eq!(
            e.direct_response(Version::V2).to_kv().unwrap(),
            format!("ns:{OPENID2_NS}\nerror:openid.mode is missing\n")
        );
        assert_eq!(
            e.direct_response(Version::V1).to_kv().unwrap(),
            "error:openid.mode is missing\n"
        );
    }

    #[test]
    fn unsupported_type_names_a_valid_pair() {
        let e = Error::from(AssocError::UnsupportedType {
            reason: "session type DH-SHA1 cannot carry an HMAC-SHA256 key".into(),
            assoc_type: AssocType::HmacSha256,
            session_type: SessionType::DhSha256,
        });
        assert_eq!(e.error_code(), Some(UNSUPPORTED_TYPE));
        assert_eq!(
            e.direct_response(Version::V2).to_kv().unwrap(),
            format!(
                "ns:{OPENID2_NS}\nerror:session type DH-SHA1 cannot carry an HMAC-SHA256 key\n\
                 error_code:unsupported-type\nsession_type:DH-SHA256\nassoc_type:HMAC-SHA256\n"
            )
        );
    }

    #[test]
    fn indirect_errors_have_mode_error() {
        let e = Error::from(RealmError::NoRealmOrReturnTo);
        let m = e.indirect_response(Version::V2);
        assert_eq!(m.get("mode"), Some("error"));
        assert_eq!(
            m.get("error"),
            Some("openid.return_to and openid.realm are both missing; one of them is required")
        );
        assert_eq!(m.get("ns"), Some(OPENID2_NS));
        let e = Error::from(KvError::NewlineInValue("a\nb".into()));
        assert!(
            !e.indirect_response(Version::V1)
                .get("error")
                .unwrap()
                .contains('\n')
        );
    }
}
