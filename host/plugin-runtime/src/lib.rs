//! Plugin runtime (in progress).
