// The Cortex host interface (ABI v1, docs/abi.md): the two `cortex` imports, the allocator the
// host calls to pass the input, and the result buffer (4-byte little-endian length + UTF-8 JSON).
//
// Every call runs in a fresh instance, so nothing here is ever freed: memory handed to the host
// (the input buffer, the result) is allocated with `heap.alloc`, which is unmanaged memory that no
// garbage collector moves or reclaims, whatever `--runtime` the plugin is built with.

// @ts-ignore: decorator
@external("cortex", "error")
declare function cortex_error(ptr: usize, len: usize): void;

// @ts-ignore: decorator
@external("cortex", "log")
declare function cortex_log(level: i32, ptr: usize, len: usize): void;

/** Log levels of `cortex.log`. */
export enum LogLevel {
  Debug = 0,
  Info = 1,
  Warning = 2,
  Error = 3,
}

let reported = false;

/** Whether `reportError` (or `fail`) has been called during this call. */
export function errorReported(): bool {
  return reported;
}

/** UTF-8 bytes of `s`; unpaired surrogates become U+FFFD, so the bytes are always valid UTF-8. */
export function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
}

/**
 * Reports that this call failed: the caller gets `PluginError(message)` whatever the capability
 * returns afterwards. Only the first report of a call counts (the host keeps the first), and the
 * host truncates messages to 4 KiB. The usual pattern is `reportError(msg); return 0;`, or inside
 * `handle`, `return fail(msg);`.
 */
export function reportError(message: string): void {
  const bytes = utf8(message);
  reported = true;
  cortex_error(changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** Writes one log line through `cortex.log` (it becomes a `plugin.log` event on the host). */
export function logAt(level: LogLevel, message: string): void {
  const bytes = utf8(message);
  cortex_log(<i32>level, changetype<usize>(bytes), <usize>bytes.byteLength);
}

/**
 * Logging through the host. Each line is truncated to 4 KiB by the host, and a call may log at
 * most `limits.maxLogBytes` (default 64 KiB) in all; further lines are dropped.
 */
export namespace Log {
  export function debug(message: string): void { logAt(LogLevel.Debug, message); }
  export function info(message: string): void { logAt(LogLevel.Info, message); }
  export function warn(message: string): void { logAt(LogLevel.Warning, message); }
  export function error(message: string): void { logAt(LogLevel.Error, message); }
}

/**
 * The allocator the host calls (manifest `"allocator": "custom"`) to get `size` bytes for the
 * input. Exported as `cortex_alloc` by the SDK's `exports.ts` entry file (added by `asconfig.json`).
 */
export function alloc(size: usize): usize {
  return heap.alloc(size > 0 ? size : 1);
}

/**
 * Allocates a result buffer for `len` bytes of JSON and writes its length header. Returns the
 * result pointer `R`; write the JSON at `R + 4`.
 */
export function allocResult(len: usize): usize {
  const r = heap.alloc(len + 4);
  store<u32>(r, <u32>len); // wasm memory is little-endian, as the ABI requires
  return r;
}

/** Copies `len` bytes of JSON at `ptr` into a new result buffer and returns the result pointer. */
export function resultFromMemory(ptr: usize, len: usize): usize {
  const r = allocResult(len);
  memory.copy(r + 4, ptr, len);
  return r;
}
