//! Profile fields an operator may keep for a subscriber beside the MSISDN, and how each is
//! released: by name in Simple Registration 1.1 (§4, whose nine fields these are), by type
//! URI in Attribute Exchange 1.0 (the axschema.org types), and later as OpenID Connect
//! claims. Values are checked against SReg 1.1 §4's formats when they are set, so what a
//! relying party receives is always well-formed.

use std::collections::BTreeMap;

/// A subscriber's profile: each field at most once, with a non-empty value.
pub type Profile = BTreeMap<ProfileField, String>;

/// The longest value kept for any field.
pub const MAX_VALUE_LEN: usize = 255;

/// The Simple Registration fields (SReg 1.1 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileField {
    Nickname,
    Email,
    Fullname,
    Dob,
    Gender,
    Postcode,
    Country,
    Language,
    Timezone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "{0:?} is not a profile field (nickname, email, fullname, dob, gender, postcode, country, language, timezone)"
    )]
    UnknownField(String),
    #[error("{field}: {message}")]
    BadValue {
        field: &'static str,
        message: &'static str,
    },
}

impl ProfileField {
    pub const ALL: [ProfileField; 9] = [
        ProfileField::Nickname,
        ProfileField::Email,
        ProfileField::Fullname,
        ProfileField::Dob,
        ProfileField::Gender,
        ProfileField::Postcode,
        ProfileField::Country,
        ProfileField::Language,
        ProfileField::Timezone,
    ];

    /// The SReg field name, also the name in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nickname => "nickname",
            Self::Email => "email",
            Self::Fullname => "fullname",
            Self::Dob => "dob",
            Self::Gender => "gender",
            Self::Postcode => "postcode",
            Self::Country => "country",
            Self::Language => "language",
            Self::Timezone => "timezone",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The Attribute Exchange type URI (axschema.org) that carries this field.
    pub fn ax_type(self) -> &'static str {
        match self {
            Self::Nickname => "http://axschema.org/namePerson/friendly",
            Self::Email => "http://axschema.org/contact/email",
            Self::Fullname => "http://axschema.org/namePerson",
            Self::Dob => "http://axschema.org/birthDate",
            Self::Gender => "http://axschema.org/person/gender",
            Self::Postcode => "http://axschema.org/contact/postalCode/home",
            Self::Country => "http://axschema.org/contact/country/home",
            Self::Language => "http://axschema.org/pref/language",
            Self::Timezone => "http://axschema.org/pref/timezone",
        }
    }

    pub fn from_ax_type(type_uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.ax_type() == type_uri)
    }

    /// What the consent page says is shared, in the page's language.
    pub fn describe(self, t: &'static crate::web::i18n::Strings) -> &'static str {
        match self {
            Self::Nickname => t.item_nickname,
            Self::Email => t.item_email,
            Self::Fullname => t.item_fullname,
            Self::Dob => t.item_dob,
            Self::Gender => t.item_gender,
            Self::Postcode => t.item_postcode,
            Self::Country => t.item_country,
            Self::Language => t.item_language,
            Self::Timezone => t.item_timezone,
        }
    }

    /// Checks `value` against SReg 1.1 §4 and returns it in canonical form (country codes in
    /// upper case, language tags in lower case).
    pub fn validate(self, value: &str) -> Result<String, ProfileError> {
        let bad = |message| ProfileError::BadValue {
            field: self.as_str(),
            message,
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(bad("the value is empty"));
        }
        if value.chars().count() > MAX_VALUE_LEN {
            return Err(bad("the value is longer than 255 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(bad("the value contains control characters"));
        }
        match self {
            Self::Nickname | Self::Fullname | Self::Postcode => Ok(value.to_owned()),
            Self::Email => {
                let (local, domain) = value
                    .split_once('@')
                    .ok_or_else(|| bad("an email address has the form local@domain"))?;
                let ok = !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !value.contains(char::is_whitespace);
                ok.then(|| value.to_owned())
                    .ok_or_else(|| bad("an email address has the form local@domain"))
            }
            Self::Dob => {
                // YYYY-MM-DD; SReg lets an unknown part be zero ("1980-00-00").
                let parts: Vec<&str> = value.split('-').collect();
                let digits =
                    |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
                let ok = parts.len() == 3
                    && digits(parts[0], 4)
                    && digits(parts[1], 2)
                    && digits(parts[2], 2)
                    && parts[1].parse::<u8>().is_ok_and(|m| m <= 12)
                    && parts[2].parse::<u8>().is_ok_and(|d| d <= 31);
                ok.then(|| value.to_owned())
                    .ok_or_else(|| bad("a date of birth is YYYY-MM-DD"))
            }
            Self::Gender => match value {
                "M" | "m" => Ok("M".to_owned()),
                "F" | "f" => Ok("F".to_owned()),
                _ => Err(bad("gender is M or F")),
            },
            Self::Country => (value.len() == 2 && value.bytes().all(|b| b.is_ascii_alphabetic()))
                .then(|| value.to_ascii_uppercase())
                .ok_or_else(|| bad("a country is an ISO 3166-1 alpha-2 code, e.g. GB")),
            Self::Language => {
                // ISO 639 (two or three letters), optionally with a region: en, en-GB.
                let mut parts = value.split('-');
                let lang = parts.next().unwrap_or_default();
                let region = parts.next();
                let ok = (2..=3).contains(&lang.len())
                    && lang.bytes().all(|b| b.is_ascii_alphabetic())
                    && region
                        .is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                    && parts.next().is_none();
                ok.then(|| match region {
                    Some(r) => format!("{}-{}", lang.to_ascii_lowercase(), r.to_ascii_uppercase()),
                    None => lang.to_ascii_lowercase(),
                })
                .ok_or_else(|| bad("a language is an ISO 639 code, e.g. en or en-GB"))
            }
            Self::Timezone => {
                // A name from the time zone database: Europe/London, America/Argentina/Salta, UTC.
                let ok = value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
                    && !value.starts_with('/')
                    && !value.ends_with('/')
                    && !value.contains("//");
                ok.then(|| value.to_owned())
                    .ok_or_else(|| bad("a time zone is a tz database name, e.g. Europe/London"))
            }
        }
    }
}

/// Parses `field=value` from the command line, validated.
pub fn parse_assignment(text: &str) -> Result<(ProfileField, String), ProfileError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| ProfileError::UnknownField(text.to_owned()))?;
    let field = ProfileField::parse(name.trim())
        .ok_or_else(|| ProfileError::UnknownField(name.to_owned()))?;
    Ok((field, field.validate(value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ax_types_round_trip() {
        for f in ProfileField::ALL {
            assert_eq!(ProfileField::parse(f.as_str()), Some(f));
            assert_eq!(ProfileField::from_ax_type(f.ax_type()), Some(f));
        }
        assert_eq!(ProfileField::parse("phone"), None);
    }

    #[test]
    fn values_are_checked_and_canonical() {
        use ProfileField::*;
        assert_eq!(Country.validate("gb").unwrap(), "GB");
        assert_eq!(Language.validate("EN-gb").unwrap(), "en-GB");
        assert_eq!(Language.validate("fr").unwrap(), "fr");
        assert_eq!(Gender.validate("f").unwrap(), "F");
        assert_eq!(Dob.validate("1980-00-00").unwrap(), "1980-00-00");
        assert_eq!(
            Timezone.validate("America/Argentina/Salta").unwrap(),
            "America/Argentina/Salta"
        );
        assert_eq!(
            Email.validate(" ada@example.org ").unwrap(),
            "ada@example.org"
        );
        assert_eq!(Fullname.validate("Ada Lovelace").unwrap(), "Ada Lovelace");
        for (field, bad) in [
            (Country, "GBR"),
            (Language, "english"),
            (Gender, "X"),
            (Dob, "1980-13-01"),
            (Dob, "80-01-01"),
            (Timezone, "../../etc/passwd"),
            (Email, "ada"),
            (Email, "ada @example.org"),
            (Nickname, ""),
            (Nickname, "a\u{0}b"),
        ] {
            assert!(field.validate(bad).is_err(), "{field:?} {bad:?}");
        }
        assert!(Nickname.validate(&"x".repeat(256)).is_err());
    }

    #[test]
    fn assignments_name_a_field() {
        assert_eq!(
            parse_assignment("country=fr").unwrap(),
            (ProfileField::Country, "FR".to_owned())
        );
        assert!(matches!(
            parse_assignment("phone=+44"),
            Err(ProfileError::UnknownField(_))
        ));
        assert!(parse_assignment("country").is_err());
    }
}
