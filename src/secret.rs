//! Secrets in memory and at rest.
//!
//! [`Secret`] holds key material: it zeroizes on drop and its `Debug` prints `[redacted]`, so a
//! stray `{:?}` in a log line cannot leak it. [`Sealer`] seals values for the database with
//! AES-256-GCM under the operator's master key (DESIGN.md §3). The associated data binds each
//! ciphertext to its table, column and row key, so a sealed K copied into another row, or into
//! the OPc column of the same row, fails to open instead of yielding someone else's key.

use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A value that must not leak: zeroized on drop, redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value. Call sites of `expose` are the places to audit.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The secret value, to fill in place (so no copy is left behind).
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// Where a sealed value lives; bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a str,
}

impl<'a> SealContext<'a> {
    pub fn new(table: &'static str, column: &'static str, row: &'a str) -> Self {
        Self { table, column, row }
    }

    fn associated_data(&self) -> Vec<u8> {
        // NUL separators: none of the parts may contain NUL (table and column are constants;
        // row keys are validated identifiers), so the encoding is unambiguous.
        let mut ad = Vec::with_capacity(16 + self.table.len() + self.column.len() + self.row.len());
        ad.extend_from_slice(b"akaid-seal-v1\0");
        ad.extend_from_slice(self.table.as_bytes());
        ad.push(0);
        ad.extend_from_slice(self.column.as_bytes());
        ad.push(0);
        ad.extend_from_slice(self.row.as_bytes());
        ad
    }
}

impl fmt::Display for SealContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} of row {:?}", self.table, self.column, self.row)
    }
}

/// Layout version of a sealed value: `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`.
const SEAL_VERSION: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed {0} is truncated ({1} bytes): the database value is damaged")]
    Truncated(String, usize),
    #[error("sealed {0} has unknown format version {1:#04x}")]
    UnknownVersion(String, u8),
    #[error(
        "sealed {0} does not open: the master key is not the one it was sealed with, \
         or the value was altered or copied from another row or column"
    )]
    DoesNotOpen(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("AKAID_MASTER_KEY must be 64 hex digits (a 256-bit key), got {0} characters")]
    BadHexLength(usize),
    #[error("AKAID_MASTER_KEY is not hex: {0}")]
    BadHex(hex::FromHexError),
    #[error("master key file {path} must hold 64 hex digits: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("master key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "master key file {0} is readable by group or others (mode {1:o}); \
         run `chmod 600` on it"
    )]
    TooOpen(PathBuf, u32),
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
}

/// The operator's 256-bit master key; seals and opens secrets at rest.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(key: &Secret<[u8; 32]>) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.expose().into()),
        }
    }

    /// Parses a key given as 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(MasterKeyError::BadHexLength(text.len()));
        }
        let mut key = Secret::new([0u8; 32]);
        let mut bytes = Secret::new(hex::decode(text).map_err(MasterKeyError::BadHex)?);
        key.0.copy_from_slice(bytes.expose());
        bytes.zeroize();
        Ok(Self::new(&key))
    }

    /// Reads a key file holding 64 hex digits. Refuses a file others can read.
    pub fn from_file(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::TooOpen(path.to_owned(), mode));
            }
        }
        let text = Secret::new(std::fs::read_to_string(path).map_err(io)?);
        Self::from_hex(text.expose()).map_err(|e| MasterKeyError::BadFile {
            path: path.to_owned(),
            reason: match e {
                MasterKeyError::BadHexLength(n) => format!("found {n} characters"),
                other => other.to_string(),
            },
        })
    }

    /// Creates a new random key file with mode 0600; fails if the file already exists.
    pub fn create_file(path: &Path) -> Result<Self, MasterKeyError> {
        use std::io::Write;
        let io = |source| MasterKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut key = Secret::new([0u8; 32]);
        getrandom::fill(&mut key.0).map_err(|e| MasterKeyError::Random(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        let text = Secret::new(format!("{}\n", hex::encode(key.expose())));
        file.write_all(text.expose().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self::new(&key))
    }

    /// Seals `plaintext` for the place `ctx` names.
    pub fn seal(&self, ctx: SealContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // A failing OS RNG leaves no safe way to continue; `rand`'s thread RNG is seeded from
        // the OS and reseeds itself, so it cannot fail once running.
        rand::Rng::fill(&mut rand::rng(), &mut nonce);
        self.seal_with_nonce(ctx, plaintext, nonce)
    }

    fn seal_with_nonce(&self, ctx: SealContext<'_>, plaintext: &[u8], nonce: [u8; 12]) -> Vec<u8> {
        let ad = ctx.associated_data();
        let payload = Payload {
            msg: plaintext,
            aad: &ad,
        };
        let sealed = match self.cipher.encrypt(Nonce::from_slice(&nonce), payload) {
            Ok(sealed) => sealed,
            // AES-GCM encryption fails only for messages over 64 GiB.
            Err(_) => unreachable!("AES-GCM refused a small message"),
        };
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed for `ctx`.
    pub fn open(&self, ctx: SealContext<'_>, sealed: &[u8]) -> Result<Secret<Vec<u8>>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(SealError::Truncated(ctx.to_string(), sealed.len()));
        }
        if sealed[0] != SEAL_VERSION {
            return Err(SealError::UnknownVersion(ctx.to_string(), sealed[0]));
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let ad = ctx.associated_data();
        let payload = Payload {
            msg: ciphertext,
            aad: &ad,
        };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map(Secret::new)
            .map_err(|_| SealError::DoesNotOpen(ctx.to_string()))
    }

    /// Opens a value that must be exactly `N` bytes long.
    pub fn open_array<const N: usize>(
        &self,
        ctx: SealContext<'_>,
        sealed: &[u8],
    ) -> Result<Secret<[u8; N]>, SealError> {
        let plain = self.open(ctx, sealed)?;
        let mut out = Secret::new([0u8; N]);
        if plain.expose().len() != N {
            return Err(SealError::DoesNotOpen(ctx.to_string()));
        }
        out.0.copy_from_slice(plain.expose());
        Ok(out)
    }
}

/// What the key-check value seals; opening it proves the master key is the database's.
pub const KEY_CHECK_PLAINTEXT: &[u8] = b"akaid master key check v1";

/// The place the key-check value is sealed for.
pub fn key_check_context() -> SealContext<'static> {
    SealContext::new("meta", "value", "key_check")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&Secret::new([byte; 32]))
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new([0x41u8; 16]);
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", sealer(1)), "Sealer([redacted])");
    }

    #[test]
    fn seal_then_open_round_trips() {
        let ctx = SealContext::new("subscribers", "k", "alice@example.org");
        let sealed = sealer(7).seal(ctx, b"0123456789abcdef");
        assert_eq!(sealed.len(), 1 + 12 + 16 + 16);
        let plain = sealer(7).open(ctx, &sealed).unwrap();
        assert_eq!(plain.expose(), b"0123456789abcdef");
    }

    #[test]
    fn wrong_key_does_not_open() {
        let ctx = SealContext::new("subscribers", "k", "alice@example.org");
        let sealed = sealer(7).seal(ctx, b"secret");
        assert!(matches!(
            sealer(8).open(ctx, &sealed),
            Err(SealError::DoesNotOpen(_))
        ));
    }

    #[test]
    fn value_moved_to_another_row_or_column_does_not_open() {
        let s = sealer(7);
        let sealed = s.seal(SealContext::new("subscribers", "k", "alice@x"), b"secret");
        let other_row = SealContext::new("subscribers", "k", "bob@x");
        let other_col = SealContext::new("subscribers", "opc", "alice@x");
        assert!(matches!(
            s.open(other_row, &sealed),
            Err(SealError::DoesNotOpen(_))
        ));
        assert!(matches!(
            s.open(other_col, &sealed),
            Err(SealError::DoesNotOpen(_))
        ));
    }

    #[test]
    fn truncated_and_unknown_versions_are_named() {
        let s = sealer(7);
        let ctx = SealContext::new("subscribers", "k", "alice@x");
        let sealed = s.seal(ctx, b"secret");
        let err = s.open(ctx, &sealed[..20]).unwrap_err();
        assert_eq!(err, SealError::Truncated(ctx.to_string(), 20));
        assert!(err.to_string().contains("subscribers.k"));
        // Cutting the tag short but keeping the minimum length still fails authentication.
        let err = s.open(ctx, &sealed[..sealed.len() - 1]).unwrap_err();
        assert!(matches!(err, SealError::DoesNotOpen(_)));
        let mut bad = sealed.clone();
        bad[0] = 9;
        assert!(matches!(
            s.open(ctx, &bad),
            Err(SealError::UnknownVersion(_, 9))
        ));
    }

    #[test]
    fn master_key_hex_is_checked() {
        assert!(matches!(
            Sealer::from_hex("abcd"),
            Err(MasterKeyError::BadHexLength(4))
        ));
        assert!(matches!(
            Sealer::from_hex(&"zz".repeat(32)),
            Err(MasterKeyError::BadHex(_))
        ));
        assert!(Sealer::from_hex(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let created = Sealer::create_file(&path).unwrap();
        let ctx = SealContext::new("t", "c", "r");
        let sealed = created.seal(ctx, b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let loaded = Sealer::from_file(&path).unwrap();
        assert_eq!(loaded.open(ctx, &sealed).unwrap().expose(), b"x");
        assert!(
            Sealer::create_file(&path).is_err(),
            "never overwrites a key"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Sealer::from_file(&path),
            Err(MasterKeyError::TooOpen(_, 0o644))
        ));
    }
}
