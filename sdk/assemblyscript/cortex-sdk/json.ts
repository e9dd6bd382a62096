// JSON for Cortex plugins: a strict reader that decodes UTF-8 JSON bytes into a small value tree
// (`JSONValue` and its subclasses), and a writer that encodes straight to UTF-8 in unmanaged memory
// with the 4-byte length header of an ABI v1 result already in front, so a result is never copied.
//
// AssemblyScript strings are UTF-16. The reader turns every JSON string (escapes, surrogate pairs
// written as `\uD83D\uDE00`, raw UTF-8) into a UTF-16 `string`; it refuses invalid UTF-8 and
// unpaired surrogate escapes, so strings it produces never contain a lone surrogate. The writer
// encodes UTF-16 back to UTF-8, escaping `"`, `\` and control characters; a lone surrogate in a
// string you built yourself is written as U+FFFD, so the output is always valid UTF-8.

import { allocResult, reportError } from "./host";

/** The six kinds of JSON value. */
export enum JSONKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

/** Inputs nested deeper than this many arrays/objects are refused (no stack overflow). */
export const MAX_DEPTH: i32 = 1024;

/**
 * A parsed or constructed JSON value. Test the kind with `isString`, `isObject`, ... and read it
 * with `asString()`, `get(key)`, `at(index)`, ...: every accessor returns `null` (or a neutral
 * value) when the value has another kind, so lookups chain without casts.
 */
export class JSONValue {
  constructor(public readonly kind: JSONKind) {}

  get isNull(): bool { return this.kind == JSONKind.Null; }
  get isBool(): bool { return this.kind == JSONKind.Bool; }
  get isNumber(): bool { return this.kind == JSONKind.Number; }
  get isString(): bool { return this.kind == JSONKind.String; }
  get isArray(): bool { return this.kind == JSONKind.Array; }
  get isObject(): bool { return this.kind == JSONKind.Object; }

  /** "null", "a boolean", "a number", "a string", "an array" or "an object" (for messages). */
  get typeName(): string {
    switch (this.kind) {
      case JSONKind.Null: return "null";
      case JSONKind.Bool: return "a boolean";
      case JSONKind.Number: return "a number";
      case JSONKind.String: return "a string";
      case JSONKind.Array: return "an array";
      default: return "an object";
    }
  }

  /** The string, or null if this is not a string. */
  asString(): string | null {
    return this.kind == JSONKind.String ? changetype<JSONString>(this).value : null;
  }

  /** The boolean; false if this is not a boolean. */
  asBool(): bool {
    return this.kind == JSONKind.Bool ? changetype<JSONBool>(this).value : false;
  }

  /** The number as f64; NaN if this is not a number. */
  asF64(): f64 {
    return this.kind == JSONKind.Number ? changetype<JSONNumber>(this).toF64() : NaN;
  }

  /** The number as i64 (exact for integers in range, truncated otherwise); 0 if not a number. */
  asI64(): i64 {
    return this.kind == JSONKind.Number ? changetype<JSONNumber>(this).toI64() : 0;
  }

  /** The number as u64 (exact for integers in range, truncated otherwise); 0 if not a number. */
  asU64(): u64 {
    return this.kind == JSONKind.Number ? changetype<JSONNumber>(this).toU64() : 0;
  }

  /** This value as an object, or null. */
  asObject(): JSONObject | null {
    return this.kind == JSONKind.Object ? changetype<JSONObject>(this) : null;
  }

  /** This value as an array, or null. */
  asArray(): JSONArray | null {
    return this.kind == JSONKind.Array ? changetype<JSONArray>(this) : null;
  }

  /** Member `key` of an object (the last one if the key is repeated); null if absent or not an object. */
  get(key: string): JSONValue | null {
    if (this.kind != JSONKind.Object) return null;
    return changetype<JSONObject>(this).member(key);
  }

  /** Whether this is an object with member `key`. */
  has(key: string): bool {
    return this.get(key) !== null;
  }

  /** Member `key` if it is a string, else null. */
  getString(key: string): string | null {
    const v = this.get(key);
    return v === null ? null : v.asString();
  }

  /**
   * Member `key` if it is a string. Otherwise reports an error through the host (so the call fails
   * with `PluginError`) and returns null: `missing required field "key" (a string)`,
   * `field "key" must be a string, got a number`, or, if this is not an object,
   * `expected a JSON object with a string field "key", got an array`.
   *
   *     const name = input.requireString("name");
   *     if (name === null) return null; // the error is already reported
   */
  requireString(key: string): string | null {
    if (this.kind != JSONKind.Object) {
      reportError("expected a JSON object with a string field \"" + key + "\", got " + this.typeName);
      return null;
    }
    const v = this.get(key);
    if (v === null) {
      reportError("missing required field \"" + key + "\" (a string)");
      return null;
    }
    const s = v.asString();
    if (s === null) reportError("field \"" + key + "\" must be a string, got " + v.typeName);
    return s;
  }

  /** Element `index` of an array; null if out of range or not an array. */
  at(index: i32): JSONValue | null {
    if (this.kind != JSONKind.Array) return null;
    const items = changetype<JSONArray>(this).items;
    return index >= 0 && index < items.length ? items[index] : null;
  }

  /** Number of elements (array) or members (object); 0 otherwise. */
  get length(): i32 {
    if (this.kind == JSONKind.Array) return changetype<JSONArray>(this).items.length;
    if (this.kind == JSONKind.Object) return changetype<JSONObject>(this).keys.length;
    return 0;
  }

  /** The compact JSON text of this value. */
  toString(): string {
    const w = new JSONWriter();
    w.writeValue(this);
    return w.toString();
  }

  /**
   * Converts an AssemblyScript value to JSON: `bool`, any integer type (i64/u64 stay exact), `f32`/
   * `f64` (NaN and infinities become null, as in JavaScript), `string`, arrays of those, any
   * `JSONValue`, and `null`.
   */
  static from<T>(value: T): JSONValue {
    if (isBoolean<T>()) {
      return new JSONBool(<bool>value);
    } else if (isInteger<T>()) {
      if (isSigned<T>()) return JSONNumber.fromI64(<i64>value);
      return JSONNumber.fromU64(<u64>value);
    } else if (isFloat<T>()) {
      return JSONNumber.fromF64(<f64>value);
    } else if (isString<T>()) {
      if (isNullable<T>()) {
        if (changetype<usize>(value) == 0) return new JSONNull();
      }
      return new JSONString(changetype<string>(value));
    } else if (isArray<T>()) {
      if (isNullable<T>()) {
        if (changetype<usize>(value) == 0) return new JSONNull();
      }
      const out = new JSONArray();
      // @ts-ignore: T is an array type here
      for (let i = 0, n = value.length; i < n; i++) out.items.push(JSONValue.from(value[i]));
      return out;
    } else if (isReference<T>()) {
      if (changetype<usize>(value) == 0) return new JSONNull();
      if (value instanceof JSONValue) return changetype<JSONValue>(value);
      ERROR("JSONValue.from: unsupported type (use bool, numbers, string, arrays or JSONValue)");
      return new JSONNull();
    } else {
      ERROR("JSONValue.from: unsupported type (use bool, numbers, string, arrays or JSONValue)");
      return new JSONNull();
    }
  }
}

/** JSON `null`. */
export class JSONNull extends JSONValue {
  constructor() { super(JSONKind.Null); }
}

/** JSON `true` / `false`. */
export class JSONBool extends JSONValue {
  constructor(public value: bool) { super(JSONKind.Bool); }
}

/**
 * A JSON number, kept as its JSON text so that integers beyond 2^53 (u64 hashes, i64 ids) pass
 * through exactly. Read it with `toF64()` / `toI64()` / `toU64()`.
 */
export class JSONNumber extends JSONValue {
  /** `text` must be a valid JSON number; use the `from*` constructors for values. */
  constructor(public readonly text: string) { super(JSONKind.Number); }

  static fromI64(v: i64): JSONNumber { return new JSONNumber(v.toString()); }
  static fromU64(v: u64): JSONNumber { return new JSONNumber(v.toString()); }
  /** NaN and infinities have no JSON form: they give a JSONNull. */
  static fromF64(v: f64): JSONValue {
    if (!isFinite(v)) return new JSONNull();
    return new JSONNumber(v.toString());
  }

  /** Whether the text has no fraction and no exponent. */
  get isInteger(): bool {
    const t = this.text;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c == 0x2E || c == 0x65 || c == 0x45) return false; // . e E
    }
    return true;
  }

  toF64(): f64 { return parseFloat(this.text); }

  toI64(): i64 {
    if (!this.isInteger) return <i64>this.toF64();
    return I64.parseInt(this.text, 10);
  }

  toU64(): u64 {
    if (!this.isInteger) return <u64>this.toF64();
    return U64.parseInt(this.text, 10);
  }
}

/** A JSON string (UTF-16 in AssemblyScript). */
export class JSONString extends JSONValue {
  constructor(public value: string) { super(JSONKind.String); }
}

/** A JSON array. */
export class JSONArray extends JSONValue {
  items: Array<JSONValue> = new Array<JSONValue>();
  constructor() { super(JSONKind.Array); }

  /** Appends a value (anything `JSONValue.from` accepts); returns this array for chaining. */
  push<T>(value: T): JSONArray {
    this.items.push(JSONValue.from<T>(value));
    return this;
  }
}

/** A JSON object. Members keep their order; `set` on an existing key replaces its value in place. */
export class JSONObject extends JSONValue {
  keys: Array<string> = new Array<string>();
  values: Array<JSONValue> = new Array<JSONValue>();
  constructor() { super(JSONKind.Object); }

  /** The value of `key` (the last one if repeated), or null. */
  member(key: string): JSONValue | null {
    const keys = this.keys;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (keys[i] == key) return this.values[i];
    }
    return null;
  }

  /** Sets `key` (anything `JSONValue.from` accepts); returns this object for chaining. */
  set<T>(key: string, value: T): JSONObject {
    const v = JSONValue.from<T>(value);
    const keys = this.keys;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (keys[i] == key) {
        this.values[i] = v;
        return this;
      }
    }
    keys.push(key);
    this.values.push(v);
    return this;
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

let lastError: string = "";

/** Why the last `parseJSON*` call returned null ("at byte N: reason"). */
export function lastJSONError(): string {
  return lastError;
}

/** Parses UTF-8 JSON text from memory. Returns null on malformed input; see `lastJSONError()`. */
export function parseJSONBytes(ptr: usize, len: usize): JSONValue | null {
  const p = new Parser(ptr, len);
  const v = p.parseDocument();
  if (v === null) lastError = "at byte " + p.errPos.toString() + ": " + p.err;
  return v;
}

/** Parses JSON from a string. Returns null on malformed input; see `lastJSONError()`. */
export function parseJSON(text: string): JSONValue | null {
  const bytes = String.UTF8.encode(text, false, String.UTF8.ErrorMode.REPLACE);
  return parseJSONBytes(changetype<usize>(bytes), <usize>bytes.byteLength);
}

// @ts-ignore: decorator
@inline function isDigit(c: u32): bool { return c - 0x30 < 10; }

// @ts-ignore: decorator
@inline function hexValue(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  const l = c | 0x20; // lower case
  if (l - 0x61 < 6) return <i32>(l - 0x61 + 10);
  return -1;
}

// Word-at-a-time ("SWAR") tests used by the fast paths for long runs of plain ASCII text:
// 8 bytes (reader) or 4 UTF-16 units (writer) per step instead of one. Each test says whether ANY
// lane of the word matches (borrows can only cause extra hits above a real one).
const ONES8: u64 = 0x0101010101010101;
const HIGH8: u64 = 0x8080808080808080;
const ONES16: u64 = 0x0001000100010001;
const HIGH16: u64 = 0x8000800080008000;

// @ts-ignore: decorator
@inline function anyByteZero(x: u64): u64 { return (x - ONES8) & ~x & HIGH8; }
// @ts-ignore: decorator
@inline function anyByteBelow(x: u64, n: u64): u64 { return (x - ONES8 * n) & ~x & HIGH8; }
// @ts-ignore: decorator
@inline function anyUnitZero(x: u64): u64 { return (x - ONES16) & ~x & HIGH16; }

/** Whether 8 JSON string bytes hold a '"', a '\' or a control character (the bytes that end a run). */
// @ts-ignore: decorator
@inline function bytesNeedCare(x: u64): bool {
  return (anyByteBelow(x, 0x20) | anyByteZero(x ^ (ONES8 * 0x22)) | anyByteZero(x ^ (ONES8 * 0x5C))) != 0;
}

/** Whether 4 UTF-16 units are all printable ASCII other than '"' and '\' (written as is). */
// @ts-ignore: decorator
@inline function unitsArePlain(x: u64): bool {
  if ((x & 0xFF80FF80FF80FF80) != 0) return false;
  // All lanes < 0x80 now, so the lane tests below are exact per word.
  return ((x - ONES16 * 0x20) & HIGH16 | anyUnitZero(x ^ (ONES16 * 0x22)) | anyUnitZero(x ^ (ONES16 * 0x5C))) == 0;
}

/** Stores 8 ASCII bytes as 8 UTF-16 units at `dst`. */
// @ts-ignore: decorator
@inline function widen8(dst: usize, x: u64): void {
  let lo = x & 0xFFFFFFFF;
  lo = (lo | (lo << 16)) & 0x0000FFFF0000FFFF;
  lo = (lo | (lo << 8)) & 0x00FF00FF00FF00FF;
  let hi = x >> 32;
  hi = (hi | (hi << 16)) & 0x0000FFFF0000FFFF;
  hi = (hi | (hi << 8)) & 0x00FF00FF00FF00FF;
  store<u64>(dst, lo);
  store<u64>(dst + 8, hi);
}

/** Packs 4 ASCII UTF-16 units into 4 bytes. */
// @ts-ignore: decorator
@inline function narrow4(x: u64): u32 {
  let y = (x | (x >> 8)) & 0x0000FFFF0000FFFF;
  y = (y | (y >> 16)) & 0x00000000FFFFFFFF;
  return <u32>y;
}

class Parser {
  pos: usize;
  end: usize;
  depth: i32 = 0;
  err: string = "";
  errPos: usize = 0;
  private failed: bool = false;

  constructor(public base: usize, len: usize) {
    this.pos = base;
    this.end = base + len;
  }

  /** Records the first error (with the current position). */
  fail(reason: string): void {
    if (!this.failed) {
      this.failed = true;
      this.err = reason;
      this.errPos = this.pos - this.base;
    }
  }

  /** `fail` for functions returning a value. */
  error(reason: string): JSONValue | null {
    this.fail(reason);
    return null;
  }

  /** `fail` for functions returning a string. */
  stringError(reason: string): string | null {
    this.fail(reason);
    return null;
  }

  skipWs(): void {
    let p = this.pos;
    const end = this.end;
    while (p < end) {
      const c = load<u8>(p);
      if (c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09) break;
      p++;
    }
    this.pos = p;
  }

  parseDocument(): JSONValue | null {
    this.skipWs();
    if (this.pos >= this.end) return this.error("empty input");
    const v = this.parseValue();
    if (v === null) return null;
    this.skipWs();
    if (this.pos != this.end) return this.error("unexpected trailing characters");
    return v;
  }

  parseValue(): JSONValue | null {
    this.skipWs();
    if (this.pos >= this.end) return this.error("unexpected end of input, expected a value");
    const c = <u32>load<u8>(this.pos);
    if (c == 0x7B) return this.parseObject();   // {
    if (c == 0x5B) return this.parseArray();    // [
    if (c == 0x22) {                            // "
      const s = this.parseString();
      return s === null ? null : new JSONString(s);
    }
    if (c == 0x2D || isDigit(c)) return this.parseNumber();
    if (c == 0x74) return this.literal("true") ? new JSONBool(true) : null;
    if (c == 0x66) return this.literal("false") ? new JSONBool(false) : null;
    if (c == 0x6E) return this.literal("null") ? new JSONNull() : null;
    return this.error("unexpected character, expected a value");
  }

  literal(word: string): bool {
    const n = <usize>word.length;
    if (this.end - this.pos < n) {
      this.fail("invalid literal");
      return false;
    }
    for (let i: usize = 0; i < n; i++) {
      if (<u32>load<u8>(this.pos + i) != <u32>word.charCodeAt(<i32>i)) {
        this.fail("invalid literal");
        return false;
      }
    }
    this.pos += n;
    return true;
  }

  enter(): bool {
    if (++this.depth > MAX_DEPTH) {
      this.fail("nesting deeper than " + MAX_DEPTH.toString() + " levels");
      return false;
    }
    this.pos++; // the opening bracket
    return true;
  }

  parseArray(): JSONValue | null {
    if (!this.enter()) return null;
    const arr = new JSONArray();
    this.skipWs();
    if (this.pos < this.end && load<u8>(this.pos) == 0x5D) {
      this.pos++;
      this.depth--;
      return arr;
    }
    while (true) {
      const v = this.parseValue();
      if (v === null) return null;
      arr.items.push(v);
      this.skipWs();
      if (this.pos >= this.end) return this.error("unexpected end of input, expected ',' or ']' in array");
      const c = load<u8>(this.pos);
      this.pos++;
      if (c == 0x2C) continue;
      if (c == 0x5D) break;
      this.pos--;
      return this.error("expected ',' or ']' in array");
    }
    this.depth--;
    return arr;
  }

  parseObject(): JSONValue | null {
    if (!this.enter()) return null;
    const obj = new JSONObject();
    this.skipWs();
    if (this.pos < this.end && load<u8>(this.pos) == 0x7D) {
      this.pos++;
      this.depth--;
      return obj;
    }
    while (true) {
      this.skipWs();
      if (this.pos >= this.end) return this.error("unexpected end of input, expected a string key");
      if (load<u8>(this.pos) != 0x22) return this.error("expected a string key");
      const key = this.parseString();
      if (key === null) return null;
      this.skipWs();
      if (this.pos >= this.end || load<u8>(this.pos) != 0x3A) return this.error("expected ':' after object key");
      this.pos++;
      const v = this.parseValue();
      if (v === null) return null;
      // Duplicate keys are kept; lookups return the last one.
      obj.keys.push(key);
      obj.values.push(v);
      this.skipWs();
      if (this.pos >= this.end) return this.error("unexpected end of input, expected ',' or '}' in object");
      const c = load<u8>(this.pos);
      this.pos++;
      if (c == 0x2C) continue;
      if (c == 0x7D) break;
      this.pos--;
      return this.error("expected ',' or '}' in object");
    }
    this.depth--;
    return obj;
  }

  parseNumber(): JSONValue | null {
    const start = this.pos;
    const end = this.end;
    let p = start;
    if (p < end && load<u8>(p) == 0x2D) p++;
    if (p < end && load<u8>(p) == 0x30) {
      p++;
    } else if (p < end && isDigit(load<u8>(p))) {
      while (p < end && isDigit(load<u8>(p))) p++;
    } else {
      this.pos = p;
      return this.error("invalid number");
    }
    if (p < end && load<u8>(p) == 0x2E) {
      p++;
      if (!(p < end && isDigit(load<u8>(p)))) {
        this.pos = p;
        return this.error("invalid number: expected a digit after '.'");
      }
      while (p < end && isDigit(load<u8>(p))) p++;
    }
    if (p < end && (load<u8>(p) | 0x20) == 0x65) { // e E
      p++;
      if (p < end && (load<u8>(p) == 0x2B || load<u8>(p) == 0x2D)) p++;
      if (!(p < end && isDigit(load<u8>(p)))) {
        this.pos = p;
        return this.error("invalid number: expected a digit in the exponent");
      }
      while (p < end && isDigit(load<u8>(p))) p++;
    }
    this.pos = p;
    return new JSONNumber(String.UTF8.decodeUnsafe(start, p - start));
  }

  /** Parses a JSON string at `pos` (a '"') and returns it decoded, or null on error. */
  parseString(): string | null {
    const end = this.end;
    const first = this.pos + 1;
    // Pass 1: find the closing quote; note whether there is anything but printable ASCII.
    let p = first;
    let plain = true;
    let high: u64 = 0;
    while (true) {
      while (p + 8 <= end) { // fast path: 8 bytes without '"', '\\' or control characters
        const x = load<u64>(p);
        if (bytesNeedCare(x)) break;
        high |= x;
        p += 8;
      }
      if (p >= end) {
        this.pos = p;
        return this.stringError("unterminated string");
      }
      const c = load<u8>(p);
      if (c == 0x22) break;
      if (c == 0x5C) {
        plain = false;
        p += 2;
        continue;
      }
      if (c < 0x20 || c >= 0x80) plain = false;
      p++;
    }
    if (high & HIGH8) plain = false;
    const close = p;
    const n = close - first;
    // A string never needs more UTF-16 units than its JSON form has bytes.
    const out = __new(n << 1, idof<String>());
    if (plain) {
      let i: usize = 0;
      for (; i + 8 <= n; i += 8) widen8(out + (i << 1), load<u64>(first + i));
      for (; i < n; i++) store<u16>(out + (i << 1), load<u8>(first + i));
      this.pos = close + 1;
      return changetype<string>(out);
    }
    // Pass 2: decode escapes and validate UTF-8.
    let r = first;
    let w = out;
    while (r < close) {
      if (r + 8 <= close) { // fast path: a run of 8 plain ASCII bytes
        const x = load<u64>(r);
        if ((x & HIGH8) == 0 && !bytesNeedCare(x)) {
          widen8(w, x);
          r += 8;
          w += 16;
          continue;
        }
      }
      const c = <u32>load<u8>(r);
      if (c < 0x80) {
        if (c == 0x5C) {
          if (r + 1 >= close) {
            this.pos = r;
            return this.stringError("unterminated string");
          }
          const e = <u32>load<u8>(r + 1);
          r += 2;
          let u: u32 = 0;
          if (e == 0x22) u = 0x22;
          else if (e == 0x5C) u = 0x5C;
          else if (e == 0x2F) u = 0x2F;
          else if (e == 0x62) u = 0x08;
          else if (e == 0x66) u = 0x0C;
          else if (e == 0x6E) u = 0x0A;
          else if (e == 0x72) u = 0x0D;
          else if (e == 0x74) u = 0x09;
          else if (e == 0x75) { // \uXXXX
            this.pos = r;
            const hi = this.hex4();
            if (hi < 0) return null;
            r += 4;
            if (hi >= 0xD800 && hi <= 0xDBFF) {
              // A high surrogate must be followed by an escaped low surrogate.
              if (close - r < 6 || load<u8>(r) != 0x5C || load<u8>(r + 1) != 0x75) {
                this.pos = r;
                return this.stringError("unpaired high surrogate in \\u escape");
              }
              this.pos = r + 2;
              const lo = this.hex4();
              if (lo < 0) return null;
              if (lo < 0xDC00 || lo > 0xDFFF) return this.stringError("unpaired high surrogate in \\u escape");
              r += 6;
              store<u16>(w, <u16>hi);
              store<u16>(w + 2, <u16>lo);
              w += 4;
              continue;
            }
            if (hi >= 0xDC00 && hi <= 0xDFFF) {
              this.pos = r - 6;
              return this.stringError("unpaired low surrogate in \\u escape");
            }
            u = <u32>hi;
          } else {
            this.pos = r - 2;
            return this.stringError("invalid escape in string");
          }
          store<u16>(w, <u16>u);
          w += 2;
          continue;
        }
        if (c < 0x20) {
          this.pos = r;
          return this.stringError("unescaped control character in string");
        }
        store<u16>(w, <u16>c);
        w += 2;
        r++;
        continue;
      }
      // Multi-byte UTF-8: validate strictly (no overlongs, surrogates or values > U+10FFFF).
      const avail = close - r;
      let cp: u32 = 0;
      if (c >= 0xC2 && c < 0xE0) {
        if (avail < 2) return this.badUtf8(r);
        const c1 = <u32>load<u8>(r + 1);
        if ((c1 & 0xC0) != 0x80) return this.badUtf8(r);
        cp = ((c & 0x1F) << 6) | (c1 & 0x3F);
        r += 2;
      } else if (c >= 0xE0 && c < 0xF0) {
        if (avail < 3) return this.badUtf8(r);
        const c1 = <u32>load<u8>(r + 1);
        const c2 = <u32>load<u8>(r + 2);
        if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return this.badUtf8(r);
        if (c == 0xE0 && c1 < 0xA0) return this.badUtf8(r);  // overlong
        if (c == 0xED && c1 >= 0xA0) return this.badUtf8(r); // UTF-16 surrogate
        cp = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F);
        r += 3;
      } else if (c >= 0xF0 && c < 0xF5) {
        if (avail < 4) return this.badUtf8(r);
        const c1 = <u32>load<u8>(r + 1);
        const c2 = <u32>load<u8>(r + 2);
        const c3 = <u32>load<u8>(r + 3);
        if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return this.badUtf8(r);
        if (c == 0xF0 && c1 < 0x90) return this.badUtf8(r);  // overlong
        if (c == 0xF4 && c1 >= 0x90) return this.badUtf8(r); // above U+10FFFF
        cp = ((c & 0x07) << 18) | ((c1 & 0x3F) << 12) | ((c2 & 0x3F) << 6) | (c3 & 0x3F);
        r += 4;
      } else {
        return this.badUtf8(r);
      }
      if (cp < 0x10000) {
        store<u16>(w, <u16>cp);
        w += 2;
      } else {
        const v = cp - 0x10000;
        store<u16>(w, <u16>(0xD800 | (v >> 10)));
        store<u16>(w + 2, <u16>(0xDC00 | (v & 0x3FF)));
        w += 4;
      }
    }
    this.pos = close + 1;
    return changetype<string>(__renew(out, w - out));
  }

  badUtf8(at: usize): string | null {
    this.pos = at;
    return this.stringError("invalid UTF-8 in string");
  }

  /** Reads the 4 hex digits at `pos`; -1 (and an error) if they are not there. */
  hex4(): i32 {
    if (this.end - this.pos < 4) {
      this.fail("truncated \\u escape");
      return -1;
    }
    let v: i32 = 0;
    for (let i: usize = 0; i < 4; i++) {
      const h = hexValue(<u32>load<u8>(this.pos + i));
      if (h < 0) {
        this.fail("invalid hex digit in \\u escape");
        return -1;
      }
      v = (v << 4) | h;
    }
    this.pos += 4;
    return v;
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

const HEX_DIGITS = "0123456789abcdef";

/**
 * Writes compact JSON as UTF-8 into unmanaged memory, after 4 bytes reserved for the ABI length
 * header, so `finish()` hands the buffer to the host without a copy. Commas are inserted for you:
 *
 *     const w = new JSONWriter();
 *     w.beginObject();
 *     w.key("result"); w.writeString(text);
 *     w.key("hash"); w.writeU64(hash);
 *     w.endObject();
 *     return w.finish();
 */
export class JSONWriter {
  private buf: usize;
  private cap: usize;
  private len: usize = 4; // the length header

  constructor(initialCapacity: usize = 256) {
    this.cap = initialCapacity + 4;
    this.buf = heap.alloc(this.cap);
  }

  /** Bytes of JSON written so far. */
  get byteLength(): usize { return this.len - 4; }

  /** Makes room for `n` more bytes. */
  reserve(n: usize): void {
    const need = this.len + n;
    if (need > this.cap) {
      let cap = this.cap << 1;
      if (cap < need) cap = need;
      this.buf = heap.realloc(this.buf, cap);
      this.cap = cap;
    }
  }

  // @ts-ignore: decorator
  @inline private put(b: u32): void {
    store<u8>(this.buf + this.len, <u8>b);
    this.len++;
  }

  /** A comma, unless this value is the first in its container or follows a key. */
  private sep(): void {
    if (this.len == 4) return;
    const last = load<u8>(this.buf + this.len - 1);
    if (last == 0x5B || last == 0x7B || last == 0x3A) return; // [ { :
    this.reserve(1);
    this.put(0x2C);
  }

  private ascii(s: string): void {
    const n = <usize>s.length;
    this.reserve(n);
    const src = changetype<usize>(s);
    for (let i: usize = 0; i < n; i++) store<u8>(this.buf + this.len + i, load<u16>(src + (i << 1)));
    this.len += n;
  }

  beginObject(): void { this.sep(); this.reserve(1); this.put(0x7B); }
  endObject(): void { this.reserve(1); this.put(0x7D); }
  beginArray(): void { this.sep(); this.reserve(1); this.put(0x5B); }
  endArray(): void { this.reserve(1); this.put(0x5D); }

  /** An object key; follow it with exactly one value. */
  key(k: string): void {
    this.writeString(k);
    this.reserve(1);
    this.put(0x3A);
  }

  writeNull(): void { this.sep(); this.ascii("null"); }
  writeBool(b: bool): void { this.sep(); this.ascii(b ? "true" : "false"); }
  writeI64(v: i64): void { this.sep(); this.ascii(v.toString()); }
  writeU64(v: u64): void { this.sep(); this.ascii(v.toString()); }
  /** NaN and infinities have no JSON form and are written as null. */
  writeF64(v: f64): void {
    this.sep();
    this.ascii(isFinite(v) ? v.toString() : "null");
  }

  /** Writes already-encoded JSON text verbatim (you vouch that it is one valid JSON value). */
  writeRaw(json: string): void {
    this.sep();
    const n = <usize>String.UTF8.byteLength(json);
    this.reserve(n);
    this.len += String.UTF8.encodeUnsafe(
      changetype<usize>(json), json.length, this.buf + this.len, false, String.UTF8.ErrorMode.REPLACE,
    );
  }

  /** Writes UTF-8 JSON bytes from memory verbatim (you vouch that they are one valid JSON value). */
  writeRawBytes(ptr: usize, n: usize): void {
    this.sep();
    this.reserve(n);
    memory.copy(this.buf + this.len, ptr, n);
    this.len += n;
  }

  /** A JSON string: UTF-16 to UTF-8, escaping '"', '\' and control characters. */
  writeString(s: string): void {
    this.sep();
    const src = changetype<usize>(s);
    const n = <usize>s.length;
    // Pass 1: the exact encoded size.
    let size: usize = 2;
    for (let i: usize = 0; i < n; i++) {
      if (i + 4 <= n && unitsArePlain(load<u64>(src + (i << 1)))) { // fast path: 4 plain units
        size += 4;
        i += 3;
        continue;
      }
      const c = <u32>load<u16>(src + (i << 1));
      if (c < 0x80) {
        if (c >= 0x20 && c != 0x22 && c != 0x5C) size += 1;
        else if (c == 0x22 || c == 0x5C || c == 0x08 || c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D) size += 2;
        else size += 6;
      } else if (c < 0x800) {
        size += 2;
      } else if (c >= 0xD800 && c < 0xDC00 && i + 1 < n && (<u32>load<u16>(src + ((i + 1) << 1)) & 0xFC00) == 0xDC00) {
        size += 4;
        i++;
      } else {
        size += 3; // BMP character, or a lone surrogate written as U+FFFD
      }
    }
    this.reserve(size);
    // Pass 2: encode.
    let o = this.buf + this.len;
    store<u8>(o++, 0x22);
    for (let i: usize = 0; i < n; i++) {
      if (i + 4 <= n) { // fast path: 4 plain units
        const x = load<u64>(src + (i << 1));
        if (unitsArePlain(x)) {
          store<u32>(o, narrow4(x));
          o += 4;
          i += 3;
          continue;
        }
      }
      let c = <u32>load<u16>(src + (i << 1));
      if (c < 0x80) {
        if (c >= 0x20 && c != 0x22 && c != 0x5C) {
          store<u8>(o++, <u8>c);
        } else {
          store<u8>(o++, 0x5C);
          if (c == 0x22 || c == 0x5C) store<u8>(o++, <u8>c);
          else if (c == 0x08) store<u8>(o++, 0x62);
          else if (c == 0x09) store<u8>(o++, 0x74);
          else if (c == 0x0A) store<u8>(o++, 0x6E);
          else if (c == 0x0C) store<u8>(o++, 0x66);
          else if (c == 0x0D) store<u8>(o++, 0x72);
          else {
            store<u8>(o++, 0x75);
            store<u8>(o++, 0x30);
            store<u8>(o++, 0x30);
            store<u8>(o++, <u8>HEX_DIGITS.charCodeAt(<i32>(c >> 4)));
            store<u8>(o++, <u8>HEX_DIGITS.charCodeAt(<i32>(c & 0xF)));
          }
        }
      } else if (c < 0x800) {
        store<u8>(o++, <u8>(0xC0 | (c >> 6)));
        store<u8>(o++, <u8>(0x80 | (c & 0x3F)));
      } else {
        if ((c & 0xF800) == 0xD800) {
          const lo = i + 1 < n ? <u32>load<u16>(src + ((i + 1) << 1)) : 0;
          if (c < 0xDC00 && (lo & 0xFC00) == 0xDC00) {
            const cp = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
            store<u8>(o++, <u8>(0xF0 | (cp >> 18)));
            store<u8>(o++, <u8>(0x80 | ((cp >> 12) & 0x3F)));
            store<u8>(o++, <u8>(0x80 | ((cp >> 6) & 0x3F)));
            store<u8>(o++, <u8>(0x80 | (cp & 0x3F)));
            i++;
            continue;
          }
          c = 0xFFFD; // lone surrogate
        }
        store<u8>(o++, <u8>(0xE0 | (c >> 12)));
        store<u8>(o++, <u8>(0x80 | ((c >> 6) & 0x3F)));
        store<u8>(o++, <u8>(0x80 | (c & 0x3F)));
      }
    }
    store<u8>(o++, 0x22);
    this.len = o - this.buf;
  }

  /** Writes any JSONValue tree. */
  writeValue(v: JSONValue): void {
    switch (v.kind) {
      case JSONKind.Null: this.writeNull(); break;
      case JSONKind.Bool: this.writeBool(changetype<JSONBool>(v).value); break;
      case JSONKind.Number: this.sep(); this.ascii(changetype<JSONNumber>(v).text); break;
      case JSONKind.String: this.writeString(changetype<JSONString>(v).value); break;
      case JSONKind.Array: {
        const items = changetype<JSONArray>(v).items;
        this.beginArray();
        for (let i = 0, n = items.length; i < n; i++) this.writeValue(items[i]);
        this.endArray();
        break;
      }
      default: {
        const o = changetype<JSONObject>(v);
        const keys = o.keys;
        const values = o.values;
        this.beginObject();
        for (let i = 0, n = keys.length; i < n; i++) {
          this.key(keys[i]);
          this.writeValue(values[i]);
        }
        this.endObject();
      }
    }
  }

  /**
   * Finishes the result: writes the 4-byte little-endian length header and returns the result
   * pointer to return from a capability. The writer must not be used afterwards.
   */
  finish(): usize {
    store<u32>(this.buf, <u32>(this.len - 4));
    return this.buf;
  }

  /** The JSON written so far, as a string. */
  toString(): string {
    return String.UTF8.decodeUnsafe(this.buf + 4, this.len - 4);
  }
}

/** Encodes `value` as an ABI result and returns the result pointer. */
export function encodeResult(value: JSONValue): usize {
  const w = new JSONWriter();
  w.writeValue(value);
  return w.finish();
}

/** Copies UTF-8 JSON text into an ABI result (you vouch that it is valid JSON). */
export function rawResult(json: string): usize {
  const n = <usize>String.UTF8.byteLength(json);
  const r = allocResult(n);
  String.UTF8.encodeUnsafe(changetype<usize>(json), json.length, r + 4, false, String.UTF8.ErrorMode.REPLACE);
  return r;
}
