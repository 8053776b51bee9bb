//! OpenID extensions the OP answers (DESIGN.md §2.6), each read from the request under the
//! alias the relying party chose and answered under the same alias and namespace:
//!
//! - Simple Registration 1.0 and 1.1 (`required`, `optional`, `policy_url`; SReg 1.1 §3, §4),
//!   including OpenID 1.1's undeclared `openid.sreg.*`;
//! - Attribute Exchange 1.0 fetch (AX 1.0 §5: `fetch_request`, `fetch_response`);
//! - Provider Authentication Policy Extension 1.0 (PAPE 1.0 §5: policies, `max_auth_age`,
//!   `auth_time`, the NIST level as `auth_level.nist`).
//!
//! What may be released is the caller's decision (consent); these functions only read the
//! requests and write what they are given. SReg has no phone field: the MSISDN goes out only
//! through AX, as [`AX_PHONE_CELL`] and [`AX_PHONE_DEFAULT`] (see [`ax_msisdn_values`]).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::message::{Extension, Message};
use super::signing::{self, NonceError};
use super::{AX_NS, PAPE_NS, SREG_1_0_NS, SREG_1_1_NS};

/// Why an extension request could not be read or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtError {
    #[error("openid.{alias}.mode is missing; an Attribute Exchange request needs one")]
    AxNoMode { alias: String },
    #[error("openid.{alias}.mode is {mode:?}; only fetch_request is supported")]
    AxUnsupportedMode { alias: String, mode: String },
    #[error(
        "Attribute Exchange alias {0:?} is not allowed: it must be non-empty, without commas or periods"
    )]
    AxBadAlias(String),
    #[error("Attribute Exchange type {uri} is requested twice, as {first:?} and {second:?}")]
    AxDuplicateType {
        uri: String,
        first: String,
        second: String,
    },
    #[error("Attribute Exchange {list} names {alias:?}, which has no type.{alias}")]
    AxUnknownAlias { list: &'static str, alias: String },
    #[error("Attribute Exchange attribute {0:?} is neither required nor if_available")]
    AxNotRequested(String),
    #[error(
        "Attribute Exchange count.{alias} is {value:?}; it must be a number above 0 or \"unlimited\""
    )]
    AxBadCount { alias: String, value: String },
    #[error("Attribute Exchange count.{0} names no type.{0}")]
    AxCountWithoutType(String),
    #[error("PAPE max_auth_age {0:?} is not a number of seconds")]
    PapeBadMaxAuthAge(String),
    #[error("PAPE: the relying party sent max_auth_age, so the response must carry auth_time")]
    PapeAuthTimeRequired,
    #[error("PAPE: NIST assurance level {0} does not exist; levels are 0 to 4")]
    PapeBadNistLevel(u8),
    #[error("PAPE auth_time: {0}")]
    PapeAuthTime(#[from] NonceError),
}

// ---------------------------------------------------------------------------------------
// Simple Registration 1.0 / 1.1

/// The Simple Registration fields (SReg 1.1 §4): the subscriber profile's fields.
pub use crate::profile::ProfileField as SregField;

/// A Simple Registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SregRequest {
    pub alias: String,
    /// [`SREG_1_1_NS`] or [`SREG_1_0_NS`], whichever the relying party used.
    pub ns_uri: String,
    pub required: Vec<SregField>,
    /// Optional fields not also required.
    pub optional: Vec<SregField>,
    pub policy_url: Option<String>,
}

/// Reads a comma-separated field list, skipping names SReg does not define (SReg 1.1 §3
/// lets the OP ignore what it does not know) and repeats.
fn sreg_fields(list: Option<&str>, skip: &[SregField]) -> Vec<SregField> {
    let mut out: Vec<SregField> = Vec::new();
    for field in list.unwrap_or("").split(',').filter_map(SregField::parse) {
        if !out.contains(&field) && !skip.contains(&field) {
            out.push(field);
        }
    }
    out
}

impl SregRequest {
    /// The Simple Registration request in `message` (1.1 first, then 1.0), if any.
    pub fn from_message(message: &Message) -> Option<Self> {
        let args = message
            .extension(SREG_1_1_NS)
            .or_else(|| message.extension(SREG_1_0_NS))?;
        let required = sreg_fields(args.get("required"), &[]);
        let optional = sreg_fields(args.get("optional"), &required);
        Some(Self {
            alias: args.alias.to_owned(),
            ns_uri: args.ns_uri.to_owned(),
            required,
            optional,
            policy_url: args.get("policy_url").map(str::to_owned),
        })
    }

    /// Every requested field, required ones first.
    pub fn requested(&self) -> impl Iterator<Item = SregField> + '_ {
        self.required.iter().chain(self.optional.iter()).copied()
    }

    /// The response: each requested field that has a non-empty value, in request order.
    /// `None` when there is nothing to send.
    pub fn response(&self, values: &BTreeMap<SregField, String>) -> Option<Extension> {
        let fields: Vec<(String, String)> = self
            .requested()
            .filter_map(|f| {
                let v = values.get(&f)?;
                (!v.is_empty()).then(|| (f.as_str().to_owned(), v.clone()))
            })
            .collect();
        if fields.is_empty() {
            return None;
        }
        Some(Extension {
            alias: self.alias.clone(),
            ns_uri: self.ns_uri.clone(),
            fields,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Attribute Exchange 1.0 fetch

/// The mobile phone number type (axschema.org), under which the MSISDN is released.
pub const AX_PHONE_CELL: &str = "http://axschema.org/contact/phone/cell";
/// The default phone number type; carries the same MSISDN (DESIGN.md §2.6).
pub const AX_PHONE_DEFAULT: &str = "http://axschema.org/contact/phone/default";

/// The AX values for a subscriber's MSISDN: both phone types, the same number.
pub fn ax_msisdn_values(msisdn: &str) -> BTreeMap<String, Vec<String>> {
    [AX_PHONE_CELL, AX_PHONE_DEFAULT]
        .into_iter()
        .map(|t| (t.to_owned(), vec![msisdn.to_owned()]))
        .collect()
}

/// How many values the relying party wants for an attribute (AX 1.0 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxCount {
    /// No `count.<alias>`: one value, sent as `value.<alias>`.
    Single,
    /// `count.<alias>=n`: up to n values, sent as `value.<alias>.1` ... `.n`.
    AtMost(u32),
    /// `count.<alias>=unlimited`.
    Unlimited,
}

/// One requested attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxAttribute {
    pub alias: String,
    pub type_uri: String,
    pub required: bool,
    pub count: AxCount,
}

/// An Attribute Exchange `fetch_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxFetchRequest {
    pub alias: String,
    /// In the order of their `type.<alias>` fields.
    pub attributes: Vec<AxAttribute>,
    /// Where the relying party wants updates; this OP sends none, so it is not echoed.
    pub update_url: Option<String>,
}

fn check_ax_alias(alias: &str) -> Result<(), ExtError> {
    if alias.is_empty() || alias.contains(',') || alias.contains('.') {
        return Err(ExtError::AxBadAlias(alias.to_owned()));
    }
    Ok(())
}

fn ax_alias_list<'a>(
    list: &'static str,
    value: Option<&'a str>,
    attributes: &[AxAttribute],
) -> Result<Vec<&'a str>, ExtError> {
    let mut out = Vec::new();
    for alias in value.unwrap_or("").split(',').filter(|a| !a.is_empty()) {
        if !attributes.iter().any(|a| a.alias == alias) {
            return Err(ExtError::AxUnknownAlias {
                list,
                alias: alias.to_owned(),
            });
        }
        out.push(alias);
    }
    Ok(out)
}

impl AxFetchRequest {
    /// The AX fetch request in `message`, if it declares AX.
    pub fn from_message(message: &Message) -> Result<Option<Self>, ExtError> {
        let Some(args) = message.extension(AX_NS) else {
            return Ok(None);
        };
        let alias = args.alias.to_owned();
        match args.get("mode") {
            Some("fetch_request") => {}
            Some(mode) => {
                return Err(ExtError::AxUnsupportedMode {
                    alias,
                    mode: mode.to_owned(),
                });
            }
            None => return Err(ExtError::AxNoMode { alias }),
        }
        let mut attributes: Vec<AxAttribute> = Vec::new();
        for (key, uri) in &args.fields {
            let Some(attr) = key.strip_prefix("type.") else {
                continue;
            };
            check_ax_alias(attr)?;
            if let Some(first) = attributes.iter().find(|a| a.type_uri == *uri) {
                return Err(ExtError::AxDuplicateType {
                    uri: (*uri).to_owned(),
                    first: first.alias.clone(),
                    second: attr.to_owned(),
                });
            }
            let count = match args.get(&format!("count.{attr}")) {
                None => AxCount::Single,
                Some("unlimited") => AxCount::Unlimited,
                Some(text) => match text.parse::<u32>() {
                    Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => {
                        AxCount::AtMost(n)
                    }
                    _ => {
                        return Err(ExtError::AxBadCount {
                            alias: attr.to_owned(),
                            value: text.to_owned(),
                        });
                    }
                },
            };
            attributes.push(AxAttribute {
                alias: attr.to_owned(),
                type_uri: (*uri).to_owned(),
                required: false,
                count,
            });
        }
        for (key, _) in &args.fields {
            if let Some(attr) = key.strip_prefix("count.")
                && !attributes.iter().any(|a| a.alias == attr)
            {
                return Err(ExtError::AxCountWithoutType(attr.to_owned()));
            }
        }
        let required = ax_alias_list("required", args.get("required"), &attributes)?;
        let if_available = ax_alias_list("if_available", args.get("if_available"), &attributes)?;
        for attr in &mut attributes {
            attr.required = required.contains(&attr.alias.as_str());
            if !attr.required && !if_available.contains(&attr.alias.as_str()) {
                return Err(ExtError::AxNotRequested(attr.alias.clone()));
            }
        }
        Ok(Some(Self {
            alias,
            attributes,
            update_url: args.get("update_url").map(str::to_owned),
        }))
    }

    /// The `fetch_response` (AX 1.0 §5.2): every requested attribute with its `type`, and
    /// the values `values` holds for its type URI (no more than the request's count). An
    /// attribute without values gets `count.<alias>=0`, as python-openid expects.
    pub fn response(&self, values: &BTreeMap<String, Vec<String>>) -> Extension {
        let mut fields = vec![("mode".to_owned(), "fetch_response".to_owned())];
        for attr in &self.attributes {
            let a = &attr.alias;
            fields.push((format!("type.{a}"), attr.type_uri.clone()));
            let mut vals: &[String] = values.get(&attr.type_uri).map_or(&[], Vec::as_slice);
            let limit = match attr.count {
                AxCount::Single => 1,
                AxCount::AtMost(n) => usize::try_from(n).unwrap_or(usize::MAX),
                AxCount::Unlimited => usize::MAX,
            };
            vals = &vals[..vals.len().min(limit)];
            match (attr.count, vals) {
                (AxCount::Single, [one]) => fields.push((format!("value.{a}"), one.clone())),
                _ => {
                    fields.push((format!("count.{a}"), vals.len().to_string()));
                    for (i, v) in vals.iter().enumerate() {
                        fields.push((format!("value.{a}.{}", i + 1), v.clone()));
                    }
                }
            }
        }
        Extension {
            alias: self.alias.clone(),
            ns_uri: AX_NS.to_owned(),
            fields,
        }
    }
}

// ---------------------------------------------------------------------------------------
// PAPE 1.0

/// The user authenticated with a method that resists phishing (PAPE 1.0 §4).
pub const PAPE_PHISHING_RESISTANT: &str =
    "http://schemas.openid.net/pape/policies/2007/06/phishing-resistant";
/// Two or more factors (PAPE 1.0 §4).
pub const PAPE_MULTI_FACTOR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// Multi-factor with a physical device (PAPE 1.0 §4).
pub const PAPE_MULTI_FACTOR_PHYSICAL: &str =
    "http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical";
/// No policy was met (PAPE 1.0 §5.2).
pub const PAPE_NONE: &str = "http://schemas.openid.net/pape/policies/2007/06/none";
/// The NIST SP 800-63 assurance levels (PAPE 1.0 §5.2).
pub const PAPE_LEVELS_NIST: &str =
    "http://csrc.nist.gov/publications/nistpubs/800-63/SP800-63V1_0_2.pdf";

/// A PAPE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PapeRequest {
    pub alias: String,
    /// Policy URIs the relying party prefers, in its order.
    pub preferred_auth_policies: Vec<String>,
    /// Seconds since the user last actively authenticated beyond which they must do it again.
    pub max_auth_age: Option<u64>,
}

/// What the OP states about the authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PapeResponse {
    /// Policy URIs met; empty means [`PAPE_NONE`].
    pub auth_policies: Vec<String>,
    /// When the user last actively authenticated.
    pub auth_time: Option<OffsetDateTime>,
    /// NIST SP 800-63 level, 0 to 4.
    pub nist_auth_level: Option<u8>,
}

impl PapeRequest {
    /// The PAPE request in `message`, if any.
    pub fn from_message(message: &Message) -> Result<Option<Self>, ExtError> {
        let Some(args) = message.extension(PAPE_NS) else {
            return Ok(None);
        };
        let preferred_auth_policies = args
            .get("preferred_auth_policies")
            .unwrap_or("")
            .split(' ')
            .filter(|p| !p.is_empty() && *p != PAPE_NONE)
            .map(str::to_owned)
            .collect();
        let max_auth_age = match args.get("max_auth_age") {
            None => None,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(ExtError::PapeBadMaxAuthAge(text.to_owned())),
            },
        };
        Ok(Some(Self {
            alias: args.alias.to_owned(),
            preferred_auth_policies,
            max_auth_age,
        }))
    }

    /// Whether the user must authenticate again because their last authentication, at
    /// `auth_time`, is older than `max_auth_age` at `now`.
    pub fn needs_fresh_authentication(
        &self,
        auth_time: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        match self.max_auth_age {
            None => false,
            Some(max) => {
                let age = (now - auth_time).whole_seconds();
                age < 0 || u64::try_from(age).map_or(true, |age| age > max)
            }
        }
    }

    /// The PAPE response (PAPE 1.0 §5.2): `auth_policies`, `auth_time` (required when the
    /// relying party sent `max_auth_age`), and the NIST level as `auth_level.nist`.
    pub fn response(&self, response: &PapeResponse) -> Result<Extension, ExtError> {
        let mut policies: Vec<&str> = Vec::new();
        for p in &response.auth_policies {
            if p != PAPE_NONE && !policies.contains(&p.as_str()) {
                policies.push(p);
            }
        }
        let policies = if policies.is_empty() {
            PAPE_NONE.to_owned()
        } else {
            policies.join(" ")
        };
        let mut fields = vec![("auth_policies".to_owned(), policies)];
        match response.auth_time {
            Some(t) => fields.push(("auth_time".to_owned(), signing::format_timestamp(t)?)),
            None if self.max_auth_age.is_some() => return Err(ExtError::PapeAuthTimeRequired),
            None => {}
        }
        if let Some(level) = response.nist_auth_level {
            if level > 4 {
                return Err(ExtError::PapeBadNistLevel(level));
            }
            fields.push(("auth_level.ns.nist".to_owned(), PAPE_LEVELS_NIST.to_owned()));
            fields.push(("auth_level.nist".to_owned(), level.to_string()));
        }
        Ok(Extension {
            alias: self.alias.clone(),
            ns_uri: PAPE_NS.to_owned(),
            fields,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::openid2::OPENID2_NS;
    use crate::openid2::message::Version;
    use time::macros::datetime;

    fn message(list: &[(&str, &str)]) -> Message {
        let pairs: Vec<(String, String)> = list
            .iter()
            .map(|(k, v)| (format!("openid.{k}"), (*v).to_owned()))
            .collect();
        Message::from_pairs(&pairs).unwrap()
    }

    fn strings(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn sreg_1_1_request_and_response_use_the_rps_alias() {
        let m = message(&[
            ("ns", OPENID2_NS),
            ("mode", "checkid_setup"),
            ("ns.profile", SREG_1_1_NS),
            ("profile.required", "email,nickname,bogus"),
            ("profile.optional", "nickname,fullname,country"),
            ("profile.policy_url", "https://rp.example/privacy"),
        ]);
        let req = SregRequest::from_message(&m).unwrap();
        assert_eq!(req.alias, "profile");
        assert_eq!(req.ns_uri, SREG_1_1_NS);
        assert_eq!(req.required, [SregField::Email, SregField::Nickname]);
        assert_eq!(req.optional, [SregField::Fullname, SregField::Country]);
        assert_eq!(
            req.policy_url.as_deref(),
            Some("https://rp.example/privacy")
        );
        let values = BTreeMap::from([
            (SregField::Nickname, "alice".to_owned()),
            (SregField::Country, String::new()),
            (SregField::Timezone, "Europe/Paris".to_owned()),
        ]);
        let ext = req.response(&values).unwrap();
        assert_eq!(ext.alias, "profile");
        assert_eq!(ext.fields, strings(&[("nickname", "alice")]));
        let mut out = Message::new(Version::V2);
        out.add_extension(&ext).unwrap();
        assert_eq!(out.get("ns.profile"), Some(SREG_1_1_NS));
        assert_eq!(out.get("profile.nickname"), Some("alice"));
        assert_eq!(req.response(&BTreeMap::new()), None);
    }

    #[test]
    fn sreg_1_0_and_openid_1_1_bare_sreg() {
        let m = message(&[
            ("ns", OPENID2_NS),
            ("ns.sreg", SREG_1_0_NS),
            ("sreg.optional", "email"),
        ]);
        assert_eq!(SregRequest::from_message(&m).unwrap().ns_uri, SREG_1_0_NS);
        let m = message(&[("mode", "checkid_setup"), ("sreg.required", "email")]);
        let req = SregRequest::from_message(&m).unwrap();
        assert_eq!(
            (req.alias.as_str(), req.ns_uri.as_str()),
            ("sreg", SREG_1_0_NS)
        );
        let ext = req
            .response(&BTreeMap::from([(
                SregField::Email,
                "a@example.org".to_owned(),
            )]))
            .unwrap();
        let mut out = Message::new(Version::V1);
        out.add_extension(&ext).unwrap();
        assert_eq!(out.fields(), strings(&[("sreg.email", "a@example.org")]));
        assert!(SregRequest::from_message(&message(&[("ns", OPENID2_NS)])).is_none());
        for f in SregField::ALL {
            assert_eq!(SregField::parse(f.as_str()), Some(f));
        }
    }

    fn ax_request(extra: &[(&str, &str)]) -> Result<Option<AxFetchRequest>, ExtError> {
        let mut list = vec![
            ("ns", OPENID2_NS),
            ("ns.ax", AX_NS),
            ("ax.mode", "fetch_request"),
        ];
        list.extend_from_slice(extra);
        AxFetchRequest::from_message(&message(&list))
    }

    #[test]
    fn ax_fetch_releases_the_msisdn_as_both_phone_types() {
        let req = ax_request(&[
            ("ax.type.cell", AX_PHONE_CELL),
            ("ax.type.phone", AX_PHONE_DEFAULT),
            ("ax.count.phone", "2"),
            ("ax.type.mail", "http://axschema.org/contact/email"),
            ("ax.required", "cell"),
            ("ax.if_available", "phone,mail"),
            ("ax.update_url", "https://rp.example/update"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(req.alias, "ax");
        assert_eq!(req.attributes.len(), 3);
        assert!(req.attributes[0].required);
        assert!(!req.attributes[1].required);
        assert_eq!(req.attributes[1].count, AxCount::AtMost(2));
        assert_eq!(req.update_url.as_deref(), Some("https://rp.example/update"));
        let ext = req.response(&ax_msisdn_values("+33612345678"));
        assert_eq!(ext.ns_uri, AX_NS);
        assert_eq!(
            ext.fields,
            strings(&[
                ("mode", "fetch_response"),
                ("type.cell", AX_PHONE_CELL),
                ("value.cell", "+33612345678"),
                ("type.phone", AX_PHONE_DEFAULT),
                ("count.phone", "1"),
                ("value.phone.1", "+33612345678"),
                ("type.mail", "http://axschema.org/contact/email"),
                ("count.mail", "0"),
            ])
        );
    }

    #[test]
    fn ax_counts_limit_values() {
        let req = ax_request(&[
            ("ax.type.a", "urn:a"),
            ("ax.count.a", "2"),
            ("ax.type.b", "urn:b"),
            ("ax.count.b", "unlimited"),
            ("ax.type.c", "urn:c"),
            ("ax.if_available", "a,b,c"),
        ])
        .unwrap()
        .unwrap();
        let three = vec!["1".to_owned(), "2".to_owned(), "3".to_owned()];
        let values = BTreeMap::from([
            ("urn:a".to_owned(), three.clone()),
            ("urn:b".to_owned(), three.clone()),
            ("urn:c".to_owned(), three),
        ]);
        let ext = req.response(&values);
        let keys: Vec<&str> = ext.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "mode",
                "type.a",
                "count.a",
                "value.a.1",
                "value.a.2",
                "type.b",
                "count.b",
                "value.b.1",
                "value.b.2",
                "value.b.3",
                "type.c",
                "value.c"
            ]
        );
    }

    #[test]
    fn ax_errors_are_named() {
        assert_eq!(
            AxFetchRequest::from_message(&message(&[("ns", OPENID2_NS)])),
            Ok(None)
        );
        let no_mode = message(&[("ns", OPENID2_NS), ("ns.ax", AX_NS), ("ax.type.a", "urn:a")]);
        assert_eq!(
            AxFetchRequest::from_message(&no_mode),
            Err(ExtError::AxNoMode { alias: "ax".into() })
        );
        let store = message(&[
            ("ns", OPENID2_NS),
            ("ns.ax", AX_NS),
            ("ax.mode", "store_request"),
        ]);
        assert_eq!(
            AxFetchRequest::from_message(&store),
            Err(ExtError::AxUnsupportedMode {
                alias: "ax".into(),
                mode: "store_request".into()
            })
        );
        assert_eq!(
            ax_request(&[("ax.type.a.b", "urn:a"), ("ax.required", "a.b")]),
            Err(ExtError::AxBadAlias("a.b".into()))
        );
        assert_eq!(
            ax_request(&[
                ("ax.type.a", "urn:a"),
                ("ax.type.b", "urn:a"),
                ("ax.required", "a,b")
            ]),
            Err(ExtError::AxDuplicateType {
                uri: "urn:a".into(),
                first: "a".into(),
                second: "b".into()
            })
        );
        assert_eq!(
            ax_request(&[("ax.type.a", "urn:a"), ("ax.required", "a,z")]),
            Err(ExtError::AxUnknownAlias {
                list: "required",
                alias: "z".into()
            })
        );
        assert_eq!(
            ax_request(&[
                ("ax.type.a", "urn:a"),
                ("ax.type.b", "urn:b"),
                ("ax.required", "a")
            ]),
            Err(ExtError::AxNotRequested("b".into()))
        );
        for bad in ["0", "-1", "+2", "many", ""] {
            assert_eq!(
                ax_request(&[
                    ("ax.type.a", "urn:a"),
                    ("ax.count.a", bad),
                    ("ax.required", "a")
                ]),
                Err(ExtError::AxBadCount {
                    alias: "a".into(),
                    value: bad.into()
                }),
                "{bad}"
            );
        }
        assert_eq!(
            ax_request(&[
                ("ax.type.a", "urn:a"),
                ("ax.count.b", "1"),
                ("ax.required", "a")
            ]),
            Err(ExtError::AxCountWithoutType("b".into()))
        );
    }

    #[test]
    fn pape_request_and_response() {
        let m = message(&[
            ("ns", OPENID2_NS),
            ("ns.pape", PAPE_NS),
            ("pape.preferred_auth_policies", PAPE_PHISHING_RESISTANT),
            ("pape.max_auth_age", "3600"),
        ]);
        let req = PapeRequest::from_message(&m).unwrap().unwrap();
        assert_eq!(req.preferred_auth_policies, [PAPE_PHISHING_RESISTANT]);
        assert_eq!(req.max_auth_age, Some(3600));
        let auth = datetime!(2005-05-15 17:11:51 UTC);
        assert!(!req.needs_fresh_authentication(auth, auth + time::Duration::seconds(3600)));
        assert!(req.needs_fresh_authentication(auth, auth + time::Duration::seconds(3601)));
        assert!(req.needs_fresh_authentication(auth, auth - time::Duration::seconds(1)));
        let ext = req
            .response(&PapeResponse {
                auth_policies: vec![
                    PAPE_PHISHING_RESISTANT.into(),
                    PAPE_MULTI_FACTOR_PHYSICAL.into(),
                    PAPE_PHISHING_RESISTANT.into(),
                ],
                auth_time: Some(auth),
                nist_auth_level: Some(3),
            })
            .unwrap();
        assert_eq!(ext.alias, "pape");
        assert_eq!(
            ext.fields,
            strings(&[
                (
                    "auth_policies",
                    &format!("{PAPE_PHISHING_RESISTANT} {PAPE_MULTI_FACTOR_PHYSICAL}")
                ),
                ("auth_time", "2005-05-15T17:11:51Z"),
                ("auth_level.ns.nist", PAPE_LEVELS_NIST),
                ("auth_level.nist", "3"),
            ])
        );
        assert_eq!(
            req.response(&PapeResponse::default()),
            Err(ExtError::PapeAuthTimeRequired)
        );
        assert_eq!(
            req.response(&PapeResponse {
                auth_time: Some(auth),
                nist_auth_level: Some(5),
                ..PapeResponse::default()
            }),
            Err(ExtError::PapeBadNistLevel(5))
        );
    }

    #[test]
    fn pape_without_policies_says_none() {
        let m = message(&[
            ("ns", OPENID2_NS),
            ("ns.p", PAPE_NS),
            ("p.preferred_auth_policies", PAPE_NONE),
        ]);
        let req = PapeRequest::from_message(&m).unwrap().unwrap();
        assert!(req.preferred_auth_policies.is_empty());
        assert!(!req.needs_fresh_authentication(
            datetime!(2000-01-01 0:00 UTC),
            datetime!(2030-01-01 0:00 UTC)
        ));
        let ext = req.response(&PapeResponse::default()).unwrap();
        assert_eq!(ext.alias, "p");
        assert_eq!(ext.fields, strings(&[("auth_policies", PAPE_NONE)]));
        let bad = message(&[
            ("ns", OPENID2_NS),
            ("ns.p", PAPE_NS),
            ("p.max_auth_age", "-5"),
        ]);
        assert_eq!(
            PapeRequest::from_message(&bad),
            Err(ExtError::PapeBadMaxAuthAge("-5".into()))
        );
        assert_eq!(
            PapeRequest::from_message(&message(&[("ns", OPENID2_NS)])),
            Ok(None)
        );
    }
}
