//! The software handset (DESIGN.md §1, UE): the USIM side of `aka` with its SEQ_MS state kept
//! in a file as a real USIM keeps it, and a GBA client for Ub (TS 24.109 §4). Operators use it
//! to check a deployment (`akaid ue bootstrap`), the tests use it as the handset,
//! `akaid ue bench` uses it as a load generator, and `akaid ue proxy` lends its GBA module to
//! a desktop browser.

pub mod bench;
pub mod browser;
pub mod oidc_bench;
pub mod proxy;
pub mod raw_http;
pub mod state;
pub mod ua;
pub mod ub;

/// The User-Agent of the software handset: `3gpp-gba` says it can do GBA (TS 24.109 §5.2.1).
pub const USER_AGENT: &str = concat!("akaid-ue/", env!("CARGO_PKG_VERSION"), " 3gpp-gba");
