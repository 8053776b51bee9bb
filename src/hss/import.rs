//! `subscriber import`: the CSV bulk-provisioning format.
//!
//! Header row with the columns `impi,msisdn,k,opc,op,amf,sqn` in any order (`impi` and `k`
//! required, one of `opc`/`op` present and exactly one of them filled in per row; the rest
//! optional). The whole file is checked before anything is stored, and a bad row aborts the
//! import with its line number.

use std::collections::HashSet;
use std::io::Read;

use super::{FieldError, NewSubscriber, SubscriberFields};

/// The columns the format knows.
pub const COLUMNS: [&str; 7] = ["impi", "msisdn", "k", "opc", "op", "amf", "sqn"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    #[error("line 1 (header): {0}")]
    Header(String),
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
}

/// A parsed row with the line it came from (header is line 1).
#[derive(Debug)]
pub struct ImportRow {
    pub line: u64,
    pub subscriber: NewSubscriber,
}

/// Column positions found in the header.
#[derive(Debug, Default)]
struct Layout {
    at: [Option<usize>; COLUMNS.len()],
}

impl Layout {
    fn from_header(header: &csv::StringRecord) -> Result<Self, ImportError> {
        let mut layout = Layout::default();
        for (pos, name) in header.iter().enumerate() {
            let name = name
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase();
            let Some(col) = COLUMNS.iter().position(|c| *c == name) else {
                return Err(ImportError::Header(format!(
                    "unknown column {name:?}; the columns are {}",
                    COLUMNS.join(",")
                )));
            };
            if layout.at[col].replace(pos).is_some() {
                return Err(ImportError::Header(format!(
                    "column {name:?} appears twice"
                )));
            }
        }
        for required in ["impi", "k"] {
            if layout.get(required).is_none() {
                return Err(ImportError::Header(format!(
                    "column {required:?} is missing"
                )));
            }
        }
        if layout.get("opc").is_none() && layout.get("op").is_none() {
            return Err(ImportError::Header(
                "needs an \"opc\" or an \"op\" column".into(),
            ));
        }
        Ok(layout)
    }

    fn get(&self, name: &str) -> Option<usize> {
        COLUMNS
            .iter()
            .position(|c| *c == name)
            .and_then(|i| self.at[i])
    }

    fn field<'r>(&self, record: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        self.get(name).and_then(|i| record.get(i))
    }
}

/// Reads and validates the whole file. `on_row` is called after each row with the number of
/// bytes read so far, for a progress bar.
pub fn parse_csv(
    input: impl Read,
    mut on_row: impl FnMut(u64),
) -> Result<Vec<ImportRow>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    let layout = Layout::from_header(&header)?;
    let mut rows = Vec::new();
    let mut impis = HashSet::new();
    let mut msisdns = HashSet::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(ImportError::Row {
                    line: e.position().map_or(line, |p| p.line()),
                    reason: csv_reason(&e),
                });
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let row_error = |e: FieldError| ImportError::Row {
            line,
            reason: e.to_string(),
        };
        let subscriber = SubscriberFields {
            impi: layout.field(&record, "impi").unwrap_or_default(),
            msisdn: layout.field(&record, "msisdn"),
            k: layout.field(&record, "k").unwrap_or_default(),
            opc: layout.field(&record, "opc"),
            op: layout.field(&record, "op"),
            amf: layout.field(&record, "amf"),
            sqn: layout.field(&record, "sqn"),
        }
        .parse()
        .map_err(row_error)?;
        if !impis.insert(subscriber.impi.clone()) {
            return Err(row_error(FieldError::new(
                "impi",
                format!("{} appears earlier in the file", subscriber.impi),
            )));
        }
        if let Some(msisdn) = &subscriber.msisdn
            && !msisdns.insert(msisdn.clone())
        {
            return Err(row_error(FieldError::new(
                "msisdn",
                format!("{msisdn} appears earlier in the file"),
            )));
        }
        rows.push(ImportRow { line, subscriber });
        on_row(reader.position().byte());
    }
    Ok(rows)
}

/// A CSV error without the record's content (which would include keys).
fn csv_reason(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        csv::ErrorKind::Io(e) => format!("cannot be read: {e}"),
        _ => "is not well-formed CSV".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
    const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";

    fn parse(text: &str) -> Result<Vec<ImportRow>, ImportError> {
        parse_csv(text.as_bytes(), |_| {})
    }

    #[test]
    fn reads_the_documented_format() {
        let text = format!(
            "impi,msisdn,k,opc,op,amf,sqn\n\
             a@x,+441,{K},{OPC},,8000,000000000020\n\
             b@x,,{K},,cdc202d5123e20f62b6d676ac72cb318,,\n"
        );
        let rows = parse(&text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].subscriber.sqn.value(), 0x20);
        assert_eq!(rows[1].line, 3);
        assert_eq!(hex::encode(rows[1].subscriber.keys.opc.expose()), OPC);
    }

    #[test]
    fn bad_row_names_its_line_and_field() {
        let text = format!("impi,k,opc\na@x,{K},{OPC}\nb@x,{K},12\nc@x,{K},{OPC}\n");
        assert_eq!(
            parse(&text).unwrap_err(),
            ImportError::Row {
                line: 3,
                reason: "opc: must be 32 hex digits, got 2 characters".into()
            }
        );
    }

    #[test]
    fn header_problems_are_named() {
        let err = parse("impi,k,opc,colour\n").unwrap_err().to_string();
        assert!(err.contains("unknown column \"colour\""), "{err}");
        let err = parse("impi,opc\n").unwrap_err().to_string();
        assert!(err.contains("\"k\" is missing"), "{err}");
        let err = parse("impi,k\n").unwrap_err().to_string();
        assert!(err.contains("\"opc\" or an \"op\""), "{err}");
    }

    #[test]
    fn duplicates_within_the_file_are_refused() {
        let text = format!("impi,k,opc\na@x,{K},{OPC}\na@x,{K},{OPC}\n");
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(err, "line 3: impi: a@x appears earlier in the file");
    }

    #[test]
    fn ragged_rows_do_not_echo_keys() {
        let text = format!("impi,k,opc\na@x,{K},{OPC},extra\n");
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(err, "line 2: has 4 fields, the header has 3");
    }
}
