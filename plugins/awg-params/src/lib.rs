//! AWG params plugin (in progress).
