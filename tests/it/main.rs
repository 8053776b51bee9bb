//! Integration tests: one binary (STYLE.md rule 8), one module per area.
//!
//! PostgreSQL tests run when `AKAID_TEST_POSTGRES_URL` is set (each in its own schema); with
//! `AKAID_REQUIRE_POSTGRES=1` (as `.ci/run` sets it) a missing database fails them instead.
//! Tests against `osmo-auc-gen` likewise need `AKAID_REQUIRE_REFERENCE_TOOLS=1` to fail when
//! the tool is absent, and the real-browser test (`browser`, Debian `chromium` and
//! `chromium-driver`) needs `AKAID_REQUIRE_BROWSER=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cli;
mod demo;
mod gba;
mod hss;
mod keys;
mod oidc;
mod openid2;
mod osmo;
mod pages;
mod store;
mod support;
mod ue_proxy;
