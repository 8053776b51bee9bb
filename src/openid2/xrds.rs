//! Yadis XRDS documents (OpenID Authentication 2.0 §7.3.1, §7.3.2.1; Yadis 1.0): the ones
//! this OP serves for discovery (its OP identifier, §7.3.2.1.1, and user identifiers,
//! §7.3.2.1.2 with OpenID 1.x compatibility, §14), and reading a relying party's document to
//! find its `return_to` endpoints (§13). Fetching is the caller's business.
//!
//! Documents are written by hand with every value XML-escaped; reading uses quick-xml, which
//! expands no entities beyond XML's five and character references, so a hostile document
//! cannot make it fetch or multiply anything.

use quick_xml::escape::{escape, resolve_xml_entity};
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use super::{
    AX_NS, OPENID1_0_NS, OPENID1_1_NS, PAPE_NS, RETURN_TO_TYPE, SERVER_TYPE, SIGNON_TYPE,
    SREG_1_0_NS, SREG_1_1_NS,
};

/// The XRD namespace of Yadis 1.0 / XRI Resolution 2.0.
pub const XRD_NS: &str = "xri://$xrd*($v*2.0)";
/// The XRDS namespace.
pub const XRDS_NS: &str = "xri://$xrds";
/// OpenID 1.x's namespace for `openid:Delegate`.
pub const OPENID_XMLNS: &str = "http://openid.net/xmlns/1.0";
/// The media type of XRDS documents.
pub const XRDS_CONTENT_TYPE: &str = "application/xrds+xml";

/// Extension types this OP advertises beside its service type.
const EXTENSION_TYPES: [&str; 4] = [SREG_1_1_NS, SREG_1_0_NS, AX_NS, PAPE_NS];

/// Why a relying party's XRDS document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XrdsError {
    #[error("the relying party's XRDS document is not well-formed XML: {0}")]
    Xml(String),
    #[error("the relying party's XRDS document uses the undefined entity &{0};")]
    UnknownEntity(String),
    #[error("the relying party's XRDS document has no XRD element")]
    NoXrd,
}

/// The OP endpoint URL, `<public_url>openid` (DESIGN.md §2.6).
pub fn op_endpoint(public_url: &str) -> String {
    if public_url.ends_with('/') {
        format!("{public_url}openid")
    } else {
        format!("{public_url}/openid")
    }
}

fn document(service: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <xrds:XRDS xmlns:xrds=\"{XRDS_NS}\" xmlns=\"{XRD_NS}\" xmlns:openid=\"{OPENID_XMLNS}\">\n\
         \x20 <XRD>\n\
         \x20   <Service priority=\"0\">\n\
         {service}\
         \x20   </Service>\n\
         \x20 </XRD>\n\
         </xrds:XRDS>\n"
    )
}

fn element(name: &str, value: &str) -> String {
    format!("      <{name}>{}</{name}>\n", escape(value))
}

/// The XRDS of the OP identifier (`public_url`): one service of type
/// `http://specs.openid.net/auth/2.0/server` at the OP endpoint (§7.3.2.1.1).
pub fn op_identifier_xrds(public_url: &str) -> String {
    let mut service = element("Type", SERVER_TYPE);
    for t in EXTENSION_TYPES {
        service.push_str(&element("Type", t));
    }
    service.push_str(&element("URI", &op_endpoint(public_url)));
    document(&service)
}

/// The XRDS of a user identifier (§7.3.2.1.2): type `…/2.0/signon`, and OpenID 1.1 and 1.0's
/// `signon` types, at the OP endpoint, with `local_id` both as 2.0's `LocalID` and as 1.x's
/// `openid:Delegate` (python-openid refuses a service where the two differ).
pub fn user_identifier_xrds(public_url: &str, local_id: &str) -> String {
    let mut service = String::new();
    for t in [SIGNON_TYPE, OPENID1_1_NS, OPENID1_0_NS] {
        service.push_str(&element("Type", t));
    }
    for t in EXTENSION_TYPES {
        service.push_str(&element("Type", t));
    }
    service.push_str(&element("URI", &op_endpoint(public_url)));
    service.push_str(&element("LocalID", local_id));
    service.push_str(&element("openid:Delegate", local_id));
    document(&service)
}

/// What is being collected inside a Service.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Uri,
}

/// The `return_to` URLs a relying party publishes (§13): the URIs of every service of type
/// `http://specs.openid.net/auth/2.0/return_to` in the document's last XRD, in document
/// order, whitespace trimmed.
pub fn return_to_urls(xml: &str) -> Result<Vec<String>, XrdsError> {
    service_uris(xml, RETURN_TO_TYPE)
}

/// The URIs of every service of type `service_type` in the document's last XRD (Yadis 1.0
/// §7.3.1), in document order, whitespace trimmed: what a relying party reads from an OP
/// identifier's document (`…/2.0/server`) or a claimed identifier's (`…/2.0/signon`, §7.3.2.1).
pub fn service_uris(xml: &str, service_type: &str) -> Result<Vec<String>, XrdsError> {
    let xrd_ns = ResolveResult::Bound(Namespace(XRD_NS.as_bytes()));
    let mut reader = NsReader::from_str(xml);
    let err = |e: &dyn std::fmt::Display| XrdsError::Xml(e.to_string());

    let mut seen_xrd = false;
    let mut urls: Vec<String> = Vec::new();
    let mut service: Option<(Vec<String>, Vec<String>)> = None;
    let mut field: Option<(Field, String)> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| err(&e))?;
        match event {
            Event::Start(e) => {
                if ns != xrd_ns {
                    continue;
                }
                match e.local_name().as_ref() {
                    b"XRD" => {
                        // Only the last XRD describes the resource (Yadis 1.0 §7.3.1).
                        seen_xrd = true;
                        urls.clear();
                    }
                    b"Service" => service = Some((Vec::new(), Vec::new())),
                    b"Type" if service.is_some() => field = Some((Field::Type, String::new())),
                    b"URI" if service.is_some() => field = Some((Field::Uri, String::new())),
                    _ => {}
                }
            }
            Event::Empty(e) if ns == xrd_ns && e.local_name().as_ref() == b"XRD" => {
                seen_xrd = true;
                urls.clear();
            }
            Event::Text(t) => {
                if let Some((_, text)) = field.as_mut() {
                    text.push_str(&t.decode().map_err(|e| err(&e))?);
                }
            }
            Event::CData(t) => {
                if let Some((_, text)) = field.as_mut() {
                    text.push_str(&t.decode().map_err(|e| err(&e))?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, text)) = field.as_mut() {
                    match r.resolve_char_ref().map_err(|e| err(&e))? {
                        Some(c) => text.push(c),
                        None => {
                            let name = r.decode().map_err(|e| err(&e))?;
                            match resolve_xml_entity(&name) {
                                Some(s) => text.push_str(s),
                                None => return Err(XrdsError::UnknownEntity(name.into_owned())),
                            }
                        }
                    }
                }
            }
            Event::End(e) => {
                if ns != xrd_ns {
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Type" | b"URI" => {
                        if let (Some((kind, text)), Some((types, uris))) =
                            (field.take(), service.as_mut())
                        {
                            let text = text.trim().to_owned();
                            match kind {
                                Field::Type => types.push(text),
                                Field::Uri => uris.push(text),
                            }
                        }
                    }
                    b"Service" => {
                        if let Some((types, uris)) = service.take()
                            && types.iter().any(|t| t == service_type)
                        {
                            urls.extend(uris.into_iter().filter(|u| !u.is_empty()));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_xrd {
        return Err(XrdsError::NoXrd);
    }
    Ok(urls)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn op_identifier_document() {
        let xml = op_identifier_xrds("https://op.example/");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xrds:XRDS"));
        assert!(xml.contains("<Type>http://specs.openid.net/auth/2.0/server</Type>"));
        assert!(xml.contains("<URI>https://op.example/openid</URI>"));
        assert!(!xml.contains("LocalID"));
        assert_eq!(
            op_endpoint("https://op.example"),
            "https://op.example/openid"
        );
        assert_eq!(
            op_endpoint("https://op.example/sub/"),
            "https://op.example/sub/openid"
        );
    }

    #[test]
    fn user_identifier_document_escapes_and_delegates() {
        let xml = user_identifier_xrds("https://op.example/a&b<2>/", "https://op.example/id/x\"y");
        assert!(xml.contains("<Type>http://specs.openid.net/auth/2.0/signon</Type>"));
        assert!(xml.contains("<Type>http://openid.net/signon/1.0</Type>"));
        assert!(xml.contains("<URI>https://op.example/a&amp;b&lt;2&gt;/openid</URI>"));
        assert!(xml.contains("<LocalID>https://op.example/id/x&quot;y</LocalID>"));
        assert!(xml.contains("<openid:Delegate>https://op.example/id/x&quot;y</openid:Delegate>"));
        // It is well-formed and namespaced as Yadis readers expect.
        let mut reader = NsReader::from_str(&xml);
        let mut local_ids = 0;
        loop {
            let (ns, event) = reader.read_resolved_event().unwrap();
            match event {
                Event::Start(e) if e.local_name().as_ref() == b"LocalID" => {
                    assert_eq!(ns, ResolveResult::Bound(Namespace(XRD_NS.as_bytes())));
                    local_ids += 1;
                }
                Event::Start(e) if e.local_name().as_ref() == b"Delegate" => {
                    assert_eq!(ns, ResolveResult::Bound(Namespace(OPENID_XMLNS.as_bytes())));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(local_ids, 1);
    }

    const RP_XRDS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)">
  <XRD>
    <Service priority="1">
      <Type>http://specs.openid.net/auth/2.0/return_to</Type>
      <URI> https://rp.example/finish?a=1&amp;b=2 </URI>
      <URI><![CDATA[https://rp.example/other]]></URI>
    </Service>
    <Service>
      <Type>http://specs.openid.net/auth/2.0/signon</Type>
      <URI>https://not-a-return-to.example/</URI>
    </Service>
    <Service>
      <Type>http://specs.openid.net/auth/2.0/return_to</Type>
      <URI>https://rp.example/&#x41;</URI>
    </Service>
  </XRD>
</xrds:XRDS>"#;

    #[test]
    fn finds_return_to_urls() {
        assert_eq!(
            return_to_urls(RP_XRDS).unwrap(),
            [
                "https://rp.example/finish?a=1&b=2",
                "https://rp.example/other",
                "https://rp.example/A"
            ]
        );
    }

    #[test]
    fn only_the_xrd_namespace_and_the_last_xrd_count() {
        let xml = r#"<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)">
  <XRD><Service><Type>http://specs.openid.net/auth/2.0/return_to</Type><URI>https://first.example/</URI></Service></XRD>
  <XRD><Service><Type>http://specs.openid.net/auth/2.0/return_to</Type><URI>https://last.example/</URI></Service>
  <Service xmlns="urn:other"><Type>http://specs.openid.net/auth/2.0/return_to</Type><URI>https://other.example/</URI></Service></XRD>
</xrds:XRDS>"#;
        assert_eq!(return_to_urls(xml).unwrap(), ["https://last.example/"]);
        let none =
            r#"<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD/></xrds:XRDS>"#;
        assert_eq!(return_to_urls(none).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn bad_documents_are_named() {
        assert_eq!(
            return_to_urls("<html><body>hi</body></html>"),
            Err(XrdsError::NoXrd)
        );
        assert!(matches!(
            return_to_urls("<XRDS><XRD></XRDS>"),
            Err(XrdsError::Xml(_))
        ));
        let entity = r#"<!DOCTYPE x [<!ENTITY e "boom">]>
<xrds:XRDS xmlns:xrds="xri://$xrds" xmlns="xri://$xrd*($v*2.0)"><XRD><Service>
<Type>http://specs.openid.net/auth/2.0/return_to</Type><URI>&e;</URI></Service></XRD></xrds:XRDS>"#;
        assert_eq!(
            return_to_urls(entity),
            Err(XrdsError::UnknownEntity("e".into()))
        );
    }

    #[test]
    fn our_documents_are_not_return_to_documents() {
        assert_eq!(
            return_to_urls(&op_identifier_xrds("https://op.example/")).unwrap(),
            Vec::<String>::new()
        );
    }
}
