//! The service layer: every business rule lives here. Routes, MCP tools and MQTT handlers call
//! these functions and only shape input and output. A write owns one transaction; external
//! side effects (broker sync, MQTT, SSE) follow the commit.

pub mod auth;
pub mod awg;
pub mod binding;
pub mod configs;
pub mod downloads;
pub mod endpoint;
pub mod keys;
pub mod mesh;
pub mod mqtt_settings;
pub mod nodes;
pub mod projections;
pub mod refresh;
pub mod render;
pub mod settings;
pub mod sync;
pub mod system;
pub mod tags;
pub mod tools;
