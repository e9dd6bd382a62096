// The SDK's exports, compiled as a second entry file by asconfig.json (only entry files' exports
// become module exports, so a plugin's own source does not have to repeat this):
//   cortex_alloc(size) -> ptr   the allocator the host calls for the input (manifest "custom")
// `_initialize` comes from asc's --exportStart (see asconfig.json); `memory` is exported by default.
export { alloc as cortex_alloc } from "cortex-sdk/host";

// The abort/trace/seed replacements that asconfig.json's "use" aliases point at.
import "cortex-sdk/runtime";
