//! Test subscribers derived from a seed. `akaid subscriber generate` writes them in the
//! import CSV format, and load tools (`akaid ue bench`) derive the same keys from the same
//! seed, so a benchmark needs no key file. Anyone with the seed knows these keys: they are for
//! test and benchmark deployments, never for real SIMs.

use std::io::Write;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// The realm of generated IMPIs (TS 23.003 §13.3 form, test network MCC 001 MNC 01).
pub const REALM: &str = "ims.mnc001.mcc001.3gppnetwork.org";

/// Subscriber number `index` of the set `seed` names.
#[derive(Debug)]
pub struct SeededSubscriber {
    pub impi: String,
    pub msisdn: String,
    pub k: Secret<[u8; 16]>,
    pub opc: Secret<[u8; 16]>,
}

fn derive(seed: &str, label: &[u8], index: u64) -> Secret<[u8; 16]> {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(seed.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(label);
    mac.update(&index.to_be_bytes());
    let full = Secret::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    let mut out = Secret::new([0u8; 16]);
    out.expose_mut().copy_from_slice(&full.expose()[..16]);
    out
}

pub fn seeded(seed: &str, index: u64) -> SeededSubscriber {
    SeededSubscriber {
        impi: format!("00101{index:010}@{REALM}"),
        msisdn: format!("+999{index:010}"),
        k: derive(seed, b"akaid test K\0", index),
        opc: derive(seed, b"akaid test OPc\0", index),
    }
}

/// Writes `count` seeded subscribers as import CSV.
pub fn write_csv(out: &mut dyn Write, seed: &str, count: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    writeln!(out, "impi,msisdn,k,opc,op,amf,sqn")?;
    for index in 0..count {
        let sub = seeded(seed, index);
        writeln!(
            out,
            "{},{},{},{},,,",
            sub.impi,
            sub.msisdn,
            hex::encode(sub.k.expose()),
            hex::encode(sub.opc.expose())
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hss::import::parse_csv;

    #[test]
    fn same_seed_same_keys_and_the_csv_imports() {
        let a = seeded("s", 7);
        assert_eq!(a.k.expose(), seeded("s", 7).k.expose());
        assert_ne!(a.k.expose(), seeded("t", 7).k.expose());
        assert_ne!(a.k.expose(), a.opc.expose());
        let mut csv = Vec::new();
        write_csv(&mut csv, "s", 3).unwrap();
        let rows = parse_csv(&csv[..], |_| {}).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].subscriber.impi.as_str(), seeded("s", 2).impi);
        assert_eq!(
            rows[2].subscriber.keys.k.expose(),
            seeded("s", 2).k.expose()
        );
    }
}
