//! `akaid hss vector` and re-synchronisation against an independent implementation:
//! `osmo-auc-gen` from libosmocore (Debian `libosmocore-utils`).

use std::collections::HashMap;
use std::process::Command;

use akaid::aka::{Autn, Rand, Sqn, SubscriberKeys, UsimError, UsimState};

use crate::support::{akaid, stderr, stdout};

/// `osmo-auc-gen` with `args`, its `Label:\tvalue` lines as a map; `None` (test skipped)
/// when the tool is absent and not required.
fn osmo_auc_gen(args: &[&str]) -> Option<(HashMap<String, String>, String)> {
    match Command::new("osmo-auc-gen").args(args).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "osmo-auc-gen {args:?}: {text}");
            let fields = text
                .lines()
                .filter_map(|l| l.split_once(":\t"))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            Some((fields, text))
        }
        Err(e) => {
            assert!(
                std::env::var_os("AKAID_REQUIRE_REFERENCE_TOOLS").is_none(),
                "osmo-auc-gen is required but cannot run: {e}"
            );
            eprintln!("skipped: osmo-auc-gen not installed (Debian libosmocore-utils)");
            None
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

#[test]
fn hss_vector_equals_osmo_auc_gen() {
    if osmo_auc_gen(&["--help"]).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for n in 0..6 {
        let impi = format!("00101000000000{n}@ims.example.org");
        let (k, opc, amf) = (random_hex(16), random_hex(16), random_hex(2));
        // A random stored SQN; the vector uses the next one.
        let stored = Sqn::new(rand::random::<u64>() >> 20).unwrap();
        let out = akaid(
            dir.path(),
            &[
                "subscriber",
                "add",
                "--impi",
                &impi,
                "--k",
                &k,
                "--opc",
                &opc,
                "--amf",
                &amf,
                "--sqn",
                &stored.to_string(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        for _ in 0..2 {
            let rand = random_hex(16);
            let out = akaid(
                dir.path(),
                &["hss", "vector", &impi, "--rand", &rand, "--json"],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            let ours: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            let sqn = Sqn::from_hex(ours["sqn"].as_str().unwrap()).unwrap();
            let (theirs, text) = osmo_auc_gen(&[
                "-3",
                "-a",
                "milenage",
                "-k",
                &k,
                "-o",
                &opc,
                "-f",
                &amf,
                "-s",
                &sqn.value().to_string(),
                "-r",
                &rand,
            ])
            .unwrap();
            assert_eq!(theirs["SQN"], sqn.value().to_string(), "{text}");
            assert_eq!(theirs["RAND"], rand, "{text}");
            assert_eq!(theirs["AUTN"], ours["autn"], "AUTN, {impi}\n{text}");
            assert_eq!(theirs["RES"], ours["xres"], "XRES, {impi}\n{text}");
            assert_eq!(theirs["CK"], ours["ck"], "CK, {impi}\n{text}");
            assert_eq!(theirs["IK"], ours["ik"], "IK, {impi}\n{text}");
        }
    }
}

/// Our USIM's AUTS goes to osmo-auc-gen, which recovers SQN_MS and makes a vector after it;
/// our USIM accepts that vector. Our HSS recovers the same SQN_MS from the same AUTS.
#[test]
fn auts_round_trips_through_osmo_auc_gen() {
    if osmo_auc_gen(&["--help"]).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let impi = "001010000000099@ims.example.org";
    let (k, opc) = (random_hex(16), random_hex(16));
    let out = akaid(
        dir.path(),
        &[
            "subscriber",
            "add",
            "--impi",
            impi,
            "--k",
            &k,
            "--opc",
            &opc,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = akaid(dir.path(), &["hss", "vector", impi, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rand_hex = v["rand"].as_str().unwrap().to_owned();

    let mut key = [[0u8; 16]; 2];
    hex::decode_to_slice(&k, &mut key[0]).unwrap();
    hex::decode_to_slice(&opc, &mut key[1]).unwrap();
    let keys = SubscriberKeys::new(key[0], key[1]);
    let sqn_ms = Sqn::from_parts(123_456, 9).unwrap();
    let mut usim = UsimState::at(sqn_ms);
    let mut rand = [0u8; 16];
    hex::decode_to_slice(&rand_hex, &mut rand).unwrap();
    let mut autn = [0u8; 16];
    hex::decode_to_slice(v["autn"].as_str().unwrap(), &mut autn).unwrap();
    let Err(UsimError::SyncFailure(auts)) = usim.authenticate(&keys, Rand(rand), &Autn(autn))
    else {
        panic!("a USIM ahead of the HSS must answer with AUTS");
    };

    let (theirs, text) = osmo_auc_gen(&[
        "-3",
        "-a",
        "milenage",
        "-k",
        &k,
        "-o",
        &opc,
        "-A",
        &auts.to_string(),
        "-r",
        &rand_hex,
    ])
    .unwrap();
    assert_eq!(
        theirs.get("SQN.MS"),
        Some(&sqn_ms.value().to_string()),
        "osmo-auc-gen recovers our SQN_MS from our AUTS:\n{text}"
    );
    let their_sqn = Sqn::new(theirs["SQN"].parse().unwrap()).unwrap();
    assert_eq!(
        their_sqn.seq(),
        sqn_ms.seq() + 1,
        "osmo resumes after SQN_MS:\n{text}"
    );
    let mut their_autn = [0u8; 16];
    hex::decode_to_slice(&theirs["AUTN"], &mut their_autn).unwrap();
    usim.authenticate(&keys, Rand(rand), &Autn(their_autn))
        .expect("our USIM accepts osmo-auc-gen's vector after the resync");

    let out = akaid(
        dir.path(),
        &[
            "hss",
            "resync",
            impi,
            "--rand",
            &rand_hex,
            "--auts",
            &auts.to_string(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["sqn_ms"], sqn_ms.to_string());
}
