//! WireGuard / AmneziaWG domain types and validators.
//!
//! This crate is shared by the WFM host and by plugins (through `wfm-plugin-sdk`), so that
//! both agree on one definition of every AmneziaWG parameter and rule. It has no I/O and
//! builds for `wasm32-wasip2` as well as the host target.
//!
//! Layout:
//! - [`error`]: [`error::DomainError`], whose `code` is the API error code (spec 01 §11);
//! - [`awg`]: protocols, versions, shared/node parameters, option gating, validation (spec 02
//!   §3.2, §5.1–5.5); [`awg::cps`] the CPS grammar; [`awg::random`] the random generators,
//!   backfill and version conversion (§5.6, §5.8);
//! - [`names`]: config/node names, tags, hook lists;
//! - [`keys`]: X25519 keys and preshared keys (§4.4);
//! - [`ip`]: virtual IPs, suggest-ip and validate-ip (§4.5, §4.6);
//! - mesh: [`allowed_ips`] (§6.1), [`endpoint`] resolution (§6.3), [`peer_link`] pair requests
//!   and drafts (§6.1–6.4), [`topology`] validation (§6.6), [`quick_mesh`] planning (§7),
//!   [`render`] of WireGuard/AWG files (§8).

// Tests state their expectations with unwrap; the no-unwrap rule is for shipped code.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod allowed_ips;
pub mod awg;
pub mod endpoint;
pub mod error;
pub mod ip;
pub mod keys;
pub mod names;
pub mod peer_link;
pub mod quick_mesh;
pub mod render;
pub mod topology;

pub use error::{DomainError, DomainResult};
