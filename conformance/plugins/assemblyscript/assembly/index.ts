// The AssemblyScript conformance plugin (conformance/README.md): transform, echo, fail and log,
// written against the public surface of the Cortex AssemblyScript SDK only.

import { handle, handleRaw, fail, Log, JSONValue, JSONObject } from "cortex-sdk";

// ---------------------------------------------------------------------------------------------
// transform: {"text": string, "mode": string} -> {"result": string, "length": N, "hash": N}

export function transform(ptr: usize, len: usize): usize {
  return handle(ptr, len, (input: JSONValue): JSONValue | null => {
    const text = input.requireString("text");
    if (text === null) return null; // the SDK reported the error
    const mode = input.requireString("mode");
    if (mode === null) return null;

    const result = applyMode(mode, text);
    // `length` and `hash` are over the UTF-8 bytes, not AssemblyScript's UTF-16 code units.
    const bytes = Uint8Array.wrap(String.UTF8.encode(result, false, String.UTF8.ErrorMode.REPLACE));
    return new JSONObject()
      .set("result", result)
      .set("length", <u64>bytes.length)
      .set("hash", simpleHash(bytes));
  });
}

function applyMode(mode: string, text: string): string {
  if (mode == "reverse") return reverseCodePoints(text);
  if (mode == "uppercase") return mapUnits(text, asciiUpper);
  if (mode == "lowercase") return mapUnits(text, asciiLower);
  if (mode == "rot13") return mapUnits(text, rot13);
  return text;
}

// The loops below index inside known bounds, so they use `unchecked(...)` to skip the bounds
// checks (a 1 MB text is a million iterations under the host's fuel budget).

/** Reverses by Unicode code point: a surrogate pair (one code point above U+FFFF) stays in order. */
function reverseCodePoints(text: string): string {
  const n = text.length;
  const out = new Uint16Array(n);
  let w = 0;
  let i = n - 1;
  while (i >= 0) {
    const c = <u16>text.charCodeAt(i);
    if (c >= 0xDC00 && c <= 0xDFFF && i > 0) {
      const hi = <u16>text.charCodeAt(i - 1);
      if (hi >= 0xD800 && hi <= 0xDBFF) {
        unchecked(out[w++] = hi);
        unchecked(out[w++] = c);
        i -= 2;
        continue;
      }
    }
    unchecked(out[w++] = c);
    i--;
  }
  return String.UTF16.decode(out.buffer);
}

/** Applies `f` to every UTF-16 code unit (the ASCII mappings below leave non-ASCII units alone). */
function mapUnits(text: string, f: (c: u16) => u16): string {
  const n = text.length;
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) unchecked(out[i] = f(<u16>text.charCodeAt(i)));
  return String.UTF16.decode(out.buffer);
}

// String#toUpperCase/toLowerCase map all of Unicode; the contract wants ASCII letters only.
function asciiUpper(c: u16): u16 { return c >= 0x61 && c <= 0x7A ? c - 32 : c; }
function asciiLower(c: u16): u16 { return c >= 0x41 && c <= 0x5A ? c + 32 : c; }
function rot13(c: u16): u16 {
  if (c >= 0x61 && c <= 0x7A) return 0x61 + (c - 0x61 + 13) % 26;
  if (c >= 0x41 && c <= 0x5A) return 0x41 + (c - 0x41 + 13) % 26;
  return c;
}

/** The product document's simple_hash: h = h * 31 + byte over UTF-8 bytes, wrapping u64. */
function simpleHash(bytes: Uint8Array): u64 {
  let h: u64 = 0;
  for (let i = 0, n = bytes.length; i < n; i++) h = h * 31 + <u64>unchecked(bytes[i]);
  return h;
}

// ---------------------------------------------------------------------------------------------
// echo: any JSON value, returned byte for byte (the SDK's raw path: nothing is parsed)

export function echo(ptr: usize, len: usize): usize {
  return handleRaw(ptr, len, (input: Uint8Array): Uint8Array | null => input);
}

// ---------------------------------------------------------------------------------------------
// fail: {"message": string} -> PluginError(message)
// (exported under the name `fail`; the SDK's own `fail` is the function that reports the error)

function failCapability(ptr: usize, len: usize): usize {
  return handle(ptr, len, (input: JSONValue): JSONValue | null => {
    const message = input.requireString("message");
    if (message === null) return null;
    return fail(message);
  });
}
export { failCapability as fail };

// ---------------------------------------------------------------------------------------------
// log: {"message": string} -> logs it at level info, returns {"logged": true}

export function log(ptr: usize, len: usize): usize {
  return handle(ptr, len, (input: JSONValue): JSONValue | null => {
    const message = input.requireString("message");
    if (message === null) return null;
    Log.info(message);
    return new JSONObject().set("logged", true);
  });
}
