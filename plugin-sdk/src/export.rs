//! Glue between the generated component bindings and the [`Plugin`] trait. Not part of the
//! public API: only [`register_plugin!`](crate::register_plugin) uses it.
#![allow(missing_docs)]

use crate::{Context, HookPhase, Plugin, ToolError};

/// The bindings generated from `wit/plugin.wit`.
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_wfm_plugin",
        default_bindings_module: "wfm_plugin_sdk::export::bindings",
    });
}

pub use bindings::exports::wfm::plugin::guest::Guest;
pub use bindings::wfm::plugin::types::{
    CallContext as WitCallContext, ManagedHook as WitManagedHook, Manifest as WitManifest,
    ToolError as WitToolError,
};
use bindings::wfm::plugin::types as wit;

/// Builds the manifest of `P`.
pub fn manifest<P: Plugin>() -> WitManifest {
    let tools = P::tools();
    WitManifest {
        abi_version: crate::ABI_VERSION.to_string(),
        id: P::ID.to_string(),
        version: P::VERSION.to_string(),
        name: P::NAME.to_string(),
        description: P::DESCRIPTION.to_string(),
        capabilities: P::CAPABILITIES.iter().map(|c| c.as_str().to_string()).collect(),
        tools: tools.wit_tools(),
    }
}

/// Runs one tool of `P`.
pub fn call_tool<P: Plugin>(ctx: WitCallContext, name: String, input: String) -> Result<String, WitToolError> {
    let ctx = Context::from_wit(ctx);
    P::tools().call(&ctx, &name, &input).map_err(ToolError::into_wit)
}

/// Computes `P`'s managed hooks for one node.
pub fn node_hooks<P: Plugin>(
    ctx: WitCallContext,
    config_id: String,
    node_id: String,
) -> Result<Vec<WitManagedHook>, WitToolError> {
    let ctx = Context::from_wit(ctx);
    let hooks = P::node_hooks(&ctx, &config_id, &node_id).map_err(ToolError::into_wit)?;
    Ok(hooks
        .into_iter()
        .map(|h| WitManagedHook {
            phase: match h.phase {
                HookPhase::PreUp => wit::HookPhase::PreUp,
                HookPhase::PostUp => wit::HookPhase::PostUp,
                HookPhase::PreDown => wit::HookPhase::PreDown,
                HookPhase::PostDown => wit::HookPhase::PostDown,
            },
            source_id: h.source_id,
            command: h.command,
            label: h.label,
        })
        .collect())
}
