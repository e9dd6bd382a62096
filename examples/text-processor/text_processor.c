/*
 * text-processor: the product document's example plugin, written in C for the Cortex plugin
 * ABI v1 (docs/abi.md) with the C/C++ SDK (sdk/c/cortex_plugin.h).
 *
 * Build as a WASI reactor (see build.sh):
 *   python -m ziglang cc --target=wasm32-wasi -mexec-model=reactor -O2 -I ../../sdk/c \
 *       -Wl,--export=malloc -Wl,-z,stack-size=65536 -o text_processor.wasm text_processor.c
 *
 * Capability `transform`
 *   input : {"text": string, "mode": string}   (keys in any order, extra keys ignored)
 *   output: {"result": string, "length": N, "hash": N}
 *
 *   mode "reverse"   reverses the text by Unicode code point (UTF-8 aware)
 *   mode "uppercase" / "lowercase"
 *                    change ASCII letters only. This is deliberate: full Unicode case
 *                    mapping differs between language runtimes, and ASCII-only mapping
 *                    gives byte-identical results in every guest language.
 *   mode "rot13"     rotates ASCII letters; every other character is unchanged
 *   any other mode   leaves the text unchanged
 *
 *   length = size of `result` in UTF-8 bytes
 *   hash   = fold over the UTF-8 bytes of `result`: acc = acc * 31 + byte (wrapping u64)
 *
 * Memory: the SDK decodes the input JSON (escapes, surrogate pairs, UTF-8 validation) in
 * place, inside the buffer the host wrote it into, and the text is transformed there. The
 * result is then built in that same buffer, grown with realloc() to the exact output size,
 * rather than in a separate cortex_writer. This matters because the malloc linked by
 * `zig cc` rounds large blocks up to a power of two (observed with ziglang 0.17): a 1.5 MB
 * input already occupies 2 MiB, and a second 2 MiB block for the output would not fit the
 * manifest's maxMemoryPages (50 pages = 3.2 MB). Growing the input block in place needs no
 * extra memory. Every pass is linear. (A plugin without such a tight limit just uses
 * cortex_writer: see conformance/plugins/c/plugin.c.)
 *
 * The manifest keeps the document's "allocator": "wasi": the host passes the input through
 * wasi-libc's malloc (exported by build.sh), so the SDK's own allocator export is turned off
 * (CORTEX_ALLOCATOR_WASI) and `input` is the start of a malloc block that realloc() may grow.
 *
 * Errors (invalid JSON, a non-object, a missing or non-string field) are reported through
 * cortex.error by the SDK, so the caller gets a PluginError with the reason.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CORTEX_ALLOCATOR_WASI /* "allocator": "wasi": the host calls the exported malloc */
#include "cortex_plugin.h"

#define LOG_MODE_MAX 64 /* bytes of the mode echoed in the log line */

static void reverse_bytes(char *s, size_t n) {
    if (n < 2) return;
    size_t i = 0, j = n - 1;
    while (i < j) {
        char t = s[i];
        s[i++] = s[j];
        s[j--] = t;
    }
}

/* Reverses valid UTF-8 by code point: reverse all bytes, then restore the byte order
 * inside each multi-byte sequence (which now reads continuation bytes, then lead). */
static void reverse_utf8(char *s, size_t n) {
    reverse_bytes(s, n);
    size_t i = 0;
    while (i < n) {
        if (((uint8_t)s[i] & 0xC0) == 0x80) {
            size_t j = i;
            while (j < n && ((uint8_t)s[j] & 0xC0) == 0x80) j++;
            /* s[j] is the lead byte of this sequence */
            size_t end = j < n ? j + 1 : n;
            reverse_bytes(s + i, end - i);
            i = end;
        } else {
            i++;
        }
    }
}

static void ascii_upper(char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'a' && s[i] <= 'z') s[i] = (char)(s[i] - 'a' + 'A');
}

static void ascii_lower(char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
}

static void ascii_rot13(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            s[i] = (char)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z')
            s[i] = (char)('A' + (c - 'A' + 13) % 26);
    }
}

static uint64_t simple_hash(const char *s, size_t n) {
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) acc = acc * 31u + (uint8_t)s[i];
    return acc;
}

/* Decimal digits of v into out[0..20); returns how many. */
static size_t u64_to_dec(uint64_t v, char out[20]) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (v % 10));
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* Writes the JSON-escaped form of s[0..n) at o. o may overlap s as long as s starts at or
 * after o + cortex_json_escaped_len(s, n) - n (each byte is read before its escape is
 * written, and an escape never writes past the next unread byte). s is valid UTF-8 (the SDK
 * validated it), so bytes >= 0x80 are copied as they are. */
static char *write_escaped(char *o, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
        } else {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 0xF];
            }
        }
    }
    return o;
}

static char *write_lit(char *o, const char *s, size_t n) {
    memcpy(o, s, n);
    return o + n;
}

/* Builds [length][{"result":"<text>","length":N,"hash":N}] in the input block (grown with
 * realloc to the exact size) and returns it. `text` (n bytes) lies inside the block. */
static cortex_result_t build_result(char *input, const char *text, size_t n) {
    static const char P1[] = "{\"result\":\"";
    static const char P2[] = "\",\"length\":";
    static const char P3[] = ",\"hash\":";
    char len_dec[20], hash_dec[20];
    size_t len_digits = u64_to_dec(n, len_dec);
    size_t hash_digits = u64_to_dec(simple_hash(text, n), hash_dec);
    uint64_t esc = cortex_json_escaped_len(text, n);
    uint64_t head = 4 + (sizeof P1 - 1); /* length header + opening of the object */
    uint64_t total = head + esc + (sizeof P2 - 1) + len_digits + (sizeof P3 - 1) + hash_digits + 1;
    if (total > 0x7FFFFFFFu) return cortex_error("output too large");

    size_t text_off = (size_t)(text - input);
    char *out = realloc(input, (size_t)total); /* in place when the block is big enough */
    if (out == NULL) return cortex_error("out of memory while building the output");
    /* Park the text so that it ends where its escaped form ends, then escape it forward to
     * its final place (see write_escaped). The bytes before it are no longer needed. */
    char *parked = out + head + esc - n;
    memmove(parked, out + text_off, n);
    char *o = write_escaped(out + head, parked, n);
    o = write_lit(o, P2, sizeof P2 - 1);
    o = write_lit(o, len_dec, len_digits);
    o = write_lit(o, P3, sizeof P3 - 1);
    o = write_lit(o, hash_dec, hash_digits);
    *o = '}';

    uint32_t json_len = (uint32_t)(total - 4);
    out[0] = (char)(json_len & 0xFF);
    out[1] = (char)((json_len >> 8) & 0xFF);
    out[2] = (char)((json_len >> 16) & 0xFF);
    out[3] = (char)((json_len >> 24) & 0xFF);
    write_lit(out + 4, P1, sizeof P1 - 1);
    return (cortex_result_t)(uintptr_t)out;
}

/* One debug line per call: "transform mode=<mode> bytes=<decoded text bytes>", the mode cut
 * to LOG_MODE_MAX bytes on a code point boundary. */
static void log_call(const cortex_value *mode, size_t text_len) {
    size_t n = mode->len;
    const char *more = "";
    if (n > LOG_MODE_MAX) {
        n = LOG_MODE_MAX;
        while (n > 0 && ((uint8_t)mode->str[n] & 0xC0) == 0x80) n--;
        more = "...";
    }
    cortex_logf(CORTEX_LOG_DEBUG, "transform mode=%.*s%s bytes=%zu", (int)n, mode->str, more,
                text_len);
}

CORTEX_CAPABILITY(transform, input, input_len) {
    cortex_value text, mode;
    cortex_field fields[] = {{"text", &text}, {"mode", &mode}};
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&text, CORTEX_JSON_STRING, "text")) return 0;
    if (!cortex_expect(&mode, CORTEX_JSON_STRING, "mode")) return 0;

    log_call(&mode, text.len);

    char *s = text.str; /* the decoded text, in the input buffer: transformed in place */
    size_t n = text.len;
    if (cortex_value_equals(&mode, "reverse"))
        reverse_utf8(s, n);
    else if (cortex_value_equals(&mode, "uppercase"))
        ascii_upper(s, n);
    else if (cortex_value_equals(&mode, "lowercase"))
        ascii_lower(s, n);
    else if (cortex_value_equals(&mode, "rot13"))
        ascii_rot13(s, n);
    /* any other mode: unchanged */

    return build_result(input, s, n);
}
