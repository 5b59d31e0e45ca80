//! The service layer: every business rule lives here. Routes, MCP tools and MQTT handlers call
//! these functions and only shape input and output. A write owns one transaction; external
//! side effects (broker sync, MQTT, SSE) follow the commit.

pub mod auth;
pub mod binding;
pub mod endpoint;
pub mod mqtt_settings;
pub mod settings;
pub mod system;
