//! Authentication requests and their answers (OpenID Authentication 2.0 §9, §10; §14 for
//! OpenID 1.1): reading `checkid_setup` and `checkid_immediate`, and building the positive
//! assertion (`id_res`, §10.1), `cancel` and `setup_needed` (§10.2).
//!
//! An answer is built unsigned; the endpoint adds the extension responses it has consent for
//! and then signs it with [`signing::sign`](super::signing::sign), so every extension field
//! is covered by the signature.

use super::message::{Message, MessageError, Mode, Version};
use super::realm::{Realm, RealmError};
use super::signing::NonceError;
use super::{IDENTIFIER_SELECT, signing};

/// Why a checkid request cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckIdError {
    #[error("openid.mode is {0:?}, not checkid_setup or checkid_immediate")]
    NotCheckId(String),
    #[error("openid.claimed_id and openid.identity must both be present or both be absent")]
    ClaimedIdWithoutIdentity,
    #[error(
        "openid.claimed_id is identifier_select but openid.identity is not; \
         both must be identifier_select to let the OP choose"
    )]
    SelectMismatch,
    #[error("openid.identity is missing; OpenID 1.1 requests must name an identifier")]
    MissingIdentity,
    #[error("openid.return_to is missing; OpenID 1.1 requests must have one")]
    MissingReturnTo,
    #[error("the request has no openid.return_to, so there is nowhere to send the answer")]
    NoReturnTo,
    #[error("openid.{0} is empty")]
    EmptyField(&'static str),
    #[error("the request is about {requested:?}, so the assertion cannot be about {asserted:?}")]
    IdentityMismatch { requested: String, asserted: String },
    #[error("the response_nonce to send is malformed: {0}")]
    BadNonce(#[from] NonceError),
    #[error(transparent)]
    Realm(#[from] RealmError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

/// The identifier a request asks about (§9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRequest {
    /// `identifier_select`: the OP chooses (a pairwise pseudonym by default, DESIGN.md §2.6).
    Select,
    /// A given identifier: the claimed identifier and the OP-local identifier, which differ
    /// when the user delegates. OpenID 1.1 sends only `identity`, used for both.
    Claimed {
        claimed_id: String,
        identity: String,
    },
    /// Neither: the request is only about extensions.
    None,
}

/// A valid `checkid_setup` or `checkid_immediate` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIdRequest {
    pub version: Version,
    /// `checkid_immediate`: the user cannot be asked anything (§9.3).
    pub immediate: bool,
    pub identity: IdentityRequest,
    /// The realm, checked: `return_to` is inside it and it is not over-broad.
    pub realm: Realm,
    pub return_to: Option<String>,
    /// The association the relying party wants used; `None` for stateless mode.
    pub assoc_handle: Option<String>,
    message: Message,
}

/// What a positive assertion states (§10.1). `claimed_id` and `identity` are the chosen
/// identifier for an `identifier_select` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion<'a> {
    pub op_endpoint: &'a str,
    pub claimed_id: &'a str,
    pub identity: &'a str,
    /// From [`signing::format_nonce`]; OpenID 1.1 responses carry none.
    pub response_nonce: &'a str,
    /// The handle that will sign: the relying party's, or a private one (stateless mode).
    pub assoc_handle: &'a str,
    /// The relying party's handle when the OP cannot use it (§10.1).
    pub invalidate_handle: Option<&'a str>,
}

fn non_empty<'a>(message: &'a Message, key: &'static str) -> Result<Option<&'a str>, CheckIdError> {
    match message.get(key) {
        Some("") => Err(CheckIdError::EmptyField(key)),
        other => Ok(other),
    }
}

impl CheckIdRequest {
    /// Reads and checks a checkid request: its mode, its identifiers (§9.1), its realm and
    /// `return_to` (§9.2; over-broad realms are refused).
    pub fn parse(message: Message) -> Result<Self, CheckIdError> {
        let mode = message.require("mode")?;
        let immediate = match Mode::parse(mode) {
            Some(Mode::CheckidSetup) => false,
            Some(Mode::CheckidImmediate) => true,
            _ => return Err(CheckIdError::NotCheckId(mode.to_owned())),
        };
        let version = message.version();
        let identity = non_empty(&message, "identity")?;
        let claimed_id = match version {
            Version::V2 => non_empty(&message, "claimed_id")?,
            Version::V1 => identity,
        };
        let identity = match (claimed_id, identity) {
            (None, None) if version == Version::V1 => return Err(CheckIdError::MissingIdentity),
            (None, None) => IdentityRequest::None,
            (Some(_), Some(IDENTIFIER_SELECT)) => IdentityRequest::Select,
            (Some(IDENTIFIER_SELECT), Some(_)) => return Err(CheckIdError::SelectMismatch),
            (Some(c), Some(i)) => IdentityRequest::Claimed {
                claimed_id: c.to_owned(),
                identity: i.to_owned(),
            },
            _ => return Err(CheckIdError::ClaimedIdWithoutIdentity),
        };
        let return_to = non_empty(&message, "return_to")?.map(str::to_owned);
        if version == Version::V1 && return_to.is_none() {
            return Err(CheckIdError::MissingReturnTo);
        }
        let realm = Realm::from_request(&message)?;
        if realm.is_overbroad() {
            return Err(RealmError::Overbroad(realm.as_str().to_owned()).into());
        }
        let assoc_handle = non_empty(&message, "assoc_handle")?.map(str::to_owned);
        Ok(Self {
            version,
            immediate,
            identity,
            realm,
            return_to,
            assoc_handle,
            message,
        })
    }

    /// The request as received, to read its extensions.
    pub fn message(&self) -> &Message {
        &self.message
    }

    fn require_return_to(&self) -> Result<&str, CheckIdError> {
        self.return_to.as_deref().ok_or(CheckIdError::NoReturnTo)
    }

    /// The unsigned positive assertion (§10.1), in the order `ns, mode, op_endpoint,
    /// claimed_id, identity, return_to, response_nonce, invalidate_handle, assoc_handle`.
    /// OpenID 1.1 gets `mode, identity, return_to, invalidate_handle, assoc_handle`.
    ///
    /// For a request about a given identifier, the assertion must be about that identifier
    /// (only `identifier_select` lets the OP choose).
    pub fn positive(&self, assertion: &Assertion<'_>) -> Result<Message, CheckIdError> {
        let return_to = self.require_return_to()?;
        if let IdentityRequest::Claimed {
            claimed_id,
            identity,
        } = &self.identity
        {
            for (requested, asserted) in [
                (claimed_id, assertion.claimed_id),
                (identity, assertion.identity),
            ] {
                if requested != asserted {
                    return Err(CheckIdError::IdentityMismatch {
                        requested: requested.clone(),
                        asserted: asserted.to_owned(),
                    });
                }
            }
        }
        let mut m = Message::new(self.version);
        m.set("mode", Mode::IdRes.as_str());
        match self.version {
            Version::V2 => {
                m.set("op_endpoint", assertion.op_endpoint);
                if self.identity != IdentityRequest::None {
                    m.set("claimed_id", assertion.claimed_id);
                    m.set("identity", assertion.identity);
                }
                m.set("return_to", return_to);
                signing::parse_nonce(assertion.response_nonce)?;
                m.set("response_nonce", assertion.response_nonce);
            }
            Version::V1 => {
                m.set("identity", assertion.identity);
                m.set("return_to", return_to);
            }
        }
        if let Some(handle) = assertion.invalidate_handle {
            m.set("invalidate_handle", handle);
        }
        m.set("assoc_handle", assertion.assoc_handle);
        Ok(m)
    }

    /// The user declined (§10.2.2): `mode=cancel`.
    pub fn cancel(&self) -> Result<Message, CheckIdError> {
        self.require_return_to()?;
        let mut m = Message::new(self.version);
        m.set("mode", Mode::Cancel.as_str());
        Ok(m)
    }

    /// A `checkid_immediate` request that needs the user (§10.2.1): `mode=setup_needed` in
    /// 2.0; in OpenID 1.1, `mode=id_res` with `user_setup_url`, where the relying party can
    /// send the user to log in.
    pub fn setup_needed(&self, user_setup_url: &str) -> Result<Message, CheckIdError> {
        self.require_return_to()?;
        let mut m = Message::new(self.version);
        match self.version {
            Version::V2 => m.set("mode", Mode::SetupNeeded.as_str()),
            Version::V1 => {
                m.set("mode", Mode::IdRes.as_str());
                m.set("user_setup_url", user_setup_url);
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::openid2::assoc::{AssocType, MacKey};
    use crate::openid2::{OPENID2_NS, SREG_1_1_NS};
    use crate::secret::Secret;

    fn message(list: &[(&str, &str)]) -> Message {
        let pairs: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| (format!("openid.{k}"), (*v).to_owned()))
            .collect();
        Message::from_pairs(&pairs).unwrap()
    }

    fn v2(extra: &[(&str, &str)]) -> Result<CheckIdRequest, CheckIdError> {
        let mut list = vec![
            ("ns", OPENID2_NS),
            ("mode", "checkid_setup"),
            ("return_to", "https://rp.example/back?s=1"),
            ("realm", "https://rp.example/"),
        ];
        list.extend_from_slice(extra);
        CheckIdRequest::parse(message(&list))
    }

    fn assertion() -> Assertion<'static> {
        Assertion {
            op_endpoint: "https://op.example/openid",
            claimed_id: "https://op.example/id/abc",
            identity: "https://op.example/id/abc",
            response_nonce: "2005-05-15T17:11:51Zx",
            assoc_handle: "h1",
            invalidate_handle: None,
        }
    }

    #[test]
    fn reads_identifier_select_and_builds_a_signed_assertion() {
        let req = v2(&[
            ("claimed_id", IDENTIFIER_SELECT),
            ("identity", IDENTIFIER_SELECT),
            ("assoc_handle", "h1"),
            ("ns.sreg", SREG_1_1_NS),
            ("sreg.optional", "nickname"),
        ])
        .unwrap();
        assert!(!req.immediate);
        assert_eq!(req.identity, IdentityRequest::Select);
        assert_eq!(req.realm.host(), "rp.example");
        assert_eq!(req.assoc_handle.as_deref(), Some("h1"));
        assert!(req.message().extension(SREG_1_1_NS).is_some());
        let mut m = req.positive(&assertion()).unwrap();
        let keys: Vec<&str> = m.fields().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ns",
                "mode",
                "op_endpoint",
                "claimed_id",
                "identity",
                "return_to",
                "response_nonce",
                "assoc_handle"
            ]
        );
        assert_eq!(m.get("return_to"), Some("https://rp.example/back?s=1"));
        let key: MacKey = Secret::new(vec![3; 32]);
        signing::sign(&mut m, AssocType::HmacSha256, &key).unwrap();
        signing::verify(&m, AssocType::HmacSha256, &key).unwrap();
    }

    #[test]
    fn reads_a_given_identifier_and_invalidates_a_handle() {
        let req = CheckIdRequest::parse(message(&[
            ("ns", OPENID2_NS),
            ("mode", "checkid_immediate"),
            ("return_to", "https://rp.example/back"),
            ("claimed_id", "https://user.example/"),
            ("identity", "https://op.example/id/abc"),
        ]))
        .unwrap();
        assert!(req.immediate);
        assert_eq!(
            req.identity,
            IdentityRequest::Claimed {
                claimed_id: "https://user.example/".into(),
                identity: "https://op.example/id/abc".into()
            }
        );
        assert_eq!(req.realm.as_str(), "https://rp.example/back");
        assert_eq!(
            req.positive(&assertion()),
            Err(CheckIdError::IdentityMismatch {
                requested: "https://user.example/".into(),
                asserted: "https://op.example/id/abc".into()
            })
        );
        let m = req
            .positive(&Assertion {
                claimed_id: "https://user.example/",
                assoc_handle: "private",
                invalidate_handle: Some("stale"),
                ..assertion()
            })
            .unwrap();
        assert_eq!(m.get("claimed_id"), Some("https://user.example/"));
        assert_eq!(m.get("identity"), Some("https://op.example/id/abc"));
        assert_eq!(m.get("invalidate_handle"), Some("stale"));
        assert_eq!(m.get("assoc_handle"), Some("private"));
        assert_eq!(
            req.setup_needed("https://op.example/login")
                .unwrap()
                .get("mode"),
            Some("setup_needed")
        );
        assert_eq!(req.cancel().unwrap().get("mode"), Some("cancel"));
    }

    #[test]
    fn extension_only_requests_have_no_identifiers() {
        let req = v2(&[]).unwrap();
        assert_eq!(req.identity, IdentityRequest::None);
        let m = req.positive(&assertion()).unwrap();
        assert_eq!(m.get("claimed_id"), None);
        assert_eq!(m.get("identity"), None);
    }

    #[test]
    fn bad_requests_are_named() {
        assert_eq!(
            v2(&[("identity", "https://op.example/id/abc")]),
            Err(CheckIdError::ClaimedIdWithoutIdentity)
        );
        assert_eq!(
            v2(&[
                ("claimed_id", IDENTIFIER_SELECT),
                ("identity", "https://x.example/")
            ]),
            Err(CheckIdError::SelectMismatch)
        );
        assert_eq!(
            v2(&[("claimed_id", ""), ("identity", "x")]),
            Err(CheckIdError::EmptyField("claimed_id"))
        );
        let not = CheckIdRequest::parse(message(&[("ns", OPENID2_NS), ("mode", "associate")]));
        assert_eq!(not, Err(CheckIdError::NotCheckId("associate".into())));
        let outside = CheckIdRequest::parse(message(&[
            ("ns", OPENID2_NS),
            ("mode", "checkid_setup"),
            ("return_to", "https://evil.example/"),
            ("realm", "https://rp.example/"),
        ]));
        assert!(matches!(
            outside,
            Err(CheckIdError::Realm(RealmError::ReturnToOutsideRealm { .. }))
        ));
        let broad = CheckIdRequest::parse(message(&[
            ("ns", OPENID2_NS),
            ("mode", "checkid_setup"),
            ("return_to", "https://rp.co.uk/"),
            ("realm", "https://*.co.uk/"),
        ]));
        assert_eq!(
            broad,
            Err(CheckIdError::Realm(RealmError::Overbroad(
                "https://*.co.uk/".into()
            )))
        );
        let no_return = CheckIdRequest::parse(message(&[
            ("ns", OPENID2_NS),
            ("mode", "checkid_setup"),
            ("realm", "https://rp.example/"),
        ]))
        .unwrap();
        assert_eq!(no_return.cancel(), Err(CheckIdError::NoReturnTo));
        assert_eq!(
            no_return.positive(&assertion()),
            Err(CheckIdError::NoReturnTo)
        );
        let req = v2(&[]).unwrap();
        assert_eq!(
            req.positive(&Assertion {
                response_nonce: "yesterday",
                ..assertion()
            }),
            Err(CheckIdError::BadNonce(NonceError::BadTimestamp(
                "yesterday".into()
            )))
        );
    }

    #[test]
    fn openid_1_1_requests_and_answers() {
        let req = CheckIdRequest::parse(message(&[
            ("mode", "checkid_immediate"),
            ("identity", "http://op.example/id/abc"),
            ("return_to", "http://rp.example/back"),
            ("trust_root", "http://rp.example/"),
        ]))
        .unwrap();
        assert_eq!(req.version, Version::V1);
        assert_eq!(
            req.identity,
            IdentityRequest::Claimed {
                claimed_id: "http://op.example/id/abc".into(),
                identity: "http://op.example/id/abc".into()
            }
        );
        let m = req
            .positive(&Assertion {
                claimed_id: "http://op.example/id/abc",
                identity: "http://op.example/id/abc",
                ..assertion()
            })
            .unwrap();
        let keys: Vec<&str> = m.fields().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["mode", "identity", "return_to", "assoc_handle"]);
        let m = req.setup_needed("https://op.example/login").unwrap();
        assert_eq!(m.get("mode"), Some("id_res"));
        assert_eq!(m.get("user_setup_url"), Some("https://op.example/login"));
        assert_eq!(
            CheckIdRequest::parse(message(&[
                ("mode", "checkid_setup"),
                ("return_to", "http://rp.example/back"),
            ])),
            Err(CheckIdError::MissingIdentity)
        );
        assert_eq!(
            CheckIdRequest::parse(message(&[
                ("mode", "checkid_setup"),
                ("identity", "http://op.example/id/abc"),
                ("trust_root", "http://rp.example/"),
            ])),
            Err(CheckIdError::MissingReturnTo)
        );
    }
}
