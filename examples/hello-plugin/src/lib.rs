//! # hello — an example WFM plugin
//!
//! A small, complete plugin for plugin authors to copy. It offers two tools:
//!
//! - `greet` (read-only): returns a greeting; pure, so it is unit-tested natively below.
//! - `count_greeting`: keeps a per-name counter in the plugin's own records (capabilities
//!   `records-read` and `records-write`) and logs (capability `log`).
//!
//! Build: `scripts/build-plugins.sh` (or `cargo build --release --target wasm32-wasip2 -p
//! wfm-example-hello-plugin`); the host loads `wfm_example_hello_plugin.wasm`.
//! Test: `cargo test -p wfm-example-hello-plugin`.

use serde::{Deserialize, Serialize};
use wfm_plugin_sdk::schemars::{self, JsonSchema};
use wfm_plugin_sdk::{Capability, Context, Plugin, ToolError, ToolSpec, Tools};

/// The plugin.
pub struct Hello;

impl Plugin for Hello {
    const ID: &'static str = "hello";
    const VERSION: &'static str = "0.1.0";
    const NAME: &'static str = "Hello";
    const DESCRIPTION: &'static str = "Example plugin: greets and counts greetings.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Log, Capability::RecordsRead, Capability::RecordsWrite];

    fn tools() -> Tools {
        Tools::new()
            .tool(ToolSpec::new("greet", "Returns a greeting for a name.").title("Greet").read_only(), greet)
            .tool(
                ToolSpec::new("count_greeting", "Greets and counts how often a name was greeted.")
                    .title("Count greeting"),
                count_greeting,
            )
    }
}

/// Input of `greet`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetInput {
    /// Who to greet (1-64 characters).
    #[schemars(length(min = 1, max = 64))]
    pub name: String,
    /// Greet loudly.
    #[serde(default)]
    pub shout: bool,
}

/// Output of `greet`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GreetOutput {
    /// The greeting.
    pub greeting: String,
}

/// Output of `count_greeting`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CountOutput {
    /// The greeting.
    pub greeting: String,
    /// How often this name has been greeted, this time included.
    pub count: u64,
}

#[derive(Serialize, Deserialize)]
struct Counter {
    count: u64,
}

fn greeting(input: &GreetInput) -> Result<String, ToolError> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ToolError::invalid_input("HELLO_NAME_REQUIRED", "name must not be blank"));
    }
    let text = format!("Hello, {name}!");
    Ok(if input.shout { text.to_uppercase() } else { text })
}

fn greet(_ctx: &Context, input: GreetInput) -> Result<GreetOutput, ToolError> {
    Ok(GreetOutput { greeting: greeting(&input)? })
}

fn count_greeting(ctx: &Context, input: GreetInput) -> Result<CountOutput, ToolError> {
    let greeting = greeting(&input)?;
    let key = input.name.trim().to_lowercase();
    let previous = ctx.record::<Counter>("greetings", &key)?.map(|r| r.value.count).unwrap_or(0);
    let count = previous + 1;
    ctx.put_record("greetings", &key, None, &Counter { count })?;
    ctx.info(&format!("greeted {key} {count} time(s)"));
    Ok(CountOutput { greeting, count })
}

wfm_plugin_sdk::register_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greet_through_the_tool_table() {
        let out = Hello::tools().call(&Context::for_test(), "greet", r#"{"name":" Ada ","shout":true}"#);
        assert_eq!(out.as_deref(), Ok(r#"{"greeting":"HELLO, ADA!"}"#));
    }

    #[test]
    fn blank_name_is_a_typed_error() {
        let err = Hello::tools().call(&Context::for_test(), "greet", r#"{"name":"  "}"#).unwrap_err();
        assert_eq!(err.code, "HELLO_NAME_REQUIRED");
    }

    #[test]
    fn unknown_field_and_unknown_tool_are_rejected() {
        let tools = Hello::tools();
        let err = tools.call(&Context::for_test(), "greet", r#"{"name":"x","extra":1}"#).unwrap_err();
        assert_eq!(err.code, "PLUGIN_INVALID_INPUT");
        let err = tools.call(&Context::for_test(), "nope", "{}").unwrap_err();
        assert_eq!(err.code, "PLUGIN_TOOL_NOT_FOUND");
    }

    #[test]
    fn schema_carries_constraints() {
        let tools = Hello::tools();
        let schema = tools.input_schema("greet").expect("schema");
        assert_eq!(schema["properties"]["name"]["minLength"], 1);
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["$schema"].as_str().unwrap_or("").contains("2020-12"));
    }
}
