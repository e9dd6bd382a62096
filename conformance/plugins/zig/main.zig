//! The Zig conformance plugin (conformance/README.md): transform, echo, fail and log, written
//! against the public surface of the Zig SDK (sdk/zig/cortex.zig) only. Build with ./build.sh.

const std = @import("std");
const cortex = @import("cortex");

/// Panics report their message through cortex.error before trapping.
pub const panic = cortex.panic;

// ---------------------------------------------------------------------------------------------
// transform

/// `text` is a `[]u8`: the SDK decodes input strings in place, inside the input buffer, so the
/// capability may transform the text where it lies, without a copy.
const TransformInput = struct {
    text: []u8,
    mode: []const u8,
};

/// Fields are encoded in declaration order: {"result": ..., "length": N, "hash": N}.
const TransformOutput = struct {
    result: []const u8,
    length: usize,
    hash: u64,
};

/// `reverse` (by code point), `uppercase` / `lowercase` / `rot13` (ASCII letters only);
/// any other mode leaves the text unchanged.
pub fn transform(input: TransformInput) TransformOutput {
    const text = input.text;
    const mode = input.mode;
    if (std.mem.eql(u8, mode, "reverse")) {
        reverseCodePoints(text);
    } else if (std.mem.eql(u8, mode, "uppercase")) {
        for (text) |*c| c.* = std.ascii.toUpper(c.*);
    } else if (std.mem.eql(u8, mode, "lowercase")) {
        for (text) |*c| c.* = std.ascii.toLower(c.*);
    } else if (std.mem.eql(u8, mode, "rot13")) {
        for (text) |*c| c.* = rot13(c.*);
    }
    return .{ .result = text, .length = text.len, .hash = simpleHash(text) };
}

/// Reverses UTF-8 text by code point, in place: reverses all bytes, then puts the bytes of
/// each multi-byte sequence (now continuation bytes first, lead byte last) back in order.
/// The SDK hands over valid UTF-8 only (the JSON scanner validates strings).
fn reverseCodePoints(text: []u8) void {
    std.mem.reverse(u8, text);
    var i: usize = 0;
    while (i < text.len) {
        if (text[i] & 0xC0 != 0x80) {
            i += 1;
            continue;
        }
        var j = i;
        while (j < text.len and text[j] & 0xC0 == 0x80) j += 1;
        const end = @min(j + 1, text.len); // text[j] is the lead byte of this sequence
        std.mem.reverse(u8, text[i..end]);
        i = end;
    }
}

fn rot13(c: u8) u8 {
    return switch (c) {
        'a'...'z' => 'a' + (c - 'a' + 13) % 26,
        'A'...'Z' => 'A' + (c - 'A' + 13) % 26,
        else => c,
    };
}

/// h = h * 31 + byte over the UTF-8 bytes, wrapping unsigned 64-bit, starting at 0.
fn simpleHash(bytes: []const u8) u64 {
    var h: u64 = 0;
    for (bytes) |b| h = h *% 31 +% b;
    return h;
}

// ---------------------------------------------------------------------------------------------
// echo, fail, log

/// Returns the input bytes unchanged (the SDK's raw-bytes path).
pub fn echo(input: cortex.RawJson) cortex.RawJson {
    return input;
}

const Message = struct {
    message: []const u8,
};

/// Fails the call with exactly the given message.
pub fn fail(ctx: *cortex.Context, input: Message) cortex.Error!void {
    return ctx.failMessage(input.message);
}

/// Logs the message at level info and returns {"logged": true}.
pub fn log(ctx: *cortex.Context, input: Message) struct { logged: bool } {
    ctx.logMessage(.info, input.message);
    return .{ .logged = true };
}

comptime {
    cortex.exportCapability("transform", transform);
    cortex.exportCapability("echo", echo);
    cortex.exportCapability("fail", fail);
    cortex.exportCapability("log", log);
}
