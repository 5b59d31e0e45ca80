//! Typed tools: a table from tool name to a handler that decodes the input, runs the plugin's
//! function and encodes the output, plus the JSON Schemas derived from the Rust types.

use crate::export::bindings::wfm::plugin::types as wit;
use crate::{Context, ToolError};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Static description of a tool; the schemas come from the handler's types.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    name: String,
    title: Option<String>,
    description: String,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
}

impl ToolSpec {
    /// A tool named `name` (1-64 chars of `[a-z0-9_]`, starting with a letter) with a
    /// description. By default it is neither read-only, destructive nor idempotent.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            title: None,
            description: description.into(),
            read_only: false,
            destructive: false,
            idempotent: false,
        }
    }
    /// Sets a short human title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    /// Marks the tool read-only (no records, files or refresh hints); implies idempotent.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self.idempotent = true;
        self
    }
    /// Marks the tool destructive (it may delete or overwrite data).
    pub fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }
    /// Marks the tool idempotent.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

type Handler = Box<dyn Fn(&Context, &str) -> Result<String, ToolError>>;

/// Schemas are produced on demand: a tool call only needs the handler, and generating
/// schemas on every call would dominate the cost of small tools.
struct Entry {
    spec: ToolSpec,
    input_schema: fn() -> Value,
    output_schema: fn() -> Value,
    handler: Handler,
}

/// The tools of a plugin, built with [`Tools::new`] and [`Tools::tool`].
#[derive(Default)]
pub struct Tools {
    entries: Vec<Entry>,
}

/// The JSON Schema (draft 2020-12) of `T`, as the host and clients see it.
pub fn schema_for<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    schema.to_value()
}

impl Tools {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool whose input `I` and output `O` are serde types deriving `JsonSchema`.
    pub fn tool<I, O, F>(mut self, spec: ToolSpec, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema,
        O: Serialize + JsonSchema,
        F: Fn(&Context, I) -> Result<O, ToolError> + 'static,
    {
        let name = spec.name.clone();
        let handler: Handler = Box::new(move |ctx, input| {
            let input: I = serde_json::from_str(input).map_err(|e| {
                ToolError::invalid_input("PLUGIN_INVALID_INPUT", format!("invalid input for {name}: {e}"))
            })?;
            let output = handler(ctx, input)?;
            serde_json::to_string(&output)
                .map_err(|e| ToolError::failed("PLUGIN_INVALID_OUTPUT", format!("cannot encode output: {e}")))
        });
        self.entries.push(Entry {
            spec,
            input_schema: schema_for::<I>,
            output_schema: schema_for::<O>,
            handler,
        });
        self
    }

    /// Names of the tools, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.spec.name.as_str())
    }

    /// The input schema of a tool.
    pub fn input_schema(&self, name: &str) -> Option<Value> {
        self.entries.iter().find(|e| e.spec.name == name).map(|e| (e.input_schema)())
    }

    /// The output schema of a tool.
    pub fn output_schema(&self, name: &str) -> Option<Value> {
        self.entries.iter().find(|e| e.spec.name == name).map(|e| (e.output_schema)())
    }

    /// Runs a tool with JSON input, as the host would. Useful in native unit tests of pure
    /// tools (host calls are only available inside the host).
    pub fn call(&self, ctx: &Context, name: &str, input: &str) -> Result<String, ToolError> {
        match self.entries.iter().find(|e| e.spec.name == name) {
            Some(entry) => (entry.handler)(ctx, input),
            None => Err(ToolError::not_found("PLUGIN_TOOL_NOT_FOUND", format!("unknown tool {name}"))),
        }
    }

    pub(crate) fn wit_tools(&self) -> Vec<wit::Tool> {
        self.entries
            .iter()
            .map(|e| wit::Tool {
                name: e.spec.name.clone(),
                title: e.spec.title.clone(),
                description: e.spec.description.clone(),
                input_schema: (e.input_schema)().to_string(),
                output_schema: Some((e.output_schema)().to_string()),
                read_only: e.spec.read_only,
                destructive: e.spec.destructive,
                idempotent: e.spec.idempotent,
            })
            .collect()
    }
}
