//! TS 35.208 conformance test sets 1–6 and USIM/network round trips.

use super::*;
use crate::secret::Secret;

struct TestSet {
    k: &'static str,
    rand: &'static str,
    sqn: &'static str,
    amf: &'static str,
    op: &'static str,
    opc: &'static str,
    f1: &'static str,
    f1star: &'static str,
    f2: &'static str,
    f5: &'static str,
    f3: &'static str,
    f4: &'static str,
    f5star: &'static str,
}

/// TS 35.208 §4.3, test sets 1 to 6.
const SETS: [TestSet; 6] = [
    TestSet {
        k: "465b5ce8b199b49faa5f0a2ee238a6bc",
        rand: "23553cbe9637a89d218ae64dae47bf35",
        sqn: "ff9bb4d0b607",
        amf: "b9b9",
        op: "cdc202d5123e20f62b6d676ac72cb318",
        opc: "cd63cb71954a9f4e48a5994e37a02baf",
        f1: "4a9ffac354dfafb3",
        f1star: "01cfaf9ec4e871e9",
        f2: "a54211d5e3ba50bf",
        f5: "aa689c648370",
        f3: "b40ba9a3c58b2a05bbf0d987b21bf8cb",
        f4: "f769bcd751044604127672711c6d3441",
        f5star: "451e8beca43b",
    },
    TestSet {
        k: "0396eb317b6d1c36f19c1c84cd6ffd16",
        rand: "c00d603103dcee52c4478119494202e8",
        sqn: "fd8eef40df7d",
        amf: "af17",
        op: "ff53bade17df5d4e793073ce9d7579fa",
        opc: "53c15671c60a4b731c55b4a441c0bde2",
        f1: "5df5b31807e258b0",
        f1star: "a8c016e51ef4a343",
        f2: "d3a628ed988620f0",
        f5: "c47783995f72",
        f3: "58c433ff7a7082acd424220f2b67c556",
        f4: "21a8c1f929702adb3e738488b9f5c5da",
        f5star: "30f1197061c1",
    },
    TestSet {
        k: "fec86ba6eb707ed08905757b1bb44b8f",
        rand: "9f7c8d021accf4db213ccff0c7f71a6a",
        sqn: "9d0277595ffc",
        amf: "725c",
        op: "dbc59adcb6f9a0ef735477b7fadf8374",
        opc: "1006020f0a478bf6b699f15c062e42b3",
        f1: "9cabc3e99baf7281",
        f1star: "95814ba2b3044324",
        f2: "8011c48c0c214ed2",
        f5: "33484dc2136b",
        f3: "5dbdbb2954e8f3cde665b046179a5098",
        f4: "59a92d3b476a0443487055cf88b2307b",
        f5star: "deacdd848cc6",
    },
    TestSet {
        k: "9e5944aea94b81165c82fbf9f32db751",
        rand: "ce83dbc54ac0274a157c17f80d017bd6",
        sqn: "0b604a81eca8",
        amf: "9e09",
        op: "223014c5806694c007ca1eeef57f004f",
        opc: "a64a507ae1a2a98bb88eb4210135dc87",
        f1: "74a58220cba84c49",
        f1star: "ac2cc74a96871837",
        f2: "f365cd683cd92e96",
        f5: "f0b9c08ad02e",
        f3: "e203edb3971574f5a94b0d61b816345d",
        f4: "0c4524adeac041c4dd830d20854fc46b",
        f5star: "6085a86c6f63",
    },
    TestSet {
        k: "4ab1deb05ca6ceb051fc98e77d026a84",
        rand: "74b0cd6031a1c8339b2b6ce2b8c4a186",
        sqn: "e880a1b580b6",
        amf: "9f07",
        op: "2d16c5cd1fdf6b22383584e3bef2a8d8",
        opc: "dcf07cbd51855290b92a07a9891e523e",
        f1: "49e785dd12626ef2",
        f1star: "9e85790336bb3fa2",
        f2: "5860fc1bce351e7e",
        f5: "31e11a609118",
        f3: "7657766b373d1c2138f307e3de9242f9",
        f4: "1c42e960d89b8fa99f2744e0708ccb53",
        f5star: "fe2555e54aa9",
    },
    TestSet {
        k: "6c38a116ac280c454f59332ee35c8c4f",
        rand: "ee6466bc96202c5a557abbeff8babf63",
        sqn: "414b98222181",
        amf: "4464",
        op: "1ba00a1a7c6700ac8c3ff3e96ad08725",
        opc: "3803ef5363b947c6aaa225e58fae3934",
        f1: "078adfb488241a57",
        f1star: "80246b8d0186bcf1",
        f2: "16c8233f05a0ac28",
        f5: "45b0f69ab06c",
        f3: "3f8c7587fe8e4b233af676aede30ba3b",
        f4: "a7466cc1e6b2a1337d49d3b66e95d7b4",
        f5star: "1f53cd2b1113",
    },
];

fn arr<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).unwrap();
    out
}

fn xor6(a: [u8; 6], b: [u8; 6]) -> [u8; 6] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

#[test]
fn ts_35_208_opc_from_op() {
    for (n, set) in SETS.iter().enumerate() {
        let keys = SubscriberKeys::from_op(arr(set.k), &Secret::new(arr(set.op)));
        assert_eq!(
            hex::encode(keys.opc.expose()),
            set.opc,
            "test set {}",
            n + 1
        );
    }
}

#[test]
fn ts_35_208_every_function_output() {
    for (n, set) in SETS.iter().enumerate() {
        let set_no = n + 1;
        let mut m = cipher::Cipher::new(&arr(set.k), &arr(set.opc));
        let rand: [u8; 16] = arr(set.rand);
        let (f2, f3, f4, f5) = m.f2345(&rand);
        assert_eq!(hex::encode(f2), set.f2, "f2, test set {set_no}");
        assert_eq!(hex::encode(f3), set.f3, "f3, test set {set_no}");
        assert_eq!(hex::encode(f4), set.f4, "f4, test set {set_no}");
        assert_eq!(hex::encode(f5), set.f5, "f5, test set {set_no}");
        let f1 = m.f1(&rand, &arr(set.sqn), &arr(set.amf));
        assert_eq!(hex::encode(f1), set.f1, "f1, test set {set_no}");
        let f1star = m.f1star(&rand, &arr(set.sqn), &arr(set.amf));
        assert_eq!(hex::encode(f1star), set.f1star, "f1*, test set {set_no}");
        assert_eq!(
            hex::encode(m.f5star(&rand)),
            set.f5star,
            "f5*, test set {set_no}"
        );
    }
}

#[test]
fn ts_35_208_vectors_and_autn() {
    for (n, set) in SETS.iter().enumerate() {
        let keys = SubscriberKeys::new(arr(set.k), arr(set.opc));
        let sqn = Sqn::from_hex(set.sqn).unwrap();
        let v = generate_vector(&keys, Rand(arr(set.rand)), sqn, Amf(arr(set.amf)));
        let expected_autn = format!(
            "{}{}{}",
            hex::encode(xor6(arr(set.sqn), arr(set.f5))),
            set.amf,
            set.f1
        );
        assert_eq!(
            v.autn.to_string(),
            expected_autn,
            "AUTN, test set {}",
            n + 1
        );
        assert_eq!(hex::encode(v.xres.expose()), set.f2);
        assert_eq!(hex::encode(v.ck.expose()), set.f3);
        assert_eq!(hex::encode(v.ik.expose()), set.f4);
        assert_eq!(v.sqn, sqn);
    }
}

#[test]
fn ts_35_208_auts_recovers_sqn_ms() {
    // The AUTS a USIM would send for SQN_MS = the set's SQN: (SQN ⊕ f5*) ‖ f1*(AMF 0000).
    for set in &SETS {
        let keys = SubscriberKeys::new(arr(set.k), arr(set.opc));
        let rand = Rand(arr(set.rand));
        let mut m = cipher::Cipher::new(&arr(set.k), &arr(set.opc));
        let mac_s = m.f1star(&rand.0, &arr(set.sqn), &[0, 0]);
        let mut auts = [0u8; 14];
        auts[..6].copy_from_slice(&xor6(arr(set.sqn), arr(set.f5star)));
        auts[6..].copy_from_slice(&mac_s);
        let sqn_ms = resync_sqn_ms(&keys, rand, &Auts(auts)).unwrap();
        assert_eq!(sqn_ms.to_string(), set.sqn);
    }
}

fn test_keys() -> SubscriberKeys {
    SubscriberKeys::new(arr(SETS[0].k), arr(SETS[0].opc))
}

fn rand(byte: u8) -> Rand {
    Rand([byte; 16])
}

#[test]
fn usim_accepts_a_fresh_vector_and_agrees_on_keys() {
    let keys = test_keys();
    let mut usim = UsimState::default();
    let sqn = Sqn::default().next();
    let v = generate_vector(&keys, rand(1), sqn, Amf::DEFAULT);
    let r = usim.authenticate(&keys, v.rand, &v.autn).unwrap();
    assert_eq!(r.res.expose(), v.xres.expose());
    assert_eq!(r.ck.expose(), v.ck.expose());
    assert_eq!(r.ik.expose(), v.ik.expose());
    assert_eq!(r.sqn, sqn);
    assert_eq!(usim.highest(), sqn);
}

#[test]
fn usim_refuses_a_replayed_vector_with_auts() {
    let keys = test_keys();
    let mut usim = UsimState::default();
    let v = generate_vector(&keys, rand(1), Sqn::default().next(), Amf::DEFAULT);
    usim.authenticate(&keys, v.rand, &v.autn).unwrap();
    let before = usim.clone();
    match usim.authenticate(&keys, v.rand, &v.autn) {
        Err(UsimError::SyncFailure(auts)) => {
            let sqn_ms = resync_sqn_ms(&keys, v.rand, &auts).unwrap();
            assert_eq!(sqn_ms, v.sqn);
        }
        other => panic!("expected a sync failure, got {other:?}"),
    }
    assert_eq!(usim, before, "a refused vector changes nothing");
}

#[test]
fn usim_refuses_a_forged_autn_without_auts() {
    let keys = test_keys();
    let mut usim = UsimState::default();
    let mut v = generate_vector(&keys, rand(1), Sqn::default().next(), Amf::DEFAULT);
    v.autn.0[15] ^= 1;
    assert_eq!(
        usim.authenticate(&keys, v.rand, &v.autn).unwrap_err(),
        UsimError::MacFailure
    );
    let other = SubscriberKeys::new([9; 16], arr(SETS[0].opc));
    let v = generate_vector(&other, rand(1), Sqn::default().next(), Amf::DEFAULT);
    assert_eq!(
        usim.authenticate(&keys, v.rand, &v.autn).unwrap_err(),
        UsimError::MacFailure
    );
}

#[test]
fn usim_array_accepts_out_of_order_delivery_across_ind_slots() {
    // Vectors for different IND slots may arrive out of order (Annex C.1); each slot only
    // needs its own SEQ to grow.
    let keys = test_keys();
    let mut usim = UsimState::default();
    let s1 = Sqn::default().next();
    let s2 = s1.next();
    let s3 = s2.next();
    for sqn in [s3, s1, s2] {
        let v = generate_vector(&keys, rand(sqn.ind()), sqn, Amf::DEFAULT);
        usim.authenticate(&keys, v.rand, &v.autn)
            .unwrap_or_else(|e| panic!("{sqn}: {e}"));
    }
    // The same slot with an older SEQ is refused.
    let stale = Sqn::from_parts(s3.seq() - 1, s3.ind()).unwrap();
    let v = generate_vector(&keys, rand(7), stale, Amf::DEFAULT);
    assert!(matches!(
        usim.authenticate(&keys, v.rand, &v.autn),
        Err(UsimError::SyncFailure(_))
    ));
}

#[test]
fn usim_refuses_a_seq_beyond_delta_and_resync_recovers() {
    let keys = test_keys();
    let start = Sqn::from_parts(1000, 3).unwrap();
    let mut usim = UsimState::at(start);
    let too_far = Sqn::from_parts(1000 + DELTA + 1, 4).unwrap();
    let v = generate_vector(&keys, rand(2), too_far, Amf::DEFAULT);
    let Err(UsimError::SyncFailure(auts)) = usim.authenticate(&keys, v.rand, &v.autn) else {
        panic!("a SEQ more than Δ ahead must be refused");
    };
    assert_eq!(resync_sqn_ms(&keys, v.rand, &auts).unwrap(), start);
    // Exactly Δ ahead is still accepted.
    let at_delta = Sqn::from_parts(1000 + DELTA, 4).unwrap();
    let v = generate_vector(&keys, rand(3), at_delta, Amf::DEFAULT);
    assert!(usim.authenticate(&keys, v.rand, &v.autn).is_ok());
}

#[test]
fn forged_auts_is_refused() {
    let keys = test_keys();
    let mut usim = UsimState::at(Sqn::from_parts(50, 1).unwrap());
    let v = generate_vector(
        &keys,
        rand(4),
        Sqn::from_parts(10, 1).unwrap(),
        Amf::DEFAULT,
    );
    let Err(UsimError::SyncFailure(auts)) = usim.authenticate(&keys, v.rand, &v.autn) else {
        panic!("stale SQN must give AUTS");
    };
    let mut forged = auts;
    forged.0[0] ^= 0x80; // claims another SQN_MS
    assert_eq!(
        resync_sqn_ms(&keys, v.rand, &forged),
        Err(ResyncError::MacS)
    );
    // A genuine AUTS for another RAND does not verify either.
    assert_eq!(resync_sqn_ms(&keys, rand(5), &auts), Err(ResyncError::MacS));
}

#[test]
fn keys_and_vectors_never_print_secrets() {
    let keys = test_keys();
    let v = generate_vector(&keys, rand(1), Sqn::default().next(), Amf::DEFAULT);
    let text = format!("{keys:?} {v:?}");
    assert!(!text.contains(SETS[0].k) && !text.contains(SETS[0].opc));
    assert!(!text.contains(&hex::encode(v.ck.expose())));
    assert!(!text.contains(&format!("{:?}", v.ck.expose())));
}
