// conformance-cpp: the conformance plugin for C++ (conformance/README.md), written against the
// public surface of sdk/c/cortex_plugin.h only (its C API plus the C++17 `cortex::` layer).
// Built with -fno-exceptions -fno-rtti: nothing here throws, and failures go through
// cortex::error / cortex_expect like in C.
//
//   transform  {"text": string, "mode": string} -> {"result": string, "length": N, "hash": N}
//   echo       any JSON -> the same bytes
//   fail       {"message": string} -> PluginError(message)
//   log        {"message": string} -> logs message at info, {"logged": true}

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cortex_plugin.h"

namespace {

constexpr bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Reverses valid UTF-8 by code point: reverse all bytes, then restore the order of the bytes
// inside each multi-byte sequence (which now read continuation bytes first, lead byte last).
void reverse_utf8(char *begin, char *end) {
    std::reverse(begin, end);
    for (char *p = begin; p != end;) {
        if (is_continuation(*p)) {
            char *q = std::find_if_not(p, end, is_continuation);  // q: the lead byte
            char *stop = q == end ? end : q + 1;
            std::reverse(p, stop);
            p = stop;
        } else {
            ++p;
        }
    }
}

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char ascii_rot13(char c) {
    if (c >= 'a' && c <= 'z') return static_cast<char>('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z') return static_cast<char>('A' + (c - 'A' + 13) % 26);
    return c;
}

// h = h * 31 + byte over the UTF-8 bytes, wrapping unsigned 64-bit.
std::uint64_t simple_hash(std::string_view s) {
    std::uint64_t h = 0;
    for (char c : s) h = h * 31u + static_cast<unsigned char>(c);
    return h;
}

// Reads {"message": string} from the input; false after reporting the error.
bool read_message(char *input, std::size_t input_len, cortex_value &message) {
    cortex_field fields[] = {{"message", &message}};
    return cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields)) &&
           cortex_expect(&message, CORTEX_JSON_STRING, "message");
}

}  // namespace

CORTEX_CAPABILITY(transform, input, input_len) {
    cortex_value text, mode;
    cortex_field fields[] = {{"text", &text}, {"mode", &mode}};
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&text, CORTEX_JSON_STRING, "text")) return 0;
    if (!cortex_expect(&mode, CORTEX_JSON_STRING, "mode")) return 0;

    // text.str is the decoded text inside the input buffer: transform it in place.
    char *begin = text.str;
    char *end = text.str + text.len;
    const std::string_view m = cortex::view(mode);
    if (m == "reverse")
        reverse_utf8(begin, end);
    else if (m == "uppercase")
        std::transform(begin, end, begin, ascii_upper);
    else if (m == "lowercase")
        std::transform(begin, end, begin, ascii_lower);
    else if (m == "rot13")
        std::transform(begin, end, begin, ascii_rot13);
    // any other mode: unchanged

    const std::string_view result = cortex::view(text);
    return cortex::Writer(result.size() + 64)  // sized up front: one block for a large result
        .begin_object()
        .key("result").string(result)
        .key("length").uinteger(result.size())
        .key("hash").uinteger(simple_hash(result))
        .end_object()
        .finish();
}

// The raw-bytes path: the input buffer itself is the result (no copy).
CORTEX_CAPABILITY(echo, input, input_len) { return cortex::result({input, input_len}); }

CORTEX_CAPABILITY(fail, input, input_len) {
    cortex_value message;
    if (!read_message(input, input_len, message)) return 0;
    return cortex::error(cortex::view(message));
}

CORTEX_CAPABILITY(log, input, input_len) {
    cortex_value message;
    if (!read_message(input, input_len, message)) return 0;
    cortex::log(CORTEX_LOG_INFO, cortex::view(message));
    return cortex::result(R"({"logged":true})");
}
