//! wfm
