//! The Rust conformance plugin (conformance/README.md): `transform`, `echo`, `fail` and `log`,
//! written against the public surface of `cortexprism-wasm-sdk` only. It doubles as an example.

use cortexprism_wasm_sdk::{register_capability, register_raw_capability, CapabilityContext};
use serde::{Deserialize, Serialize};

// ----------------------------------------------------------------------------------------------
// transform: {"text": string, "mode": string} -> {"result": string, "length": N, "hash": N}

/// Unknown keys (any JSON, nested) are ignored by serde's derive; a missing or non-string
/// `text`/`mode`, or an input that is not an object, fails to deserialise and the SDK reports
/// serde's message as the error.
#[derive(Deserialize)]
struct TransformInput {
    text: String,
    mode: String,
}

/// Fields serialise in declaration order: result, length, hash.
#[derive(Serialize)]
struct TransformOutput {
    result: String,
    length: usize,
    hash: u64,
}

fn transform(input: TransformInput, _ctx: CapabilityContext) -> TransformOutput {
    let result = match input.mode.as_str() {
        // by Unicode scalar value (a Rust `char`), not by byte or grapheme
        "reverse" => input.text.chars().rev().collect(),
        // ASCII letters only (Unicode case mapping differs between languages), in place
        "uppercase" => {
            let mut text = input.text;
            text.make_ascii_uppercase();
            text
        }
        "lowercase" => {
            let mut text = input.text;
            text.make_ascii_lowercase();
            text
        }
        "rot13" => input.text.chars().map(rot13_char).collect(),
        _ => input.text,
    };
    TransformOutput {
        length: result.len(),
        hash: simple_hash(&result),
        result,
    }
}

fn rot13_char(c: char) -> char {
    match c {
        'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
        'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
        _ => c,
    }
}

/// The product document's hash: h = h * 31 + byte over the UTF-8 bytes, wrapping u64.
fn simple_hash(s: &str) -> u64 {
    s.bytes()
        .fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u64))
}

register_capability!("transform", transform);

// ----------------------------------------------------------------------------------------------
// echo: any JSON value -> the same bytes (the SDK's raw-bytes path; nothing is parsed)

fn echo(input: &[u8], _ctx: CapabilityContext) -> Result<Vec<u8>, String> {
    Ok(input.to_vec())
}

register_raw_capability!("echo", echo);

// ----------------------------------------------------------------------------------------------
// fail: {"message": string} -> PluginError(message)

#[derive(Deserialize)]
struct MessageInput {
    message: String,
}

/// Never succeeds: the `Err` string becomes the call's error message, byte for byte.
fn fail(input: MessageInput, _ctx: CapabilityContext) -> Result<(), String> {
    Err(input.message)
}

register_capability!("fail", fail);

// ----------------------------------------------------------------------------------------------
// log: {"message": string} -> logs message at level info, returns {"logged": true}

#[derive(Serialize)]
struct Logged {
    logged: bool,
}

fn log(input: MessageInput, ctx: CapabilityContext) -> Logged {
    ctx.info(&input.message);
    Logged { logged: true }
}

register_capability!("log", log);
