// {{name}}: a Cortex plugin written in AssemblyScript.
//
// Each exported `(ptr: usize, len: usize): usize` function is a capability. The SDK ("cortex-sdk",
// in $CORTEX_SDK_DIR/assemblyscript) decodes the input JSON, encodes the result and reports errors:
// write the body as a function from the input JSONValue to the result.

import { handle, fail, JSONValue, JSONObject } from "cortex-sdk";

/** greet: {"name": string} -> {"greeting": "hello, <name>"} */
export function greet(ptr: usize, len: usize): usize {
  return handle(ptr, len, (input: JSONValue): JSONValue | null => {
    const name = input.getString("name");
    if (name === null) return fail("missing required field \"name\" (a string)");
    return new JSONObject().set("greeting", "hello, " + name);
  });
}
