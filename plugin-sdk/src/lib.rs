//! # wfm-plugin-sdk
//!
//! The crate a WFM plugin depends on. A plugin is a Rust `cdylib` compiled for
//! `wasm32-wasip2`; the result is a WebAssembly component that the WFM host loads from its
//! plugin directory, sandboxes (no filesystem, network or environment) and calls once per
//! tool invocation in a fresh instance.
//!
//! The surface is small:
//!
//! - [`Plugin`]: one trait; its constants say who the plugin is and which
//!   [`Capability`]s it needs, [`Plugin::tools`] lists its tools.
//! - [`register_plugin!`]: one macro that exports the plugin to the host.
//! - [`Tools`] / [`ToolSpec`]: typed tools. Input and output are ordinary serde structs that
//!   derive [`schemars::JsonSchema`]; their JSON Schemas (draft 2020-12) are what the host
//!   validates against and what REST and MCP clients see.
//! - [`Context`]: the call context and the typed host calls (mesh reads, plugin records,
//!   files, refresh hints, logging). Each host call needs a declared capability.
//! - [`ToolError`]: typed failures with stable codes.
//! - [`domain`]: the WireGuard / AmneziaWG types and validators the host uses too
//!   (`wfm-domain`), so a plugin and the host agree on one definition of every rule.
//!
//! ```ignore
//! use wfm_plugin_sdk::{Capability, Context, Plugin, ToolError, ToolSpec, Tools};
//! use wfm_plugin_sdk::schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct In { name: String }
//! #[derive(Serialize, JsonSchema)]
//! struct Out { greeting: String }
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     const ID: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const NAME: &'static str = "Hello";
//!     const DESCRIPTION: &'static str = "Greets.";
//!     const CAPABILITIES: &'static [Capability] = &[Capability::Log];
//!     fn tools() -> Tools {
//!         Tools::new().tool(ToolSpec::new("greet", "Greets someone").read_only(), greet)
//!     }
//! }
//! fn greet(ctx: &Context, input: In) -> Result<Out, ToolError> {
//!     ctx.info(&format!("greeting {}", input.name));
//!     Ok(Out { greeting: format!("Hello, {}!", input.name) })
//! }
//! wfm_plugin_sdk::register_plugin!(Hello);
//! ```
//!
//! Layout: `context.rs` (host calls), `tool.rs` (typed tool registry and schemas),
//! `error.rs` (tool and host errors), `mesh.rs` (typed views of mesh entities),
//! `export.rs` (glue between the generated bindings and [`Plugin`]; hidden).
//!
//! The ABI is the WIT package `wfm:plugin@0.1.0` shipped in this crate's `wit/` folder;
//! [`ABI_VERSION`] names it.
#![deny(missing_docs)]

mod context;
mod error;
#[doc(hidden)]
pub mod export;
pub mod mesh;
mod tool;

pub use context::{Context, FileOutput, FileRef, Level, Record, RefreshHint};
pub use error::{ErrorKind, HostError, ToolError};
pub use tool::{ToolSpec, Tools, schema_for};

/// WireGuard / AmneziaWG domain types and validators shared with the host (`wfm-domain`).
pub use wfm_domain as domain;
/// `schemars` 1.x, re-exported so a plugin derives `JsonSchema` against the version the SDK
/// builds schemas with.
pub use schemars;
/// `serde_json`, re-exported for plugins that handle free-form JSON.
pub use serde_json;

/// The plugin ABI version this SDK builds against (the WIT package `wfm:plugin@0.1.0`).
pub const ABI_VERSION: &str = "0.1.0";

/// A capability a plugin declares; the host refuses every host call whose capability the
/// plugin did not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Write to the host log ([`Context::log`]).
    Log,
    /// Read configs, nodes, peer links and rendered configs.
    MeshRead,
    /// Read this plugin's records.
    RecordsRead,
    /// Create, replace and delete this plugin's records.
    RecordsWrite,
    /// Hand files (zip packages, artifacts) to the host, which stores and serves them.
    FilesWrite,
    /// Ask the host to refresh realtime projections after a call.
    EventsPublish,
    /// Contribute managed hooks to nodes' rendered configs ([`Plugin::node_hooks`]).
    ConfigHooks,
}

impl Capability {
    /// The manifest name, e.g. `mesh-read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::MeshRead => "mesh-read",
            Capability::RecordsRead => "records-read",
            Capability::RecordsWrite => "records-write",
            Capability::FilesWrite => "files-write",
            Capability::EventsPublish => "events-publish",
            Capability::ConfigHooks => "config-hooks",
        }
    }
}

/// A managed hook line a plugin contributes to a node's rendered config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedHook {
    /// Lifecycle phase.
    pub phase: HookPhase,
    /// The plugin's id for what produced the hook (e.g. a rule id).
    pub source_id: String,
    /// The command, rendered as `<Phase> = <command>`.
    pub command: String,
    /// Human label.
    pub label: String,
}

/// The lifecycle phases of a WireGuard config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPhase {
    /// `PreUp`.
    PreUp,
    /// `PostUp`.
    PostUp,
    /// `PreDown`.
    PreDown,
    /// `PostDown`.
    PostDown,
}

/// A WFM plugin. Implement it on a unit struct and pass that to [`register_plugin!`].
pub trait Plugin {
    /// Stable id: 1-64 chars of `[a-z0-9-]`, starting with a letter.
    const ID: &'static str;
    /// Semantic version of the plugin.
    const VERSION: &'static str;
    /// Human name.
    const NAME: &'static str;
    /// One paragraph for the catalogue.
    const DESCRIPTION: &'static str;
    /// The capabilities the plugin needs; host calls outside them fail.
    const CAPABILITIES: &'static [Capability];

    /// The plugin's tools. Called when the host loads the plugin and again on each call, so
    /// keep it cheap (it only builds a table).
    fn tools() -> Tools;

    /// Managed hooks for one node's rendered config (needs [`Capability::ConfigHooks`]).
    /// The default contributes nothing.
    fn node_hooks(ctx: &Context, config_id: &str, node_id: &str) -> Result<Vec<ManagedHook>, ToolError> {
        let _ = (ctx, config_id, node_id);
        Ok(Vec::new())
    }
}

/// Exports a [`Plugin`] implementation as the plugin's component exports.
///
/// Use it exactly once per plugin crate, at the crate root: `register_plugin!(MyPlugin);`.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __WfmPluginExport;

        impl $crate::export::Guest for __WfmPluginExport {
            fn describe() -> $crate::export::WitManifest {
                $crate::export::manifest::<$plugin>()
            }
            fn call_tool(
                ctx: $crate::export::WitCallContext,
                name: ::std::string::String,
                input: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::export::WitToolError> {
                $crate::export::call_tool::<$plugin>(ctx, name, input)
            }
            fn node_hooks(
                ctx: $crate::export::WitCallContext,
                config_id: ::std::string::String,
                node_id: ::std::string::String,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::export::WitManagedHook>, $crate::export::WitToolError> {
                $crate::export::node_hooks::<$plugin>(ctx, config_id, node_id)
            }
        }

        // Only a wasm build exports the component symbols; a native build (unit tests of a
        // plugin crate) keeps the tool table callable without them.
        #[cfg(target_arch = "wasm32")]
        $crate::export::bindings::__export_wfm_plugin!(__WfmPluginExport with_types_in $crate::export::bindings);
    };
}
