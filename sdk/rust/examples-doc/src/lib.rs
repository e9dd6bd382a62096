// The product document's Rust example ("Implementing Capabilities"), verbatim except:
//   1. the document's typo `to_lowercycle` is fixed to `to_lowercase`;
//   2. the document uses `rot13_char` without defining it; its definition is appended below.
// It builds unchanged against cortexprism-wasm-sdk (see build.sh). Note that it maps case with
// Rust's full Unicode rules (`to_uppercase`: "ß" -> "SS"); the conformance plugin uses
// ASCII-only mapping instead, as the conformance contract requires.

use cortexprism_wasm_sdk::{register_capability, CapabilityContext};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct TransformInput {
    text: String,
    mode: String,
}

#[derive(Serialize)]
struct TransformOutput {
    result: String,
    length: usize,
    hash: u64,
}

fn transform_text(input: TransformInput, _ctx: CapabilityContext) -> TransformOutput {
    let result = match input.mode.as_str() {
        "reverse" => input.text.chars().rev().collect(),
        "uppercase" => input.text.to_uppercase(),
        "lowercase" => input.text.to_lowercase(),
        "rot13" => input.text.chars().map(rot13_char).collect(),
        _ => input.text,
    };

    TransformOutput {
        length: result.len(),
        hash: simple_hash(&result),
        result,
    }
}

register_capability!("transform", transform_text);

fn simple_hash(s: &str) -> u64 {
    s.bytes().fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u64))
}

// --- not in the document: the helper its `rot13` arm needs -------------------------------------

fn rot13_char(c: char) -> char {
    match c {
        'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
        'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
        _ => c,
    }
}
