//! akaid: an identity provider that logs handsets in with their SIM (3GPP GBA over AKA) and
//! answers relying parties with OpenID 2.0 and OpenID Connect assertions.
//!
//! The map (DESIGN.md §1, STYLE.md):

/// Pure AKA with Milenage: vectors, SQN, re-synchronisation, the USIM side.
pub mod aka;
/// The operator's command line: commands, their arguments and what they print.
pub mod cli;
/// Time as a parameter: the system clock and a fixed clock for tests.
pub mod clock;
/// Configuration layers: defaults, `akaid.toml`, `AKAID_*`, flags.
pub mod config;
/// Opening a deployment: database, master key and key check, services.
pub mod context;
/// `akaid demo`: the OP and BSF, a demo subscriber and the demo relying-party site.
pub mod demo;
/// GBA (TS 33.220): pure Digest AKA, Ks_NAF, B-TID and Ub body; the BSF's Ub and Zn handlers.
pub mod gba;
/// The HSS role: provisioning, vectors with the atomic SQN step, resync, CSV import.
pub mod hss;
/// Identifier types: IMPI, MSISDN, OpenID Connect client_id.
pub mod ids;
/// OpenID Connect provider: JOSE (JWS, JWK, at_hash), the signing-key ring with rotation,
/// clients, discovery and JWKS, grants (codes, refresh tokens, PKCE, scopes), token claims.
pub mod oidc;
/// OpenID 2.0 provider, pure: kv-form, messages, realms, associations, signing, extensions.
pub mod openid2;
/// Subscriber profile fields (SReg 1.1 §4): names, formats, AX types, consent wording.
pub mod profile;
/// Secrets in memory (redacted, zeroized) and sealed at rest (AES-256-GCM).
pub mod secret;
/// Persistence: one trait per aggregate, SQLite and PostgreSQL implementations.
pub mod store;
/// The software handset: USIM state file, Ub client, load generator.
pub mod ue;
/// Shared HTTP: state, routers, health.
pub mod web;

pub use web::{AppState, bsf_router, op_router};

/// The OP listener's router, for tests that drive it in process.
pub fn app(state: AppState) -> axum::Router {
    op_router(state)
}
