// Cortex plugin SDK for AssemblyScript (plugin ABI v1, docs/abi.md).
//
//     import { handle, fail, Log, JSONValue, JSONObject } from "cortex-sdk";
//
//     export function greet(ptr: usize, len: usize): usize {
//       return handle(ptr, len, (input: JSONValue): JSONValue | null => {
//         const name = input.getString("name");
//         if (name === null) return fail("missing required field \"name\" (a string)");
//         Log.info("greeting " + name);
//         return new JSONObject().set("greeting", "hello, " + name);
//       });
//     }
//
// Build with the SDK's asconfig.json (it adds the `cortex_alloc` export, `_initialize`, the
// stub runtime and the abort/trace/seed replacements):
//
//     asc assembly/index.ts --config "$CORTEX_SDK_DIR/assemblyscript/asconfig.json" -o plugin.wasm
//
// and declare `"wasm": {"allocator": "custom"}` in plugin.json. See docs/guides/assemblyscript.md.

export { handle, handleRaw, fail, readInput, inputBytes, respond, respondBytes, respondJSON } from "./capability";
export { Handler, RawHandler } from "./capability";
export { Log, LogLevel, logAt, reportError, errorReported, utf8 } from "./host";
export {
  JSONKind, JSONValue, JSONNull, JSONBool, JSONNumber, JSONString, JSONArray, JSONObject,
  JSONWriter, parseJSON, parseJSONBytes, lastJSONError, MAX_DEPTH,
} from "./json";
