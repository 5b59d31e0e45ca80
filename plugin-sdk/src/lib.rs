//! WFM plugin SDK: the crate plugin authors depend on.
//!
//! (Being built under the plugin platform issue.)
#![deny(missing_docs)]

pub use wfm_domain as domain;
