//! WireGuard / AmneziaWG domain types and validators.
//!
//! This crate is shared by the WFM host and by plugins (through `wfm-plugin-sdk`), so that
//! both agree on one definition of every AmneziaWG parameter and rule. It has no I/O and
//! builds for `wasm32-wasip2` as well as the host target.
