//! The body of the Ub 200 answer, `application/vnd.3gpp.bsf+xml` (TS 24.109 §4.5.2 and
//! Annex C): the B-TID and the key lifetime, written by the BSF and read by the handset.

use quick_xml::NsReader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::btid::{Btid, BtidError};

/// The namespace of TS 24.109 Annex C.
pub const NAMESPACE: &str = "uri:3gpp-gba";
/// The media type of the body (TS 24.109 Annex E).
pub const CONTENT_TYPE: &str = "application/vnd.3gpp.bsf+xml";
/// Longest body the handset reads: the real one is about 200 bytes.
pub const MAX_XML_LEN: usize = 16 * 1024;
/// Deepest element nesting read; the schema has two levels, extensions a few more.
const MAX_DEPTH: usize = 16;

/// Why a BootstrappingInfo body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("BootstrappingInfo is longer than {MAX_XML_LEN} bytes")]
    TooLong,
    #[error("BootstrappingInfo is not well-formed XML: {0}")]
    Syntax(String),
    #[error("the root element is not BootstrappingInfo in namespace {NAMESPACE}")]
    WrongRoot,
    #[error("BootstrappingInfo has no <{0}>")]
    Missing(&'static str),
    #[error("BootstrappingInfo has more than one <{0}>")]
    Duplicate(&'static str),
    #[error("BootstrappingInfo has a bad <btid>: {0}")]
    Btid(#[from] BtidError),
    #[error("BootstrappingInfo <lifetime> is not an xs:dateTime with a time zone")]
    Lifetime,
}

fn syntax(e: impl std::fmt::Display) -> XmlError {
    XmlError::Syntax(e.to_string())
}

/// The Ub 200 body: `<?xml version="1.0" encoding="UTF-8"?><BootstrappingInfo
/// xmlns="uri:3gpp-gba"><btid>…</btid><lifetime>…</lifetime></BootstrappingInfo>`, the
/// lifetime in UTC to the second (xs:dateTime, `YYYY-MM-DDThh:mm:ssZ`).
pub fn bootstrapping_info_xml(btid: &Btid, lifetime: OffsetDateTime) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <BootstrappingInfo xmlns=\"{NAMESPACE}\">\
         <btid>{}</btid><lifetime>{}</lifetime>\
         </BootstrappingInfo>",
        escape(btid.as_str()),
        format_lifetime(lifetime),
    )
}

/// `YYYY-MM-DDThh:mm:ssZ`. Written by hand because it cannot fail, unlike `format`; fractions
/// of a second are dropped, which makes the announced lifetime end early, never late.
fn format_lifetime(lifetime: OffsetDateTime) -> String {
    let t = lifetime.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Btid,
    Lifetime,
}

/// Whether an element is in the GBA namespace. A BSF that leaves the namespace out is
/// tolerated; an element in another namespace is someone else's extension.
fn in_gba_namespace(ns: &ResolveResult<'_>) -> bool {
    match ns {
        ResolveResult::Bound(Namespace(uri)) => *uri == NAMESPACE.as_bytes(),
        ResolveResult::Unbound => true,
        ResolveResult::Unknown(_) => false,
    }
}

/// Reads the B-TID and the key lifetime (in UTC) from a Ub 200 body. Whitespace, an XML
/// declaration, comments and extension elements are allowed; a DOCTYPE is not.
pub fn parse_bootstrapping_info(xml: &str) -> Result<(Btid, OffsetDateTime), XmlError> {
    if xml.len() > MAX_XML_LEN {
        return Err(XmlError::TooLong);
    }
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut depth = 0usize;
    let mut seen_root = false;
    // The field whose element is open at depth 2, if any.
    let mut current: Option<Field> = None;
    let mut btid: Option<String> = None;
    let mut lifetime: Option<String> = None;

    loop {
        let (ns, event) = reader.read_resolved_event().map_err(syntax)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                match depth {
                    0 => {
                        if seen_root {
                            return Err(syntax("more than one root element"));
                        }
                        if local.as_ref() != b"BootstrappingInfo" || !in_gba_namespace(&ns) {
                            return Err(XmlError::WrongRoot);
                        }
                        seen_root = true;
                    }
                    1 => {
                        let field = if !in_gba_namespace(&ns) {
                            None
                        } else if local.as_ref() == b"btid" {
                            Some(Field::Btid)
                        } else if local.as_ref() == b"lifetime" {
                            Some(Field::Lifetime)
                        } else {
                            None
                        };
                        open_field(field, &mut btid, &mut lifetime)?;
                        if !is_empty {
                            current = field;
                        }
                    }
                    _ => {
                        if current.is_some() {
                            // btid and lifetime are simple types (Annex C).
                            return Err(syntax("an element inside <btid> or <lifetime>"));
                        }
                    }
                }
                if !is_empty {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(syntax("elements nested too deeply"));
                    }
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    current = None;
                }
            }
            Event::Text(ref t) => {
                let text = std::str::from_utf8(t).map_err(syntax)?;
                append(current, &mut btid, &mut lifetime, text, depth)?;
            }
            Event::CData(ref c) => {
                let text = std::str::from_utf8(c).map_err(syntax)?;
                append(current, &mut btid, &mut lifetime, text, depth)?;
            }
            Event::GeneralRef(ref r) => {
                let resolved = match r.resolve_char_ref().map_err(syntax)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = std::str::from_utf8(r).map_err(syntax)?;
                        resolve_predefined_entity(name)
                            .ok_or_else(|| syntax("a reference to an undefined entity"))?
                            .to_owned()
                    }
                };
                append(current, &mut btid, &mut lifetime, &resolved, depth)?;
            }
            Event::DocType(_) => {
                // Entities declared in a DTD are an expansion attack waiting to happen, and
                // Annex C has no use for one.
                return Err(syntax("a DOCTYPE is not allowed"));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if depth != 0 {
        return Err(syntax("the document ends inside an element"));
    }
    if !seen_root {
        return Err(XmlError::WrongRoot);
    }
    let btid: Btid = btid.ok_or(XmlError::Missing("btid"))?.trim().parse()?;
    let lifetime = lifetime.ok_or(XmlError::Missing("lifetime"))?;
    let lifetime = OffsetDateTime::parse(lifetime.trim(), &Rfc3339)
        .map_err(|_| XmlError::Lifetime)?
        .to_offset(UtcOffset::UTC);
    Ok((btid, lifetime))
}

/// Starts collecting the text of `field`, which may appear once.
fn open_field(
    field: Option<Field>,
    btid: &mut Option<String>,
    lifetime: &mut Option<String>,
) -> Result<(), XmlError> {
    let (slot, name) = match field {
        Some(Field::Btid) => (btid, "btid"),
        Some(Field::Lifetime) => (lifetime, "lifetime"),
        None => return Ok(()),
    };
    if slot.is_some() {
        return Err(XmlError::Duplicate(name));
    }
    *slot = Some(String::new());
    Ok(())
}

/// Adds character data to the open field; text anywhere else is ignored (extensions), except
/// outside the root, where XML allows none.
fn append(
    current: Option<Field>,
    btid: &mut Option<String>,
    lifetime: &mut Option<String>,
    text: &str,
    depth: usize,
) -> Result<(), XmlError> {
    if depth == 0 && !text.trim().is_empty() {
        return Err(syntax("text outside the root element"));
    }
    let slot = match current {
        Some(Field::Btid) => btid,
        Some(Field::Lifetime) => lifetime,
        None => return Ok(()),
    };
    if let Some(value) = slot {
        value.push_str(text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aka::Rand;
    use time::macros::datetime;

    fn btid() -> Btid {
        Btid::new(&Rand([0x42; 16]), "bsf.home1.net").unwrap()
    }

    #[test]
    fn body_is_exactly_as_designed() {
        let xml = bootstrapping_info_xml(&btid(), datetime!(2030-01-02 03:04:05.678 UTC));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <BootstrappingInfo xmlns=\"uri:3gpp-gba\">\
             <btid>QkJCQkJCQkJCQkJCQkJCQg==@bsf.home1.net</btid>\
             <lifetime>2030-01-02T03:04:05Z</lifetime>\
             </BootstrappingInfo>"
        );
    }

    #[test]
    fn lifetime_is_written_in_utc() {
        let xml = bootstrapping_info_xml(&btid(), datetime!(2030-01-02 03:04:05 +02:00));
        assert!(
            xml.contains("<lifetime>2030-01-02T01:04:05Z</lifetime>"),
            "{xml}"
        );
    }

    #[test]
    fn round_trips() {
        let when = datetime!(2030-01-02 03:04:05 UTC);
        let xml = bootstrapping_info_xml(&btid(), when);
        assert_eq!(parse_bootstrapping_info(&xml).unwrap(), (btid(), when));
    }

    #[test]
    fn text_is_escaped_and_unescaped() {
        let odd = Btid::new(&Rand([1; 16]), "bsf&co<x>").unwrap();
        let when = datetime!(2030-01-02 03:04:05 UTC);
        let xml = bootstrapping_info_xml(&odd, when);
        assert!(xml.contains("@bsf&amp;co&lt;x&gt;</btid>"), "{xml}");
        assert_eq!(parse_bootstrapping_info(&xml).unwrap(), (odd, when));
    }

    #[test]
    fn tolerates_whitespace_prefixes_comments_and_extensions() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- from another BSF -->
<g:BootstrappingInfo xmlns:g="uri:3gpp-gba" xmlns:x="urn:example">
  <g:btid>
     QkJCQkJCQkJCQkJCQkJCQg&#61;=@bsf.home1.net
  </g:btid>
  <x:lifetime>1999-01-01T00:00:00Z</x:lifetime>
  <g:lifetime>2030-01-02T05:04:05+02:00</g:lifetime>
  <x:extension><x:deep>text</x:deep></x:extension>
</g:BootstrappingInfo>
"#;
        let (b, lifetime) = parse_bootstrapping_info(xml).unwrap();
        assert_eq!(b, btid());
        assert_eq!(lifetime, datetime!(2030-01-02 03:04:05 UTC));
        assert_eq!(lifetime.offset(), UtcOffset::UTC);
    }

    #[test]
    fn tolerates_a_missing_namespace() {
        let xml = "<BootstrappingInfo><btid>QkJCQkJCQkJCQkJCQkJCQg==@bsf.home1.net</btid>\
                   <lifetime>2030-01-02T03:04:05Z</lifetime></BootstrappingInfo>";
        assert!(parse_bootstrapping_info(xml).is_ok());
    }

    #[test]
    fn refuses_bad_bodies() {
        let b = "<btid>QkJCQkJCQkJCQkJCQkJCQg==@bsf.home1.net</btid>";
        let l = "<lifetime>2030-01-02T03:04:05Z</lifetime>";
        let doc = |inner: &str| {
            format!("<BootstrappingInfo xmlns=\"uri:3gpp-gba\">{inner}</BootstrappingInfo>")
        };
        assert_eq!(
            parse_bootstrapping_info(&doc(l)),
            Err(XmlError::Missing("btid"))
        );
        assert_eq!(
            parse_bootstrapping_info(&doc(b)),
            Err(XmlError::Missing("lifetime"))
        );
        assert_eq!(
            parse_bootstrapping_info(&doc(&format!("{b}{b}{l}"))),
            Err(XmlError::Duplicate("btid"))
        );
        assert_eq!(
            parse_bootstrapping_info(&doc(&format!(
                "{b}<lifetime>2030-01-02T03:04:05</lifetime>"
            ))),
            Err(XmlError::Lifetime)
        );
        assert!(matches!(
            parse_bootstrapping_info(&doc(&format!("<btid>nope</btid>{l}"))),
            Err(XmlError::Btid(BtidError::NoAt))
        ));
        assert_eq!(
            parse_bootstrapping_info(&format!("<Other xmlns=\"uri:3gpp-gba\">{b}{l}</Other>")),
            Err(XmlError::WrongRoot)
        );
        assert_eq!(
            parse_bootstrapping_info(&format!(
                "<BootstrappingInfo xmlns=\"urn:other\">{b}{l}</BootstrappingInfo>"
            )),
            Err(XmlError::WrongRoot)
        );
        assert_eq!(parse_bootstrapping_info(""), Err(XmlError::WrongRoot));
        assert_eq!(
            parse_bootstrapping_info(&"x".repeat(MAX_XML_LEN + 1)),
            Err(XmlError::TooLong)
        );
        for bad in [
            format!("<BootstrappingInfo xmlns=\"uri:3gpp-gba\">{b}{l}"),
            format!("<BootstrappingInfo>{b}{l}</Other>"),
            format!(
                "<!DOCTYPE x [<!ENTITY a \"b\">]><BootstrappingInfo>{b}{l}</BootstrappingInfo>"
            ),
            doc(&format!("{b}<lifetime>&undefined;</lifetime>")),
            doc(&format!("<btid><i>x</i></btid>{l}")),
        ] {
            assert!(
                matches!(parse_bootstrapping_info(&bad), Err(XmlError::Syntax(_))),
                "{bad}: {:?}",
                parse_bootstrapping_info(&bad)
            );
        }
    }
}
