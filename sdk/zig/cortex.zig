//! Cortex plugin SDK for Zig (plugin ABI v1, see docs/abi.md; guide: docs/guides/zig.md).
//!
//! A plugin author writes only the capability functions; this module supplies everything
//! else the host expects from a guest:
//!
//!   * the allocator export `cortex_alloc` (manifest `"wasm": {"allocator": "custom"}`),
//!   * decoding the UTF-8 JSON input into a Zig type, with error messages naming the field,
//!   * encoding the result as JSON behind the 4-byte little-endian length header,
//!   * error reporting through the host import `cortex.error`,
//!   * logging through the host import `cortex.log` (and, optionally, `std.log`),
//!   * a panic handler that reports the panic message before trapping.
//!
//! ```zig
//! const std = @import("std");
//! const cortex = @import("cortex");
//!
//! pub const panic = cortex.panic; // optional: report panics through cortex.error
//!
//! const Input = struct { name: []const u8 };
//! const Output = struct { greeting: []const u8 };
//!
//! pub fn greet(ctx: *cortex.Context, input: Input) !Output {
//!     return .{ .greeting = try std.fmt.allocPrint(ctx.allocator, "hello, {s}", .{input.name}) };
//! }
//!
//! comptime {
//!     cortex.exportCapability("greet", greet);
//! }
//! ```
//!
//! Build (Zig 0.17, no libc; the module imports nothing but `cortex.error` / `cortex.log`):
//!
//! ```sh
//! python -m ziglang build-exe -target wasm32-wasi -fno-entry -rdynamic -O ReleaseSmall \
//!     --stack 262144 --dep cortex -Mroot=main.zig -Mcortex=<repo>/sdk/zig/cortex.zig \
//!     -femit-bin=plugin.wasm
//! ```
//!
//! `-rdynamic` exports every symbol made with `@export` (the capabilities and `cortex_alloc`;
//! it also exports the `__stack_pointer` global, which the host ignores); without it the module
//! exports nothing but its memory. `-fno-entry` builds a module without `_start` (the host
//! refuses WASI commands). `--stack` matters: Zig's default stack is 16 MiB, which alone is
//! over the default memory limit of 256 pages.
//!
//! Reactor initialisation: a module built this way has no `_initialize` export and needs none
//! (globals live in data segments that every fresh instance starts from). Each call runs in a
//! fresh instance, so nothing allocated during a call ever needs to be freed.

const std = @import("std");
const builtin = @import("builtin");
const json = std.json;
const Allocator = std.mem.Allocator;
const Writer = std.Io.Writer;

/// The plugin ABI version this SDK implements.
pub const abi_version = 1;

comptime {
    if (!builtin.cpu.arch.isWasm() and !builtin.is_test)
        @compileError("the Cortex SDK targets WebAssembly: build with -target wasm32-wasi");
}

// ---------------------------------------------------------------------------------------------
// Host imports (module "cortex").

const host = struct {
    extern "cortex" fn @"error"(ptr: [*]const u8, len: usize) void;
    extern "cortex" fn log(level: i32, ptr: [*]const u8, len: usize) void;
};

/// The host truncates each error message and log line to this many bytes.
pub const max_message_bytes = 4096;

/// Levels of `cortex.log` (the host maps them to debug / info / warning / error).
pub const LogLevel = enum(i32) {
    debug = 0,
    info = 1,
    warn = 2,
    err = 3,
};

/// Sends one log line to the host (structlog event `plugin.log`). Never fails; the host drops
/// lines past the call's log budget (`limits.maxLogBytes`, default 64 KiB).
pub fn log(level: LogLevel, message: []const u8) void {
    host.log(@intFromEnum(level), message.ptr, message.len);
}

/// Reports that the current call failed with `message` (UTF-8): the caller gets
/// `PluginError(message)` whatever the capability returns. Only the first report of a call
/// counts. Inside a capability prefer `Context.fail`, which also returns the error to propagate.
pub fn reportError(message: []const u8) void {
    host.@"error"(message.ptr, message.len);
}

/// Formats into `buf`; when the text does not fit it is cut on a UTF-8 boundary.
fn formatTruncated(buf: []u8, comptime fmt: []const u8, args: anytype) []const u8 {
    var w: Writer = .fixed(buf);
    w.print(fmt, args) catch return utf8Prefix(w.buffered());
    return w.buffered();
}

/// The longest prefix of `s` that does not end inside a UTF-8 sequence.
fn utf8Prefix(s: []const u8) []const u8 {
    var n = s.len;
    var back: usize = 0;
    while (n > 0 and back < 4) {
        n -= 1;
        back += 1;
        const c = s[n];
        if (c & 0xC0 == 0x80) continue; // continuation byte: keep looking for the lead
        const need = std.unicode.utf8ByteSequenceLength(c) catch 1;
        return if (need <= back) s else s[0..n];
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Memory.

/// The allocator of `Context.allocator`: `std.heap.wasm_allocator`, which takes memory from
/// `memory.grow`. Blocks above 64 KiB are rounded up to a power-of-two number of 64 KiB pages
/// (a 1 MiB buffer takes 2 MiB of `maxMemoryPages`). Freeing is allowed but never needed: the
/// instance is discarded after each call. The SDK's own large buffers (the input and the result)
/// do not use it: they take exactly the pages they need.
pub const allocator: Allocator = std.heap.wasm_allocator;

const page_size = 64 * 1024;

/// Grows the linear memory by enough pages for `bytes`; returns the address of the new pages.
fn growPages(bytes: usize) ?usize {
    const pages = std.math.divCeil(usize, bytes, page_size) catch unreachable;
    const previous = @wasmMemoryGrow(0, pages);
    if (previous < 0) return null;
    return @as(usize, @intCast(previous)) * page_size;
}

fn memoryEnd() usize {
    return @wasmMemorySize(0) * page_size;
}

/// Bytes reserved in front of the input, so that a `RawJson` result that is a slice of the
/// input gets its length header without being copied.
const input_headroom = 4;

/// The block `cortex_alloc` handed out (the host calls it once per call, on a fresh instance).
var input_block: []u8 = &.{};

/// `cortex_alloc(size) -> ptr`: the host writes the call's input there. The block is fresh
/// pages at the end of memory, exactly as many as the input needs. Returns 0 when the memory
/// limit leaves no room, after growing the memory to that limit: the host then raises
/// `MemoryLimitExceeded`.
fn cortexAlloc(size: usize) callconv(.c) usize {
    const total = std.math.add(usize, @max(size, 1), input_headroom) catch return 0;
    const addr = growPages(total) orelse {
        growToLimit();
        return 0;
    };
    input_block = @as([*]u8, @ptrFromInt(addr))[0..total];
    return addr + input_headroom;
}

comptime {
    if (!builtin.is_test) @export(&cortexAlloc, .{ .name = "cortex_alloc" });
}

/// The result buffer: a `std.Io.Writer` over pages at the end of memory that grows in place
/// with `memory.grow` (no copies, no power-of-two rounding). If something else grew the memory
/// meanwhile (a `jsonStringify` method that allocates), the buffer moves to the new end.
const ResultWriter = struct {
    writer: Writer = .{
        .buffer = &.{},
        .vtable = &.{ .drain = drain, .flush = Writer.noopFlush, .rebase = rebase },
    },

    /// Makes room for `additional` more bytes after `w.end`.
    fn reserve(w: *Writer, additional: usize) Writer.Error!void {
        const needed = std.math.add(usize, w.end, additional) catch return error.WriteFailed;
        if (needed <= w.buffer.len) return;
        const start = @intFromPtr(w.buffer.ptr);
        if (w.buffer.len != 0 and start + w.buffer.len == memoryEnd()) {
            // At the end of memory: grow in place.
            _ = growPages(needed - w.buffer.len) orelse return error.WriteFailed;
            w.buffer = w.buffer.ptr[0 .. memoryEnd() - start];
            return;
        }
        const addr = growPages(needed) orelse return error.WriteFailed;
        const region = @as([*]u8, @ptrFromInt(addr))[0 .. memoryEnd() - addr];
        @memcpy(region[0..w.end], w.buffer[0..w.end]);
        w.buffer = region;
    }

    fn drain(w: *Writer, data: []const []const u8, splat: usize) Writer.Error!usize {
        const count = Writer.countSplat(data, splat);
        try reserve(w, count);
        for (data[0 .. data.len - 1]) |bytes| {
            @memcpy(w.buffer[w.end..][0..bytes.len], bytes);
            w.end += bytes.len;
        }
        const pattern = data[data.len - 1];
        for (0..splat) |_| {
            @memcpy(w.buffer[w.end..][0..pattern.len], pattern);
            w.end += pattern.len;
        }
        return count;
    }

    fn rebase(w: *Writer, preserve: usize, capacity: usize) Writer.Error!void {
        _ = preserve; // nothing is ever dropped from the buffer
        return reserve(w, capacity);
    }
};

// ---------------------------------------------------------------------------------------------
// Capabilities.

/// A JSON value kept as text: neither decoded nor encoded.
///
///  * As a capability's input type: `bytes` is the input exactly as the host sent it.
///  * As a field of an input struct: that field's value, verbatim (e.g. to decode it later
///    with `cortex.decode`, or to pass it through).
///  * In a result: `bytes` is written into the output unchanged. It must be valid JSON; the
///    host checks the output and fails the call with `InvalidOutput` otherwise.
pub const RawJson = struct {
    bytes: []const u8,
};

/// The error a capability returns after reporting a failure with `Context.fail`.
pub const Error = error{CapabilityFailed};

/// What a capability function receives besides its input.
pub const Context = struct {
    /// Allocate anything the capability builds with this (it is `cortex.allocator`). Nothing
    /// needs to be freed: the instance is discarded after the call.
    allocator: Allocator,
    /// The name of the capability being called.
    capability: []const u8,
    /// Set once an error has been reported for this call.
    failed: bool = false,

    /// Reports the call as failed with a formatted message (`std.fmt` syntax) and returns
    /// `error.CapabilityFailed`: `return ctx.fail("unknown unit {s}", .{unit});`.
    /// The caller gets `PluginError` with exactly that message (cut to 4 KiB).
    pub fn fail(ctx: *Context, comptime fmt: []const u8, args: anytype) Error {
        ctx.reportFmt(fmt, args);
        return error.CapabilityFailed;
    }

    /// Like `fail`, with a message that needs no formatting (sent to the host as is).
    pub fn failMessage(ctx: *Context, message: []const u8) Error {
        ctx.report(message);
        return error.CapabilityFailed;
    }

    fn report(ctx: *Context, message: []const u8) void {
        if (!ctx.failed) {
            ctx.failed = true;
            reportError(message);
        }
    }

    fn reportFmt(ctx: *Context, comptime fmt: []const u8, args: anytype) void {
        var buf: [max_message_bytes]u8 = undefined;
        ctx.report(formatTruncated(&buf, fmt, args));
    }

    /// Logs a formatted line (`std.fmt` syntax) at `level`, cut to 4 KiB.
    pub fn log(ctx: *Context, level: LogLevel, comptime fmt: []const u8, args: anytype) void {
        _ = ctx;
        var buf: [max_message_bytes]u8 = undefined;
        host.log(@intFromEnum(level), &buf, formatTruncated(&buf, fmt, args).len);
    }

    /// Logs a line that needs no formatting, sent to the host as is.
    pub fn logMessage(ctx: *Context, level: LogLevel, message: []const u8) void {
        _ = ctx;
        host.log(@intFromEnum(level), message.ptr, message.len);
    }

    pub fn debug(ctx: *Context, comptime fmt: []const u8, args: anytype) void {
        ctx.log(.debug, fmt, args);
    }
    pub fn info(ctx: *Context, comptime fmt: []const u8, args: anytype) void {
        ctx.log(.info, fmt, args);
    }
    pub fn warn(ctx: *Context, comptime fmt: []const u8, args: anytype) void {
        ctx.log(.warn, fmt, args);
    }
    pub fn err(ctx: *Context, comptime fmt: []const u8, args: anytype) void {
        ctx.log(.err, fmt, args);
    }
};

/// Exports `func` as the capability `name`. Call it from a top-level `comptime` block:
///
/// ```zig
/// comptime {
///     cortex.exportCapability("transform", transform);
/// }
/// ```
///
/// `func` takes `(ctx: *cortex.Context, input: In)`, `(input: In)`, `(ctx: *cortex.Context)`
/// or nothing, and returns `Out` or `E!Out`:
///
///  * `In` is decoded from the input JSON as `cortex.decodeInPlace` does (see `decode` for the
///    mapping). An input that does not fit is reported as `PluginError("invalid input: ...")`
///    naming the field, and `func` is not called. `In = cortex.RawJson` gets the input bytes
///    unchanged.
///  * `Out` is encoded as `cortex.encode` does (structs become objects with their fields in
///    declaration order, `[]const u8` a string, optionals null, ...). `Out = void` sends `null`.
///  * An error return fails the call: `error.CapabilityFailed` after `ctx.fail` keeps the
///    reported message; `error.OutOfMemory` becomes `MemoryLimitExceeded` (see `outOfMemory`);
///    any other error `E` is reported as `PluginError("<name>: E")`.
pub fn exportCapability(comptime name: []const u8, comptime func: anytype) void {
    comptime checkCapabilityName(name);
    const Entry = struct {
        fn entry(input_ptr: [*]u8, input_len: usize) callconv(.c) usize {
            return invoke(name, func, input_ptr[0..input_len]);
        }
    };
    @export(&Entry.entry, .{ .name = name });
}

fn checkCapabilityName(comptime name: []const u8) void {
    const reserved = [_][]const u8{ "malloc", "free", "calloc", "realloc", "_initialize", "_start", "memory" };
    if (name.len == 0) @compileError("a capability name cannot be empty");
    for (reserved) |r| {
        if (std.mem.eql(u8, name, r)) @compileError("'" ++ name ++ "' is a reserved export name");
    }
    if (std.mem.startsWith(u8, name, "__") or std.mem.startsWith(u8, name, "cortex_"))
        @compileError("capability names cannot start with '__' or 'cortex_': '" ++ name ++ "'");
}

fn invoke(comptime name: []const u8, comptime func: anytype, input: []u8) usize {
    const F = @typeInfo(@TypeOf(func)).@"fn";
    const params = F.param_types;
    const has_ctx = params.len >= 1 and params[0] == *Context;
    const n_inputs = params.len - @intFromBool(has_ctx);
    if (n_inputs > 1) @compileError("capability '" ++ name ++ "' takes too many parameters: " ++
        "expected (ctx: *cortex.Context, input: In)");
    const In = if (n_inputs == 1) (params[params.len - 1] orelse
        @compileError("capability '" ++ name ++ "': the input type must be concrete")) else void;
    if (In == *Context) @compileError("capability '" ++ name ++ "': the context comes first");

    var ctx: Context = .{ .allocator = allocator, .capability = name };

    const in: In = if (In == RawJson)
        .{ .bytes = input }
    else if (In == void)
        {}
    else in: {
        var diag: Diagnostic = .{};
        break :in decodeInPlace(In, allocator, input, &diag) catch |e| switch (e) {
            error.OutOfMemory => outOfMemory(),
            error.InvalidInput => {
                ctx.reportFmt("invalid input: {s}", .{diag.message()});
                return 0;
            },
        };
    };

    const args = if (has_ctx and n_inputs == 1)
        .{ &ctx, in }
    else if (has_ctx)
        .{&ctx}
    else if (n_inputs == 1)
        .{in}
    else
        .{};
    const result = @call(.auto, func, args);

    const out = if (@typeInfo(@TypeOf(result)) == .error_union) result catch |e| {
        const any: anyerror = e;
        if (ctx.failed) return 0;
        if (any == error.OutOfMemory) outOfMemory();
        ctx.reportFmt("{s}: {s}", .{ name, @errorName(any) });
        return 0;
    } else result;
    // A capability that reported an error and still returned a value fails all the same.
    if (ctx.failed) return 0;

    return writeResult(out) catch |e| switch (e) {
        error.OutOfMemory => outOfMemory(),
        error.NonFiniteNumber => {
            ctx.reportFmt("{s}: the result contains a NaN or infinite number (not JSON)", .{name});
            return 0;
        },
    };
}

/// Reports "out of memory" and traps. An allocation failed because it did not fit under
/// `maxMemoryPages`; the memory is first grown as far as the limit allows, so that the host
/// sees it at its cap and raises `MemoryLimitExceeded` (not a generic `PluginTrap`).
fn outOfMemory() noreturn {
    reportError("out of memory");
    growToLimit();
    @trap();
}

/// Grows the memory as far as the host allows (up to `maxMemoryPages`).
fn growToLimit() void {
    if (builtin.is_test) return;
    var pages: usize = 1 << 15;
    while (pages > 0) : (pages /= 2) {
        while (@wasmMemoryGrow(0, pages) >= 0) {}
    }
}

/// Encodes the result behind its 4-byte length header; returns the result pointer.
fn writeResult(out: anytype) EncodeError!usize {
    const Out = @TypeOf(out);
    if (Out == RawJson) return rawResult(out.bytes);
    if (Out == void) return rawResult("null");

    var rw: ResultWriter = .{};
    const w = &rw.writer;
    encodeResult(out, w) catch |e| return switch (e) {
        error.WriteFailed => error.OutOfMemory, // the ResultWriter only fails when memory does
        error.NonFiniteNumber => error.NonFiniteNumber,
    };
    const buf = w.buffered();
    std.mem.writeInt(u32, buf[0..4], @intCast(buf.len - 4), .little);
    return @intFromPtr(buf.ptr);
}

fn encodeResult(out: anytype, w: *Writer) (Writer.Error || error{NonFiniteNumber})!void {
    try w.writeAll(&.{ 0, 0, 0, 0 });
    try encode(out, w);
}

fn rawResult(bytes: []const u8) error{OutOfMemory}!usize {
    const start = @intFromPtr(bytes.ptr);
    const block = @intFromPtr(input_block.ptr);
    if (input_block.len != 0 and start >= block + input_headroom and
        start + bytes.len <= block + input_block.len)
    {
        // A slice of the input buffer: the 4 bytes before it are no longer needed.
        const header: *[4]u8 = @ptrFromInt(start - 4);
        std.mem.writeInt(u32, header, @intCast(bytes.len), .little);
        return start - 4;
    }
    const addr = growPages(bytes.len + 4) orelse return error.OutOfMemory;
    const buf = @as([*]u8, @ptrFromInt(addr))[0 .. bytes.len + 4];
    std.mem.writeInt(u32, buf[0..4], @intCast(bytes.len), .little);
    @memcpy(buf[4..], bytes);
    return addr;
}

// ---------------------------------------------------------------------------------------------
// Panics and std.log.

/// Panic handler namespace. Declare `pub const panic = cortex.panic;` in the root file so that
/// a panic reports `panic: <message>` through `cortex.error` before trapping: the caller gets a
/// `PluginTrap` whose message ends with `(the plugin reported: panic: ...)`. Without it, Zig's
/// default handler writes to stderr, which adds WASI imports (fd_write, ...) to the module.
pub const panic = std.debug.FullPanic(panicHandler);

fn panicHandler(msg: []const u8, first_trace_addr: ?usize) noreturn {
    _ = first_trace_addr;
    var buf: [max_message_bytes]u8 = undefined;
    reportError(formatTruncated(&buf, "panic: {s}", .{msg}));
    @trap();
}

/// A `std.log` backend that sends log lines to the host. Enable it in the root file with
/// `pub const std_options: std.Options = .{ .logFn = cortex.logFn };` (std.log's default level
/// in release builds is `.info`; add `.log_level = .debug` for debug lines).
pub fn logFn(
    comptime level: std.log.Level,
    comptime scope: @EnumLiteral(),
    comptime format: []const u8,
    args: anytype,
) void {
    const prefix = if (scope == .default) "" else "(" ++ @tagName(scope) ++ ") ";
    const cortex_level: LogLevel = switch (level) {
        .debug => .debug,
        .info => .info,
        .warn => .warn,
        .err => .err,
    };
    var buf: [max_message_bytes]u8 = undefined;
    log(cortex_level, formatTruncated(&buf, prefix ++ format, args));
}

// ---------------------------------------------------------------------------------------------
// Output encoding.

pub const EncodeError = error{ OutOfMemory, NonFiniteNumber };

/// Writes `value` as compact JSON to `w`:
///
///  * struct -> object with its fields in declaration order (`void` fields left out, null
///    optionals written as `null`); tuple, slice, array, vector -> array.
///  * `[]const u8` (and `[]u8`, `[N]u8`, `[:0]const u8`) -> string. The bytes must be UTF-8:
///    they are not checked here, but the host rejects output that is not (`InvalidOutput`).
///    `"`, `\` and control characters are escaped, everything else is written raw.
///  * integers -> numbers; floats -> numbers (`error.NonFiniteNumber` for NaN / infinity);
///    `bool`; `?T` -> null or T; enums and error values -> their name; `*T` -> T.
///  * `cortex.RawJson` -> its bytes verbatim; `std.json.Value`, tagged unions and types with a
///    `jsonStringify` method -> `std.json.Stringify`.
pub fn encode(value: anytype, w: *Writer) (Writer.Error || error{NonFiniteNumber})!void {
    const T = @TypeOf(value);
    if (T == RawJson) return w.writeAll(value.bytes);
    switch (@typeInfo(T)) {
        .void, .null => return w.writeAll("null"),
        .bool => return w.writeAll(if (value) "true" else "false"),
        .int, .comptime_int => return w.print("{d}", .{value}),
        .float, .comptime_float => {
            if (!std.math.isFinite(value)) return error.NonFiniteNumber;
            return w.print("{}", .{@as(f64, @floatCast(value))});
        },
        .optional => return if (value) |v| encode(v, w) else w.writeAll("null"),
        .@"enum" => {
            if (comptime std.meta.hasFn(T, "jsonStringify")) return json.Stringify.value(value, .{}, w);
            return json.Stringify.value(value, .{}, w); // the tag name, or the number if unnamed
        },
        .enum_literal => return writeString(@tagName(value), w),
        .error_set => return writeString(@errorName(value), w),
        .@"union" => return json.Stringify.value(value, .{}, w),
        .@"struct" => |s| {
            if (comptime std.meta.hasFn(T, "jsonStringify")) return json.Stringify.value(value, .{}, w);
            if (s.is_tuple) {
                try w.writeByte('[');
                inline for (0..s.field_types.len) |i| {
                    if (i != 0) try w.writeByte(',');
                    try encode(value[i], w);
                }
                return w.writeByte(']');
            }
            try w.writeByte('{');
            var first = true;
            inline for (s.field_names, s.field_types) |name, FT| {
                if (FT != void) {
                    if (!first) try w.writeByte(',');
                    first = false;
                    try writeString(name, w);
                    try w.writeByte(':');
                    try encode(@field(value, name), w);
                }
            }
            return w.writeByte('}');
        },
        .pointer => |p| switch (p.size) {
            .one => switch (@typeInfo(p.child)) {
                .array => return encode(@as([]const std.meta.Elem(p.child), value), w),
                else => return encode(value.*, w),
            },
            .slice => {
                if (p.child == u8) return writeString(value, w);
                try w.writeByte('[');
                for (value, 0..) |item, i| {
                    if (i != 0) try w.writeByte(',');
                    try encode(item, w);
                }
                return w.writeByte(']');
            },
            .many => {
                if (p.sentinel() == null) @compileError("cortex.encode: cannot encode " ++ @typeName(T));
                return encode(std.mem.span(value), w);
            },
            .c => @compileError("cortex.encode: cannot encode " ++ @typeName(T)),
        },
        .array => return encode(&value, w),
        .vector => |v| {
            const array: [v.len]v.child = value;
            return encode(&array, w);
        },
        else => @compileError("cortex.encode: cannot encode " ++ @typeName(T)),
    }
}

/// Bytes that need an escape inside a JSON string.
fn needsEscape(c: u8) bool {
    return c < 0x20 or c == '"' or c == '\\';
}

/// Writes `s` as a JSON string: `"`, `\` and control characters escaped, the rest raw.
pub fn writeString(s: []const u8, w: *Writer) Writer.Error!void {
    try w.writeByte('"');
    var start: usize = 0;
    for (s, 0..) |c, i| {
        if (!needsEscape(c)) continue;
        try w.writeAll(s[start..i]);
        start = i + 1;
        switch (c) {
            '"' => try w.writeAll("\\\""),
            '\\' => try w.writeAll("\\\\"),
            '\n' => try w.writeAll("\\n"),
            '\r' => try w.writeAll("\\r"),
            '\t' => try w.writeAll("\\t"),
            0x08 => try w.writeAll("\\b"),
            0x0C => try w.writeAll("\\f"),
            else => {
                const hex = "0123456789abcdef";
                try w.writeAll(&.{ '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF] });
            },
        }
    }
    try w.writeAll(s[start..]);
    try w.writeByte('"');
}

// ---------------------------------------------------------------------------------------------
// Input decoding.

/// Errors of `decode`. After `error.InvalidInput`, the `Diagnostic` holds the reason.
pub const DecodeError = error{ InvalidInput, OutOfMemory };

/// Why `decode` failed, e.g. `field "text": expected a string, got a number`.
pub const Diagnostic = struct {
    buf: [512]u8 = undefined,
    len: usize = 0,

    pub fn message(d: *const Diagnostic) []const u8 {
        return d.buf[0..d.len];
    }
};

/// Decodes the JSON text `input` into a value of type `T`. Unlike `std.json.parseFromSlice`,
/// strings are only taken from JSON strings, unknown keys are skipped, and failures name the
/// field (`field "items[2].id": expected an integer in [0, 255], got 300`):
///
///  * struct <- object. Unknown keys (any JSON, nested) are skipped; for a duplicated key the
///    last value wins; a missing field takes its default value, or `null` if it is optional,
///    and is an error otherwise.
///  * `[]const u8` <- string only (not an array of numbers). Points into `input` when the
///    string has no escapes, else is a decoded copy. `[]u8` and `[:0]const u8` are copies.
///  * integers <- numbers with an integral value (`3`, `3.0`, `3e2`) in range of the type;
///    floats <- numbers; `bool` <- true / false; `?T` <- null or T; enum <- its tag name.
///  * `[]T` / `[N]T` / tuples <- arrays (exactly N items for `[N]T` and tuples); `*T` <- T.
///  * `std.json.Value` <- any JSON; `cortex.RawJson` <- any JSON, kept as its text; `void` <-
///    any JSON, ignored. Types with a `jsonParse` method and tagged unions go to `std.json`.
///
/// The input must be one JSON document, valid UTF-8; escapes (surrogate pairs too) are decoded
/// and lone surrogates rejected. Allocations are not tracked: use an arena or
/// `cortex.allocator`, which never needs freeing.
pub fn decode(comptime T: type, gpa: Allocator, input: []const u8, diag: ?*Diagnostic) DecodeError!T {
    return decodeImpl(T, gpa, input, null, diag);
}

/// Like `decode`, but decodes strings in place, inside `input` (a decoded string is never
/// longer than its JSON form): no string is copied, and `[]u8` fields are mutable views into
/// `input`. `input` is left modified. This is what capabilities get.
pub fn decodeInPlace(comptime T: type, gpa: Allocator, input: []u8, diag: ?*Diagnostic) DecodeError!T {
    return decodeImpl(T, gpa, input, input, diag);
}

fn decodeImpl(comptime T: type, gpa: Allocator, input: []const u8, in_place: ?[]u8, diag: ?*Diagnostic) DecodeError!T {
    var d: Decoder = .{
        .gpa = gpa,
        .input = input,
        .in_place = in_place,
        .scanner = json.Scanner.initCompleteInput(gpa, input),
    };
    d.scanner.enableDiagnostics(&d.json_diag);
    const v = d.document(T) catch |e| {
        if (e == error.InvalidInput) if (diag) |out| d.writeMessage(out);
        return e;
    };
    return v;
}

const PathSegment = union(enum) {
    field: []const u8,
    index: usize,
};

const Decoder = struct {
    gpa: Allocator,
    input: []const u8,
    /// `input`, writable: strings are then decoded in place.
    in_place: ?[]u8,
    scanner: json.Scanner,
    json_diag: json.Diagnostics = .{},
    detail_buf: [400]u8 = undefined,
    detail_len: usize = 0,
    /// Innermost segment first (filled while the error propagates outwards).
    path: [max_path]PathSegment = undefined,
    path_len: usize = 0,
    path_truncated: bool = false,
    /// A syntax error: the message gets no field path.
    syntax_error: bool = false,

    const max_path = 16;

    fn document(d: *Decoder, comptime T: type) DecodeError!T {
        const v = try d.value(T);
        if (try d.peek() != .end_of_document) unreachable; // the scanner reports trailing data
        return v;
    }

    fn setDetail(d: *Decoder, comptime fmt: []const u8, args: anytype) void {
        d.detail_len = formatTruncated(&d.detail_buf, fmt, args).len;
    }

    fn invalid(d: *Decoder, comptime fmt: []const u8, args: anytype) DecodeError {
        d.setDetail(fmt, args);
        return error.InvalidInput;
    }

    fn mismatch(d: *Decoder, comptime expected: []const u8, got: json.TokenType) DecodeError {
        return d.invalid("expected " ++ expected ++ ", got {s}", .{tokenTypeName(got)});
    }

    fn pushPath(d: *Decoder, seg: PathSegment) void {
        if (d.path_len < max_path) {
            d.path[d.path_len] = seg;
            d.path_len += 1;
        } else {
            d.path_truncated = true;
        }
    }

    fn inField(d: *Decoder, name: []const u8, e: DecodeError) DecodeError {
        if (e == error.InvalidInput) d.pushPath(.{ .field = name });
        return e;
    }

    fn atIndex(d: *Decoder, i: usize, e: DecodeError) DecodeError {
        if (e == error.InvalidInput) d.pushPath(.{ .index = i });
        return e;
    }

    fn writeMessage(d: *const Decoder, out: *Diagnostic) void {
        var w: Writer = .fixed(&out.buf);
        if (d.path_len > 0 and !d.syntax_error) {
            w.writeAll("field \"") catch {};
            if (d.path_truncated) w.writeAll("...") catch {};
            var i = d.path_len;
            var first = !d.path_truncated;
            while (i > 0) {
                i -= 1;
                switch (d.path[i]) {
                    .field => |f| {
                        if (!first) w.writeByte('.') catch {};
                        w.writeAll(f) catch {};
                    },
                    .index => |n| w.print("[{d}]", .{n}) catch {},
                }
                first = false;
            }
            w.writeAll("\": ") catch {};
        }
        w.writeAll(d.detail_buf[0..d.detail_len]) catch {};
        out.len = utf8Prefix(w.buffered()).len;
    }

    /// Maps scanner errors: syntax errors become `InvalidInput` with the byte offset.
    fn scanError(d: *Decoder, e: anyerror) DecodeError {
        if (e == error.OutOfMemory) return error.OutOfMemory;
        d.syntax_error = true;
        return switch (e) {
            error.UnexpectedEndOfInput => d.invalid("invalid JSON: unexpected end of input", .{}),
            error.ValueTooLong => d.invalid("invalid JSON: value too long", .{}),
            else => d.invalid("invalid JSON at byte {d}", .{d.json_diag.getByteOffset()}),
        };
    }

    fn peek(d: *Decoder) DecodeError!json.TokenType {
        return d.scanner.peekNextTokenType() catch |e| d.scanError(e);
    }

    fn next(d: *Decoder) DecodeError!json.Token {
        return d.scanner.next() catch |e| d.scanError(e);
    }

    fn nextAlloc(d: *Decoder, when: json.AllocWhen) DecodeError!json.Token {
        return d.scanner.nextAllocMax(d.gpa, when, d.input.len) catch |e| d.scanError(e);
    }

    fn skip(d: *Decoder) DecodeError!void {
        d.scanner.skipValue() catch |e| return d.scanError(e);
    }

    fn expect(d: *Decoder, comptime expected: []const u8, want: json.TokenType) DecodeError!void {
        const got = try d.peek();
        if (got != want) return d.mismatch(expected, got);
    }

    fn value(d: *Decoder, comptime T: type) DecodeError!T {
        if (T == RawJson) {
            _ = try d.peek(); // skips whitespace: the cursor is now at the value
            const start = d.scanner.cursor;
            try d.skip();
            return .{ .bytes = d.input[start..d.scanner.cursor] };
        }
        if (T == json.Value) return d.viaStd(T);
        switch (@typeInfo(T)) {
            .void => return d.skip(),
            .bool => {
                const got = try d.peek();
                if (got != .true and got != .false) return d.mismatch("a boolean", got);
                return (try d.next()) == .true;
            },
            .int => {
                try d.expect("an integer", .number);
                const s = try d.numberSlice();
                return parseInteger(T, s) orelse
                    d.invalid("expected an integer in [{d}, {d}], got {s}", .{
                        std.math.minInt(T), std.math.maxInt(T), s,
                    });
            },
            .float => {
                try d.expect("a number", .number);
                const s = try d.numberSlice();
                return std.fmt.parseFloat(T, s) catch d.invalid("invalid number {s}", .{s});
            },
            .optional => |o| {
                if (try d.peek() == .null) {
                    _ = try d.next();
                    return null;
                }
                return try d.value(o.child);
            },
            .@"enum" => |e| {
                if (comptime std.meta.hasFn(T, "jsonParse")) return d.viaStd(T);
                try d.expect("a string", .string);
                const s = try d.string();
                return std.meta.stringToEnum(T, s) orelse
                    d.invalid("expected one of " ++ comptime enumNames(e.field_names) ++ ", got \"{s}\"", .{s});
            },
            .pointer => |p| switch (p.size) {
                .one => {
                    const ptr = try d.gpa.create(p.child);
                    ptr.* = try d.value(p.child);
                    return ptr;
                },
                .slice => {
                    if (p.child == u8) return d.stringOf(T, p);
                    try d.expect("an array", .array_begin);
                    _ = try d.next();
                    var list: std.ArrayList(p.child) = .empty;
                    var i: usize = 0;
                    while (try d.peek() != .array_end) : (i += 1) {
                        const item = d.value(p.child) catch |e| return d.atIndex(i, e);
                        try list.append(d.gpa, item);
                    }
                    _ = try d.next();
                    if (p.sentinel()) |s| return list.toOwnedSliceSentinel(d.gpa, s);
                    return list.toOwnedSlice(d.gpa);
                },
                else => @compileError("cortex.decode: unsupported pointer type " ++ @typeName(T)),
            },
            .array => |a| {
                var r: T = undefined;
                try d.arrayInto(a.child, a.len, &r);
                return r;
            },
            .@"struct" => |s| {
                if (s.is_tuple) {
                    const n = s.field_types.len;
                    var r: T = undefined;
                    try d.expect("an array of " ++ std.fmt.comptimePrint("{d}", .{n}) ++ " items", .array_begin);
                    _ = try d.next();
                    inline for (s.field_types, 0..) |FT, i| {
                        if (try d.peek() == .array_end) return d.invalid("expected {d} items, got {d}", .{ n, i });
                        r[i] = d.value(FT) catch |e| return d.atIndex(i, e);
                    }
                    if (try d.peek() != .array_end) return d.invalid("expected {d} items, got more", .{n});
                    _ = try d.next();
                    return r;
                }
                if (comptime std.meta.hasFn(T, "jsonParse")) return d.viaStd(T);
                return d.object(T, s);
            },
            .@"union" => return d.viaStd(T),
            else => @compileError("cortex.decode: unsupported type " ++ @typeName(T)),
        }
    }

    fn arrayInto(d: *Decoder, comptime Child: type, comptime n: usize, r: *[n]Child) DecodeError!void {
        try d.expect("an array of " ++ std.fmt.comptimePrint("{d}", .{n}) ++ " items", .array_begin);
        _ = try d.next();
        var i: usize = 0;
        while (try d.peek() != .array_end) : (i += 1) {
            if (i == n) return d.invalid("expected {d} items, got more", .{n});
            r[i] = d.value(Child) catch |e| return d.atIndex(i, e);
        }
        if (i != n) return d.invalid("expected {d} items, got {d}", .{ n, i });
        _ = try d.next();
    }

    fn object(d: *Decoder, comptime T: type, comptime s: std.builtin.Type.Struct) DecodeError!T {
        try d.expect("an object", .object_begin);
        _ = try d.next();
        var r: T = undefined;
        var seen: [s.field_names.len]bool = @splat(false);
        while (try d.peek() != .object_end) {
            const key = try d.string();
            matched: {
                inline for (s.field_names, s.field_types, s.field_attrs, 0..) |name, FT, attrs, i| {
                    if (attrs.@"comptime") @compileError("cortex.decode: comptime field " ++ name);
                    if (std.mem.eql(u8, name, key)) {
                        @field(r, name) = d.value(FT) catch |e| return d.inField(name, e);
                        seen[i] = true;
                        break :matched;
                    }
                }
                try d.skip();
            }
        }
        _ = try d.next();
        inline for (s.field_names, s.field_types, s.field_attrs, 0..) |name, FT, attrs, i| {
            if (!seen[i]) {
                if (attrs.defaultValue(FT)) |default| {
                    @field(r, name) = default;
                } else if (@typeInfo(FT) == .optional) {
                    @field(r, name) = null;
                } else {
                    return d.invalid("missing required field \"" ++ name ++ "\"", .{});
                }
            }
        }
        return r;
    }

    /// A string field of type `T` (`[]const u8`, `[]u8`, `[:0]const u8`, ...).
    fn stringOf(d: *Decoder, comptime T: type, comptime p: std.builtin.Type.Pointer) DecodeError!T {
        try d.expect("a string", .string);
        if (p.sentinel()) |sentinel| {
            const s = try d.string();
            const copy = try d.gpa.allocSentinel(u8, s.len, sentinel);
            @memcpy(copy, s);
            return copy;
        }
        if (d.in_place != null) return d.stringInPlace();
        if (p.attrs.@"const") return d.string();
        return switch (try d.nextAlloc(.alloc_always)) {
            .allocated_string => |s| s,
            else => unreachable,
        };
    }

    /// The next token, a string (key or value), decoded.
    fn string(d: *Decoder) DecodeError![]const u8 {
        if (d.in_place != null) return d.stringInPlace();
        return switch (try d.nextAlloc(.alloc_if_needed)) {
            .string => |s| s,
            .allocated_string => |s| s,
            else => unreachable,
        };
    }

    /// Decodes the next string token into the input buffer, over its own JSON text: the
    /// write position never passes the scanner's read position.
    fn stringInPlace(d: *Decoder) DecodeError![]u8 {
        const buf = d.in_place.?;
        _ = try d.peek(); // the cursor is now at the opening quote
        const start = d.scanner.cursor + 1;
        var w = start;
        while (true) {
            const tok = try d.next();
            const piece: []const u8 = switch (tok) {
                .partial_string, .string => |s| s,
                .partial_string_escaped_1 => |*a| a,
                .partial_string_escaped_2 => |*a| a,
                .partial_string_escaped_3 => |*a| a,
                .partial_string_escaped_4 => |*a| a,
                else => unreachable,
            };
            if (piece.ptr != buf.ptr + w) std.mem.copyForwards(u8, buf[w .. w + piece.len], piece);
            w += piece.len;
            if (tok == .string) return buf[start..w];
        }
    }

    fn numberSlice(d: *Decoder) DecodeError![]const u8 {
        return switch (try d.nextAlloc(.alloc_if_needed)) {
            .number => |s| s,
            .allocated_number => |s| s,
            else => unreachable,
        };
    }

    /// `std.json.Value`, tagged unions and types with their own `jsonParse`.
    fn viaStd(d: *Decoder, comptime T: type) DecodeError!T {
        const options: json.ParseOptions = .{
            .ignore_unknown_fields = true,
            .duplicate_field_behavior = .use_last,
            .max_value_len = d.input.len,
            .allocate = .alloc_if_needed,
        };
        return json.innerParse(T, d.gpa, &d.scanner, options) catch |e| switch (e) {
            error.OutOfMemory => error.OutOfMemory,
            error.SyntaxError, error.UnexpectedEndOfInput, error.ValueTooLong => d.scanError(e),
            else => d.invalid("invalid value for {s}: {s}", .{ @typeName(T), @errorName(e) }),
        };
    }
};

fn tokenTypeName(t: json.TokenType) []const u8 {
    return switch (t) {
        .object_begin => "an object",
        .array_begin => "an array",
        .string => "a string",
        .number => "a number",
        .true, .false => "a boolean",
        .null => "null",
        .end_of_document => "the end of the input",
        .object_end, .array_end => "the end of a container",
    };
}

fn enumNames(comptime names: []const [:0]const u8) []const u8 {
    var out: []const u8 = "";
    for (names, 0..) |n, i| {
        out = out ++ (if (i == 0) "" else ", ") ++ "\"" ++ n ++ "\"";
    }
    return out;
}

fn parseInteger(comptime T: type, s: []const u8) ?T {
    if (json.isNumberFormattedLikeAnInteger(s)) return std.fmt.parseInt(T, s, 10) catch null;
    const f = std.fmt.parseFloat(f64, s) catch return null;
    if (!std.math.isFinite(f) or @round(f) != f) return null;
    if (f < @as(f64, @floatFromInt(std.math.minInt(T))) or
        f > @as(f64, @floatFromInt(std.math.maxInt(T)))) return null;
    return std.math.cast(T, @as(i128, @intFromFloat(f)));
}

// ---------------------------------------------------------------------------------------------
// Tests of decode / encode (natively: `python -m ziglang test sdk/zig/cortex.zig`).

const testing = std.testing;

fn expectDecodeError(comptime T: type, input: []const u8, message: []const u8) !void {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    var diag: Diagnostic = .{};
    try testing.expectError(error.InvalidInput, decode(T, arena.allocator(), input, &diag));
    try testing.expectEqualStrings(message, diag.message());
    // The in-place decoder reports the same.
    const copy = try arena.allocator().dupe(u8, input);
    var diag2: Diagnostic = .{};
    try testing.expectError(error.InvalidInput, decodeInPlace(T, arena.allocator(), copy, &diag2));
    try testing.expectEqualStrings(message, diag2.message());
}

test "decode a struct: unknown keys skipped, last duplicate wins, escapes" {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    const In = struct { text: []const u8, mode: []const u8, n: ?u32, k: u8 = 7, m: []u8 };
    const src =
        \\{"x": {"a": [1, {"b": null, "c": "}\""}]}, "text": "a\u00e9\ud83d\ude00\n\"\/", "mode": "m1",
        \\ "m\u006fde": "m2", "m": "abc"}
    ;
    for ([_]bool{ false, true }) |in_place| {
        const buf = try arena.allocator().dupe(u8, src);
        const v = if (in_place)
            try decodeInPlace(In, arena.allocator(), buf, null)
        else
            try decode(In, arena.allocator(), buf, null);
        try testing.expectEqualStrings("a\u{e9}\u{1F600}\n\"/", v.text);
        try testing.expectEqualStrings("m2", v.mode);
        try testing.expectEqual(@as(?u32, null), v.n);
        try testing.expectEqual(@as(u8, 7), v.k);
        try testing.expectEqualStrings("abc", v.m);
        if (in_place) {
            // Decoded in place: the strings point into the input buffer.
            try testing.expect(@intFromPtr(v.text.ptr) > @intFromPtr(buf.ptr));
            try testing.expect(@intFromPtr(v.text.ptr) < @intFromPtr(buf.ptr) + buf.len);
        }
    }
}

test "decode errors name the field" {
    const In = struct { text: []const u8, mode: []const u8 };
    try expectDecodeError(In, "{\"mode\":\"x\"}", "missing required field \"text\"");
    try expectDecodeError(In, "{\"text\":5,\"mode\":\"x\"}", "field \"text\": expected a string, got a number");
    try expectDecodeError(In, "{\"text\":[104],\"mode\":\"x\"}", "field \"text\": expected a string, got an array");
    try expectDecodeError(In, "[1]", "expected an object, got an array");
    try expectDecodeError(In, "\"s\"", "expected an object, got a string");
    try expectDecodeError(In, "{\"text\":\"\\ud800\",\"mode\":\"x\"}", "invalid JSON at byte 15");
    try expectDecodeError(In, "{\"text\":\"a\",\"mode\":\"x\"} x", "invalid JSON at byte 24");
    try expectDecodeError(In, "{\"text\":\"a\"", "invalid JSON: unexpected end of input");
    const Any = struct {};
    try expectDecodeError(Any, "{} ,", "invalid JSON at byte 3");
    try expectDecodeError(Any, "{}}", "invalid JSON at byte 2");
    try expectDecodeError(Any, "{} {}", "invalid JSON at byte 3");
    try expectDecodeError(u8, "1 2", "invalid JSON at byte 2");
    try expectDecodeError(Any, "", "invalid JSON: unexpected end of input");
    const Nested = struct { items: []const struct { id: u8 } };
    try expectDecodeError(Nested, "{\"items\":[{\"id\":1},{\"id\":300}]}", "field \"items[1].id\": expected an integer in [0, 255], got 300");
    try expectDecodeError(Nested, "{\"items\":[{\"id\":1.5}]}", "field \"items[0].id\": expected an integer in [0, 255], got 1.5");
    const E = struct { unit: enum { c, f } };
    try expectDecodeError(E, "{\"unit\":\"k\"}", "field \"unit\": expected one of \"c\", \"f\", got \"k\"");
}

test "decode raw json, numbers, arrays and std.json.Value" {
    var arena = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena.deinit();
    const In = struct { meta: RawJson, n: i64, f: f64, list: []const bool, pair: struct { u8, []const u8 }, t: [2]u1 };
    const v = try decode(In, arena.allocator(), "{ \"meta\" :  {\"a\": [1, 2]} , \"n\": 3e2, \"f\": 1.5, \"list\": [true,false], \"pair\": [1, \"x\"], \"t\": [0, 1]}", null);
    try testing.expectEqualStrings("{\"a\": [1, 2]}", v.meta.bytes);
    try testing.expectEqual(@as(i64, 300), v.n);
    try testing.expectEqual(@as(f64, 1.5), v.f);
    try testing.expectEqual(@as(usize, 2), v.list.len);
    try testing.expectEqualStrings("x", v.pair[1]);
    try testing.expectEqual(@as(u1, 1), v.t[1]);
    const any = try decode(json.Value, arena.allocator(), "{\"a\": [1, \"x\"]}", null);
    try testing.expectEqualStrings("x", any.object.get("a").?.array.items[1].string);
}

fn expectEncoded(expected: []const u8, value: anytype) !void {
    var aw: Writer.Allocating = .init(testing.allocator);
    defer aw.deinit();
    try encode(value, &aw.writer);
    try testing.expectEqualStrings(expected, aw.written());
}

test "encode" {
    const Out = struct { result: []const u8, length: usize, hash: u64, opt: ?bool, skip: void = {}, raw: RawJson };
    try expectEncoded(
        \\{"result":"a\"\\\n\u0001é😀/","length":3,"hash":18446744073709551615,"opt":null,"raw":[1, 2]}
    , Out{ .result = "a\"\\\n\x01é😀/", .length = 3, .hash = std.math.maxInt(u64), .opt = null, .raw = .{ .bytes = "[1, 2]" } });
    try expectEncoded("[1,\"x\",[true,false],1.5]", .{ 1, "x", [_]bool{ true, false }, @as(f64, 1.5) });
    try expectEncoded("{\"e\":\"b\",\"s\":[]}", struct { e: enum { a, b }, s: []const u32 }{ .e = .b, .s = &.{} });
    var aw: Writer.Allocating = .init(testing.allocator);
    defer aw.deinit();
    try testing.expectError(error.NonFiniteNumber, encode(std.math.nan(f64), &aw.writer));
}

test "messages are cut on a UTF-8 boundary" {
    try testing.expectEqualStrings("ab", utf8Prefix("ab"));
    try testing.expectEqualStrings("a\u{e9}", utf8Prefix("a\u{e9}"));
    try testing.expectEqualStrings("a", utf8Prefix("a\xc3"));
    try testing.expectEqualStrings("a", utf8Prefix("a\xf0\x9f\x98"));
    try testing.expectEqualStrings("a\u{1F600}", utf8Prefix("a\u{1F600}"));
    var buf: [5]u8 = undefined;
    try testing.expectEqualStrings("ab", formatTruncated(&buf, "ab{s}", .{"\u{1F600}"}));
    try testing.expectEqualStrings("ab\u{e9}c", formatTruncated(&buf, "ab{s}", .{"\u{e9}cd"}));
}
