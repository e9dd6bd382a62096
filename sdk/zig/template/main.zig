//! {{name}}: a Cortex Runtime plugin written in Zig with the Cortex Zig SDK.
//!
//! Each capability is a plain function from a decoded input to a result, exported with one
//! line in the `comptime` block at the end. The SDK (`cortex`) does the rest: the allocator
//! export, JSON decoding and encoding, the result header, errors and logs.
//! Build with ./build.sh; the guide is docs/guides/zig.md in the Cortex Runtime repository.

const std = @import("std");
const cortex = @import("cortex");

/// Panics report their message through cortex.error before trapping.
pub const panic = cortex.panic;

/// The input JSON: {"name": string}. A missing or non-string "name" never reaches `greet`:
/// the SDK fails the call with `invalid input: missing required field "name"` (a PluginError).
/// Other keys are ignored.
const GreetInput = struct {
    name: []const u8,
};

/// The result JSON: {"greeting": string}.
const GreetOutput = struct {
    greeting: []const u8,
};

pub fn greet(ctx: *cortex.Context, input: GreetInput) !GreetOutput {
    if (input.name.len == 0) return ctx.fail("\"name\" must not be empty", .{});
    ctx.debug("greeting {s}", .{input.name});
    const greeting = try std.fmt.allocPrint(ctx.allocator, "hello, {s}", .{input.name});
    return .{ .greeting = greeting };
}

comptime {
    cortex.exportCapability("greet", greet);
}
