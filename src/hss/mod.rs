//! The HSS role (DESIGN.md §1) over the store: provisioning subscribers with sealed K and
//! OPc, authentication vectors with the atomic SQN step (TS 33.102 §6.3.2), and
//! re-synchronisation from AUTS (§6.3.5).
//!
//! The cryptography is in the pure `aka` module; this module adds the database and the
//! master key.

pub mod generate;
pub mod import;

use std::sync::Arc;

use crate::aka::{self, Amf, AuthVector, Auts, Rand, ResyncError, Sqn, SubscriberKeys};
use crate::clock::Clock;
use crate::ids::{Impi, Msisdn};
use crate::secret::{SealContext, SealError, Sealer, Secret};
use crate::store::{SealedKeys, StoreError, SubscriberRow, SubscriberStore};

/// A field an operator typed that cannot be used, and why. Never repeats a key's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A subscriber's fields as an operator gives them (flags or CSV columns); empty optional
/// fields count as absent.
#[derive(Debug, Default, Clone, Copy)]
pub struct SubscriberFields<'a> {
    pub impi: &'a str,
    pub msisdn: Option<&'a str>,
    pub k: &'a str,
    pub opc: Option<&'a str>,
    pub op: Option<&'a str>,
    pub amf: Option<&'a str>,
    pub sqn: Option<&'a str>,
}

/// A validated subscriber, ready to be sealed and stored.
#[derive(Debug)]
pub struct NewSubscriber {
    pub impi: Impi,
    pub msisdn: Option<Msisdn>,
    pub keys: SubscriberKeys,
    pub amf: Amf,
    pub sqn: Sqn,
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Parses exactly `N` bytes from `2N` hex digits; the message never repeats the value.
fn hex_field<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], FieldError> {
    let text = text.trim();
    if text.len() != 2 * N {
        return Err(FieldError::new(
            field,
            format!(
                "must be {} hex digits, got {} characters",
                2 * N,
                text.len()
            ),
        ));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| {
        let at = text
            .chars()
            .position(|c| !c.is_ascii_hexdigit())
            .unwrap_or(0);
        FieldError::new(
            field,
            format!("is not hex (character {} is not 0-9/a-f)", at + 1),
        )
    })?;
    Ok(out)
}

impl SubscriberFields<'_> {
    pub fn parse(&self) -> Result<NewSubscriber, FieldError> {
        let impi: Impi = self
            .impi
            .trim()
            .parse()
            .map_err(|e: crate::ids::InvalidId| FieldError::new("impi", e.to_string()))?;
        let msisdn = present(self.msisdn)
            .map(|m| m.parse::<Msisdn>())
            .transpose()
            .map_err(|e| FieldError::new("msisdn", e.to_string()))?;
        let k = Secret::new(hex_field::<16>("k", self.k)?);
        let keys = match (present(self.opc), present(self.op)) {
            (Some(opc), None) => SubscriberKeys::new(*k.expose(), hex_field("opc", opc)?),
            (None, Some(op)) => {
                SubscriberKeys::from_op(*k.expose(), &Secret::new(hex_field("op", op)?))
            }
            (Some(_), Some(_)) => {
                return Err(FieldError::new("opc", "give OPc or OP, not both"));
            }
            (None, None) => {
                return Err(FieldError::new("opc", "OPc (or OP) is required"));
            }
        };
        let amf = present(self.amf)
            .map(|a| hex_field::<2>("amf", a).map(Amf))
            .transpose()?
            .unwrap_or(Amf::DEFAULT);
        let sqn = present(self.sqn)
            .map(|s| hex_field::<6>("sqn", s).map(Sqn::from_bytes))
            .transpose()?
            .unwrap_or_default();
        Ok(NewSubscriber {
            impi,
            msisdn,
            keys,
            amf,
            sqn,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HssError {
    #[error("no subscriber with IMPI {0}")]
    UnknownImpi(Impi),
    #[error(transparent)]
    Resync(#[from] ResyncError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The HSS: subscriber keys in, vectors out.
#[derive(Debug, Clone)]
pub struct Hss {
    subscribers: Arc<dyn SubscriberStore>,
    sealer: Arc<Sealer>,
    clock: Arc<dyn Clock>,
}

const TABLE: &str = "subscribers";

impl Hss {
    pub fn new(
        subscribers: Arc<dyn SubscriberStore>,
        sealer: Arc<Sealer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            subscribers,
            sealer,
            clock,
        }
    }

    /// Seals K and OPc, each bound to this IMPI and its column.
    pub fn seal(&self, sub: &NewSubscriber) -> SubscriberRow {
        let row = sub.impi.as_str();
        SubscriberRow {
            impi: sub.impi.clone(),
            msisdn: sub.msisdn.clone(),
            k_sealed: self
                .sealer
                .seal(SealContext::new(TABLE, "k", row), sub.keys.k.expose()),
            opc_sealed: self
                .sealer
                .seal(SealContext::new(TABLE, "opc", row), sub.keys.opc.expose()),
            amf: sub.amf,
            sqn: sub.sqn,
            created_at: self.clock.now(),
        }
    }

    pub async fn add(&self, sub: &NewSubscriber) -> Result<(), HssError> {
        self.subscribers.insert(&self.seal(sub)).await?;
        Ok(())
    }

    /// Stores all subscribers or none (see [`SubscriberStore::insert_all`]).
    pub async fn add_all(
        &self,
        rows: &[SubscriberRow],
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(), HssError> {
        self.subscribers.insert_all(rows, progress).await?;
        Ok(())
    }

    fn open_keys(&self, impi: &Impi, sealed: &SealedKeys) -> Result<SubscriberKeys, HssError> {
        let row = impi.as_str();
        let k = self
            .sealer
            .open_array::<16>(SealContext::new(TABLE, "k", row), &sealed.k_sealed)?;
        let opc = self
            .sealer
            .open_array::<16>(SealContext::new(TABLE, "opc", row), &sealed.opc_sealed)?;
        Ok(SubscriberKeys { k, opc })
    }

    /// A fresh authentication vector: advances the stored SQN (one atomic statement), then
    /// computes the vector for the new SQN.
    pub async fn vector(&self, impi: &Impi, rand: Rand) -> Result<AuthVector, HssError> {
        let sealed = self
            .subscribers
            .advance_sqn(impi)
            .await?
            .ok_or_else(|| HssError::UnknownImpi(impi.clone()))?;
        let keys = self.open_keys(impi, &sealed)?;
        Ok(aka::generate_vector(&keys, rand, sealed.sqn, sealed.amf))
    }

    /// Applies a re-synchronisation: verifies MAC-S for `rand`, then raises the stored SQN
    /// to SQN_MS (it never goes down). Returns SQN_MS. A bad MAC-S changes nothing.
    pub async fn resync(&self, impi: &Impi, rand: Rand, auts: &Auts) -> Result<Sqn, HssError> {
        let sealed = self
            .subscribers
            .sealed_keys(impi)
            .await?
            .ok_or_else(|| HssError::UnknownImpi(impi.clone()))?;
        let keys = self.open_keys(impi, &sealed)?;
        let sqn_ms = aka::resync_sqn_ms(&keys, rand, auts)?;
        self.subscribers
            .raise_sqn(impi, sqn_ms)
            .await?
            .ok_or_else(|| HssError::UnknownImpi(impi.clone()))?;
        Ok(sqn_ms)
    }

    /// A random RAND from the operating system's generator (via `rand`'s thread RNG).
    pub fn random_rand() -> Rand {
        let mut bytes = [0u8; 16];
        rand::Rng::fill(&mut rand::rng(), &mut bytes);
        Rand(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> SubscriberFields<'static> {
        SubscriberFields {
            impi: "001010000000001@ims.example.org",
            k: "465b5ce8b199b49faa5f0a2ee238a6bc",
            opc: Some("cd63cb71954a9f4e48a5994e37a02baf"),
            ..SubscriberFields::default()
        }
    }

    #[test]
    fn defaults_for_optional_fields() {
        let sub = fields().parse().unwrap();
        assert_eq!(sub.amf, Amf::DEFAULT);
        assert_eq!(sub.sqn, Sqn::default());
        assert!(sub.msisdn.is_none());
    }

    #[test]
    fn op_is_turned_into_opc() {
        let sub = SubscriberFields {
            opc: None,
            op: Some("cdc202d5123e20f62b6d676ac72cb318"),
            ..fields()
        }
        .parse()
        .unwrap();
        assert_eq!(
            hex::encode(sub.keys.opc.expose()),
            "cd63cb71954a9f4e48a5994e37a02baf"
        );
    }

    #[test]
    fn each_bad_field_is_named_without_its_value() {
        let cases = [
            (
                SubscriberFields {
                    k: "465b5ce8",
                    ..fields()
                },
                "k: must be 32 hex digits, got 8",
            ),
            (
                SubscriberFields {
                    k: "g65b5ce8b199b49faa5f0a2ee238a6bc",
                    ..fields()
                },
                "k: is not hex (character 1",
            ),
            (
                SubscriberFields {
                    opc: Some("00"),
                    ..fields()
                },
                "opc: must be 32",
            ),
            (
                SubscriberFields {
                    opc: None,
                    ..fields()
                },
                "opc: OPc (or OP) is required",
            ),
            (
                SubscriberFields {
                    op: Some("cdc202d5123e20f62b6d676ac72cb318"),
                    ..fields()
                },
                "opc: give OPc or OP, not both",
            ),
            (
                SubscriberFields {
                    amf: Some("800"),
                    ..fields()
                },
                "amf: must be 4 hex digits",
            ),
            (
                SubscriberFields {
                    sqn: Some("1"),
                    ..fields()
                },
                "sqn: must be 12 hex digits",
            ),
            (
                SubscriberFields {
                    impi: "nobody",
                    ..fields()
                },
                "impi: IMPI \"nobody\"",
            ),
            (
                SubscriberFields {
                    msisdn: Some("0044"),
                    ..fields()
                },
                "msisdn: MSISDN",
            ),
        ];
        for (input, expected) in cases {
            let err = input.parse().unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{err:?} should start with {expected:?}"
            );
            assert!(!err.contains("465b5ce8"), "a key leaked into {err:?}");
        }
    }

    #[test]
    fn debug_of_a_new_subscriber_hides_keys() {
        let text = format!("{:?}", fields().parse().unwrap());
        assert!(!text.contains("465b") && !text.contains("cd63"), "{text}");
    }
}
