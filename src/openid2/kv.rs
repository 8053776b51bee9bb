//! Key-value form encoding (OpenID Authentication 2.0 §4.1.1): the body of every direct
//! response (`associate`, `check_authentication`, direct errors) and the token that
//! signatures cover (§10.1, §11.4).
//!
//! Each pair is one line `key:value\n`. A key or a value must not contain a newline, a key
//! must not contain a colon, and nothing is added around the colon or the newline. The
//! parser is strict and names the line at fault, so a malformed body is reported rather than
//! half-read.

/// Why a key-value form document could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("key-value form key is empty")]
    EmptyKey,
    #[error("key-value form key {0:?} contains a colon")]
    ColonInKey(String),
    #[error("key-value form key {0:?} contains a newline")]
    NewlineInKey(String),
    #[error("key-value form value of {0:?} contains a newline")]
    NewlineInValue(String),
    #[error("key-value form is not UTF-8 (byte {0})")]
    NotUtf8(usize),
    #[error("key-value form does not end with a newline")]
    MissingFinalNewline,
    #[error("key-value form line {0} has no colon")]
    NoColon(usize),
    #[error("key-value form line {0} has an empty key")]
    EmptyKeyOnLine(usize),
    #[error("key-value form line {0} ends with a carriage return; lines end with \\n alone")]
    CarriageReturn(usize),
    #[error("key-value form line {0} has whitespace around its key")]
    WhitespaceAroundKey(usize),
    #[error("key-value form line {0} repeats the key {1:?}")]
    DuplicateKey(usize, String),
}

/// Encodes ordered pairs as key-value form.
pub fn encode<K, V>(pairs: &[(K, V)]) -> Result<String, KvError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut out = String::new();
    for (key, value) in pairs {
        let (key, value) = (key.as_ref(), value.as_ref());
        if key.is_empty() {
            return Err(KvError::EmptyKey);
        }
        if key.contains('\n') {
            return Err(KvError::NewlineInKey(key.to_owned()));
        }
        if key.contains(':') {
            return Err(KvError::ColonInKey(key.to_owned()));
        }
        if value.contains('\n') {
            return Err(KvError::NewlineInValue(key.to_owned()));
        }
        out.push_str(key);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

/// Parses a key-value form body given as bytes; it must be UTF-8.
pub fn parse_bytes(body: &[u8]) -> Result<Vec<(String, String)>, KvError> {
    let text = std::str::from_utf8(body).map_err(|e| KvError::NotUtf8(e.valid_up_to()))?;
    parse(text)
}

/// Parses a key-value form document into its pairs, in order. Lines are numbered from 1 in
/// errors. An empty document holds no pairs.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, KvError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(KvError::MissingFinalNewline);
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (index, line) in body.split('\n').enumerate() {
        let number = index + 1;
        if line.ends_with('\r') {
            return Err(KvError::CarriageReturn(number));
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(KvError::NoColon(number));
        };
        if key.is_empty() {
            return Err(KvError::EmptyKeyOnLine(number));
        }
        if key.trim() != key {
            return Err(KvError::WhitespaceAroundKey(number));
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(KvError::DuplicateKey(number, key.to_owned()));
        }
        pairs.push((key.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_order_with_final_newline() {
        let text = encode(&[("mode", "error"), ("error", "This is an example message")]).unwrap();
        // The example of §4.1.1.
        assert_eq!(text, "mode:error\nerror:This is an example message\n");
        assert_eq!(encode::<&str, &str>(&[]).unwrap(), "");
    }

    #[test]
    fn values_may_hold_colons_and_be_empty() {
        let text = encode(&[("url", "http://a:80/x"), ("empty", "")]).unwrap();
        assert_eq!(text, "url:http://a:80/x\nempty:\n");
        assert_eq!(
            parse(&text).unwrap(),
            vec![
                ("url".to_owned(), "http://a:80/x".to_owned()),
                ("empty".to_owned(), String::new())
            ]
        );
    }

    #[test]
    fn encode_refuses_what_cannot_round_trip() {
        assert_eq!(encode(&[("", "v")]), Err(KvError::EmptyKey));
        assert_eq!(
            encode(&[("a:b", "v")]),
            Err(KvError::ColonInKey("a:b".into()))
        );
        assert_eq!(
            encode(&[("a\nb", "v")]),
            Err(KvError::NewlineInKey("a\nb".into()))
        );
        assert_eq!(
            encode(&[("k", "v\nw")]),
            Err(KvError::NewlineInValue("k".into()))
        );
    }

    #[test]
    fn parse_round_trips_and_keeps_value_whitespace() {
        let pairs = vec![
            (
                "ns".to_owned(),
                "http://specs.openid.net/auth/2.0".to_owned(),
            ),
            ("is_valid".to_owned(), "true".to_owned()),
            ("note".to_owned(), " spaced ".to_owned()),
        ];
        assert_eq!(parse(&encode(&pairs).unwrap()).unwrap(), pairs);
        assert_eq!(parse("").unwrap(), Vec::new());
    }

    #[test]
    fn parse_names_each_fault() {
        assert_eq!(parse("a:b"), Err(KvError::MissingFinalNewline));
        assert_eq!(parse("a:b\nnocolon\n"), Err(KvError::NoColon(2)));
        assert_eq!(parse(":v\n"), Err(KvError::EmptyKeyOnLine(1)));
        assert_eq!(parse("a:b\r\n"), Err(KvError::CarriageReturn(1)));
        assert_eq!(parse(" a:b\n"), Err(KvError::WhitespaceAroundKey(1)));
        assert_eq!(parse("a :b\n"), Err(KvError::WhitespaceAroundKey(1)));
        assert_eq!(parse("\n"), Err(KvError::NoColon(1)));
        assert_eq!(
            parse("a:1\nb:2\na:3\n"),
            Err(KvError::DuplicateKey(3, "a".into()))
        );
        assert_eq!(parse_bytes(b"a:\xff\n"), Err(KvError::NotUtf8(2)));
        assert_eq!(parse_bytes(b"a:b\n").unwrap().len(), 1);
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            KvError::NoColon(3).to_string(),
            "key-value form line 3 has no colon"
        );
    }
}
