//! Vectors per second: akaid's vector function next to bare `milenage` calls on the same
//! inputs (DESIGN.md §2.1: within 10 %), then what unsealing and the database add, measured
//! separately.
//!
//! `cargo bench --bench aka`; criterion prints each as elements (vectors) per second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use akaid::aka::{Amf, Rand, Sqn, SubscriberKeys, generate_vector};
use akaid::clock::SystemClock;
use akaid::hss::{Hss, SubscriberFields};
use akaid::secret::{SealContext, Sealer, Secret};
use akaid::store::Store;

const K: [u8; 16] = [
    0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc,
];
const OPC: [u8; 16] = [
    0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf,
];
const RAND: [u8; 16] = [
    0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35,
];
const SQN: [u8; 6] = [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07];
const AMF: [u8; 2] = [0xb9, 0xb9];

fn vectors(c: &mut Criterion) {
    let mut group = c.benchmark_group("vector");
    group.throughput(Throughput::Elements(1));

    // What any HSS built on the crate must do per vector: f2345 (XRES, CK, IK, AK) and f1
    // (MAC-A) from K and OPc.
    group.bench_function("bare_milenage_crate", |b| {
        b.iter(|| {
            let mut m = milenage::Milenage::new_with_opc(black_box(K), black_box(OPC));
            let (res, ck, ik, ak) = m.f2345(black_box(&RAND));
            let mac_a = m.f1(&RAND, black_box(&SQN), black_box(&AMF));
            black_box((res, ck, ik, ak, mac_a))
        });
    });

    let keys = SubscriberKeys::new(K, OPC);
    let sqn = Sqn::from_bytes(SQN);
    group.bench_function("akaid_generate_vector", |b| {
        b.iter(|| {
            black_box(generate_vector(
                black_box(&keys),
                Rand(black_box(RAND)),
                black_box(sqn),
                Amf(AMF),
            ))
        });
    });

    // Unsealing K and OPc (two AES-256-GCM opens), then the vector.
    let sealer = Sealer::new(&Secret::new([7; 32]));
    let k_ctx = SealContext::new("subscribers", "k", "bench@x");
    let opc_ctx = SealContext::new("subscribers", "opc", "bench@x");
    let k_sealed = sealer.seal(k_ctx, &K);
    let opc_sealed = sealer.seal(opc_ctx, &OPC);
    group.bench_function("akaid_unseal_then_vector", |b| {
        b.iter(|| {
            let keys = SubscriberKeys {
                k: sealer
                    .open_array::<16>(k_ctx, black_box(&k_sealed))
                    .unwrap(),
                opc: sealer
                    .open_array::<16>(opc_ctx, black_box(&opc_sealed))
                    .unwrap(),
            };
            black_box(generate_vector(&keys, Rand(RAND), sqn, Amf(AMF)))
        });
    });
    group.finish();
}

/// The whole HSS path on SQLite: the atomic SQN step, unsealing, the vector.
fn hss_on_sqlite(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = rt.block_on(Store::open(&url)).unwrap();
    let hss = Hss::new(
        store.subscribers.clone(),
        Arc::new(Sealer::new(&Secret::new([7; 32]))),
        Arc::new(SystemClock),
    );
    let sub = SubscriberFields {
        impi: "bench@x",
        k: "465b5ce8b199b49faa5f0a2ee238a6bc",
        opc: Some("cd63cb71954a9f4e48a5994e37a02baf"),
        ..SubscriberFields::default()
    }
    .parse()
    .unwrap();
    rt.block_on(hss.add(&sub)).unwrap();
    let mut group = c.benchmark_group("hss");
    group.throughput(Throughput::Elements(1));
    group.bench_function("vector_on_sqlite", |b| {
        b.iter(|| rt.block_on(hss.vector(&sub.impi, Rand(RAND))).unwrap());
    });
    group.finish();
}

criterion_group!(benches, vectors, hss_on_sqlite);
criterion_main!(benches);
