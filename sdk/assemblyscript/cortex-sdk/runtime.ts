// Replacements for the three `env` imports AssemblyScript's standard library would otherwise add
// (the host refuses any import outside `cortex` and `wasi_snapshot_preview1`). The SDK's
// asconfig.json aliases them with `--use`:
//
//   abort (failed assertions, `throw`, out-of-range accesses)  -> cortexAbort: reports the message
//          through `cortex.error`, then traps. The caller gets `PluginTrap` whose message ends
//          with "(the plugin reported: abort: <message> at <file>:<line>:<column>)".
//   trace  -> cortexTrace: a debug log line through `cortex.log`.
//   seed   -> cortexSeed (seeds Math.random): WASI `random_get`, imported only if Math.random is used.

// @ts-ignore: decorator
@external("cortex", "error")
declare function cortex_error(ptr: usize, len: usize): void;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, len: usize): u16;

import { Log } from "./host";

const ABORT_CAP: usize = 1024;
const abortBuffer = memory.data(1024);
let aborting = false;

// Writes `s` as UTF-8 into the abort buffer from `at` (no allocation: abort may be called because
// memory ran out). Returns the new end; stops at the buffer's end.
function putText(s: string, at: usize): usize {
  const src = changetype<usize>(s);
  const n = <usize>s.length;
  for (let i: usize = 0; i < n && at + 4 <= ABORT_CAP; i++) {
    let c = <u32>load<u16>(src + (i << 1));
    if (c < 0x80) {
      store<u8>(abortBuffer + at++, <u8>c);
    } else if (c < 0x800) {
      store<u8>(abortBuffer + at++, <u8>(0xC0 | (c >> 6)));
      store<u8>(abortBuffer + at++, <u8>(0x80 | (c & 0x3F)));
    } else {
      if ((c & 0xFC00) == 0xD800 && i + 1 < n && (<u32>load<u16>(src + ((i + 1) << 1)) & 0xFC00) == 0xDC00) {
        const cp = 0x10000 + ((c - 0xD800) << 10) + (<u32>load<u16>(src + ((i + 1) << 1)) - 0xDC00);
        store<u8>(abortBuffer + at++, <u8>(0xF0 | (cp >> 18)));
        store<u8>(abortBuffer + at++, <u8>(0x80 | ((cp >> 12) & 0x3F)));
        store<u8>(abortBuffer + at++, <u8>(0x80 | ((cp >> 6) & 0x3F)));
        store<u8>(abortBuffer + at++, <u8>(0x80 | (cp & 0x3F)));
        i++;
        continue;
      }
      if ((c & 0xF800) == 0xD800) c = 0xFFFD;
      store<u8>(abortBuffer + at++, <u8>(0xE0 | (c >> 12)));
      store<u8>(abortBuffer + at++, <u8>(0x80 | ((c >> 6) & 0x3F)));
      store<u8>(abortBuffer + at++, <u8>(0x80 | (c & 0x3F)));
    }
  }
  return at;
}

function putNumber(v: u32, at: usize): usize {
  const digits = memory.data(10);
  let n: usize = 0;
  do {
    store<u8>(digits + n++, <u8>(0x30 + v % 10));
    v /= 10;
  } while (v != 0);
  while (n > 0 && at < ABORT_CAP) store<u8>(abortBuffer + at++, load<u8>(digits + --n));
  return at;
}

/** The SDK's `abort`: report the message through `cortex.error`, then trap. */
export function cortexAbort(
  message: string | null = null,
  fileName: string | null = null,
  lineNumber: u32 = 0,
  columnNumber: u32 = 0,
): void {
  if (!aborting) {
    aborting = true;
    let n = putText("abort: ", 0);
    n = putText(message !== null ? message : "(no message)", n);
    if (fileName !== null) {
      n = putText(" at ", n);
      n = putText(fileName, n);
      n = putText(":", n);
      n = putNumber(lineNumber, n);
      n = putText(":", n);
      n = putNumber(columnNumber, n);
    }
    cortex_error(abortBuffer, n);
  }
  unreachable();
}

/** The SDK's `trace`: a debug log line with up to five numbers. */
export function cortexTrace(
  message: string,
  n: i32 = 0,
  a0: f64 = 0,
  a1: f64 = 0,
  a2: f64 = 0,
  a3: f64 = 0,
  a4: f64 = 0,
): void {
  let line = "trace: " + message;
  if (n > 0) line += " " + a0.toString();
  if (n > 1) line += ", " + a1.toString();
  if (n > 2) line += ", " + a2.toString();
  if (n > 3) line += ", " + a3.toString();
  if (n > 4) line += ", " + a4.toString();
  Log.debug(line);
}

/** The SDK's `seed` for Math.random: 53 random bits from WASI `random_get`. */
export function cortexSeed(): f64 {
  const buf = memory.data(8);
  random_get(buf, 8);
  return <f64>(load<u64>(buf) >>> 11);
}
