//! The Cortex plugin `{{name}}`: one capability, `greet`.
//!
//!   input : {"name": string}
//!   output: {"greeting": "hello, <name>"}
//!
//! Add capabilities the same way: a function `fn(Input, CapabilityContext) -> Output` (or
//! `-> Result<Output, E>`) plus one `register_capability!` line. The SDK exports the allocator,
//! decodes the input JSON with serde, encodes the output and reports errors to the host.

use cortexprism_wasm_sdk::{register_capability, CapabilityContext};
use serde::{Deserialize, Serialize};

/// Unknown keys in the input are ignored. A field of the wrong type (`{"name": 5}`) fails the
/// call with serde's message, reported by the SDK.
#[derive(Deserialize)]
struct GreetInput {
    /// Optional so that a missing name gets the message below instead of serde's.
    name: Option<String>,
}

#[derive(Serialize)]
struct GreetOutput {
    greeting: String,
}

/// `Err(message)` fails the call: the caller gets `PluginError(message)`.
fn greet(input: GreetInput, ctx: CapabilityContext) -> Result<GreetOutput, String> {
    let name = input
        .name
        .ok_or(r#"missing "name": call greet with {"name": "..."}"#)?;
    ctx.debug(format!("greeting {}", name));
    Ok(GreetOutput {
        greeting: format!("hello, {}", name),
    })
}

register_capability!("greet", greet);

// Unit tests run natively (`cargo test`, after ./build.sh has written .cargo/config.toml): the
// handler is a plain function, and off wasm the SDK's host imports are stubs.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        let input = GreetInput { name: Some("Ada".to_string()) };
        let output = greet(input, CapabilityContext::new("greet")).unwrap();
        assert_eq!(output.greeting, "hello, Ada");
    }

    #[test]
    fn a_missing_name_is_an_error() {
        let error = greet(GreetInput { name: None }, CapabilityContext::new("greet")).err();
        assert!(error.unwrap().starts_with("missing \"name\""));
    }
}
