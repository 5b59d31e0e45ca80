//! Example plugin (in progress).
