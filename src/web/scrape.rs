//! Reading the few things clients of HTML pages need (the software handset's forms, a relying
//! party's `<meta http-equiv="X-XRDS-Location">`): start-tag attributes and entity decoding.
//! Not an HTML parser: enough for pages whose shape is known, and never a panic on others.

/// The attributes of one start tag (from `<` up to, not including, `>`): names lower-cased,
/// values entity-decoded; quoted with `"` or `'`, or unquoted.
pub fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = tag.as_bytes();
    // Skip the element name.
    let mut i = tag
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(tag.len());
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let name = tag[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            if !name.is_empty() {
                out.push((name, String::new()));
            }
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&q) if q == b'"' || q == b'\'' => {
                let end = tag[i + 1..]
                    .find(q as char)
                    .map_or(tag.len(), |e| i + 1 + e);
                let value = &tag[i + 1..end];
                i = end + 1;
                value
            }
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                &tag[start..i]
            }
        };
        out.push((name, decode_entities(value)));
    }
    out
}

/// The entities HTML attribute values carry in practice: XML's five, their numeric forms for
/// quotes, and `&#x2f;`. `&amp;` last, so `&amp;lt;` stays `&lt;`.
pub fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_in_any_quoting() {
        let tag = r#"<input TYPE=hidden name='a' value="x &amp; &quot;y&quot;" disabled"#;
        assert_eq!(
            attributes(tag),
            vec![
                ("type".to_owned(), "hidden".to_owned()),
                ("name".to_owned(), "a".to_owned()),
                ("value".to_owned(), "x & \"y\"".to_owned()),
                ("disabled".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            attributes("<meta content=\"unterminated"),
            vec![("content".to_owned(), "unterminated".to_owned())]
        );
        assert_eq!(decode_entities("&amp;lt;"), "&lt;");
    }
}
