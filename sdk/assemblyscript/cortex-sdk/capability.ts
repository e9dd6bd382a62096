// Capabilities: an exported `(ptr: usize, len: usize) => usize` function per capability (ABI v1).
// `handle` does the ABI work around a plain function that maps a JSONValue to a JSONValue:
// decoding the input, reporting malformed input, encoding the result behind its length header.

import { reportError, errorReported, resultFromMemory } from "./host";
import { JSONValue, parseJSONBytes, lastJSONError, encodeResult, rawResult } from "./json";

/** The body of a JSON capability: the decoded input in, the result out (or null after `fail`). */
export type Handler = (input: JSONValue) => JSONValue | null;

/** The body of a raw capability: the input's UTF-8 JSON bytes in, UTF-8 JSON bytes out (or null). */
export type RawHandler = (input: Uint8Array) => Uint8Array | null;

/**
 * Runs a JSON capability. Export one function per capability and delegate to `handle`:
 *
 *     export function greet(ptr: usize, len: usize): usize {
 *       return handle(ptr, len, (input: JSONValue): JSONValue | null => {
 *         const name = input.requireString("name");
 *         if (name === null) return null;            // error already reported
 *         return new JSONObject().set("greeting", "hello, " + name);
 *       });
 *     }
 *
 * The handler must not capture local variables (AssemblyScript has no closures); top-level
 * functions and globals are fine. Malformed input JSON is reported as
 * `invalid JSON input at byte N: reason` and the handler is not called. If the handler reported an
 * error (`fail`, `reportError`, `requireString`), the call fails with that message whatever it
 * returns; returning null without reporting one fails with "the capability returned no result".
 */
export function handle(ptr: usize, len: usize, handler: Handler): usize {
  const input = readInput(ptr, len);
  if (input === null) return 0;
  const result = handler(input);
  if (errorReported()) return 0;
  if (result === null) {
    reportError("the capability returned no result");
    return 0;
  }
  return respond(result);
}

/**
 * Runs a raw capability: the handler gets the input JSON bytes exactly as the caller sent them and
 * returns the result bytes, which must be valid UTF-8 JSON (they are not re-checked here; the host
 * refuses invalid output with `InvalidOutput`). Nothing is parsed, so this is the fast path for
 * passing large payloads through.
 */
export function handleRaw(ptr: usize, len: usize, handler: RawHandler): usize {
  const result = handler(inputBytes(ptr, len));
  if (errorReported()) return 0;
  if (result === null) {
    reportError("the capability returned no result");
    return 0;
  }
  return respondBytes(result);
}

/**
 * Reports `message` as this call's error and returns null, so a handler can `return fail(...)`.
 * The caller gets `PluginError(message)`.
 */
export function fail(message: string): JSONValue | null {
  reportError(message);
  return null;
}

// Lower-level pieces, for capabilities that do not use `handle`.

/** Parses the input; on malformed JSON reports the error and returns null. */
export function readInput(ptr: usize, len: usize): JSONValue | null {
  const v = parseJSONBytes(ptr, len);
  if (v === null) reportError("invalid JSON input " + lastJSONError());
  return v;
}

/** A copy of the input bytes. */
export function inputBytes(ptr: usize, len: usize): Uint8Array {
  const bytes = new Uint8Array(<i32>len);
  memory.copy(bytes.dataStart, ptr, len);
  return bytes;
}

/** Encodes `value` as the result; returns the pointer to return from the capability. */
export function respond(value: JSONValue): usize {
  return encodeResult(value);
}

/** Uses `bytes` (valid UTF-8 JSON) as the result; returns the pointer to return. */
export function respondBytes(bytes: Uint8Array): usize {
  return resultFromMemory(bytes.dataStart, <usize>bytes.byteLength);
}

/** Uses the JSON text `json` (you vouch that it is valid JSON) as the result. */
export function respondJSON(json: string): usize {
  return rawResult(json);
}
