/*
 * cortex_plugin.h - the C/C++ SDK for Cortex Runtime plugins (plugin ABI v1, docs/abi.md).
 *
 * A single header: nothing to compile separately, no #define needed before including it;
 * every function is `static inline` (unused ones cost nothing), and the two symbols that must
 * exist once per module (the `cortex_alloc` export and the bookkeeping of the input buffer) are
 * weak definitions, so the header can be included from any number of .c/.cpp files.
 *
 * What it does for you
 *   - exports the allocator the host uses for the input: `cortex_alloc` (manifest
 *     `"wasm": {"allocator": "custom"}`, or leave "auto"), implemented on malloc (or, with
 *     -DCORTEX_ALLOCATOR_WASI and -Wl,--export=malloc, wasi-libc's malloc: "allocator": "wasi");
 *   - declares capabilities: CORTEX_CAPABILITY(name, input, input_len) { ... } exports `name`
 *     with the ABI signature (i32 ptr, i32 len) -> i32 and hands you the input bytes;
 *   - writes the result: cortex_result() (JSON text you already have, e.g. the input itself)
 *     or the cortex_writer JSON builder (escaping, numbers, objects, arrays);
 *   - reads the input: a strict, allocation-free JSON reader that decodes strings in place
 *     (escapes, surrogate pairs, UTF-8 validation) and skips values you do not ask for;
 *   - reports errors (cortex_error, cortex_errorf -> the caller gets PluginError(message)) and
 *     logs (cortex_log, cortex_logf -> structlog events "plugin.log").
 *
 * A complete plugin:
 *
 *     #include "cortex_plugin.h"
 *
 *     CORTEX_CAPABILITY(greet, input, input_len) {
 *         cortex_value name;
 *         cortex_field fields[] = {{"name", &name}};
 *         if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
 *         if (!cortex_expect(&name, CORTEX_JSON_STRING, "name")) return 0;
 *
 *         cortex_writer w;
 *         cortex_writer_init(&w, name.len + 32);
 *         cortex_begin_object(&w);
 *         cortex_write_key(&w, "greeting");
 *         cortex_string_begin(&w);
 *         cortex_string_append_cstr(&w, "hello, ");
 *         cortex_string_append(&w, name.str, name.len);
 *         cortex_string_end(&w);
 *         cortex_end_object(&w);
 *         return cortex_writer_finish(&w);
 *     }
 *
 * Build (zig's clang and wasi-libc from PyPI `ziglang`; plain clang + wasi-libc works too):
 *
 *     python -m ziglang cc --target=wasm32-wasi -mexec-model=reactor -O2 \
 *         -I sdk/c -Wl,-z,stack-size=262144 -Wl,--strip-all -o plugin.wasm plugin.c
 *
 *   C++: `python -m ziglang c++ ... -fno-exceptions -fno-rtti` (the header compiles as C11 and
 *   as C++11 or later; with C++17 it also offers the small `cortex::` layer at the end).
 *   -mexec-model=reactor makes a module that exports `_initialize` (which wasi-libc uses to run
 *   C++ static constructors); the host calls it once per fresh instance. Do not build a
 *   command (`_start`): the host refuses it. Set the stack size: zig's default (16 MiB) is more
 *   than the default memory limit (256 pages).
 *
 * Memory and lifetime. Every call runs in a fresh instance that is thrown away afterwards, so
 * nothing needs to be freed, and globals start from their initial values on every call. The
 * input buffer is yours to modify: the reader decodes strings in place in it, and a result
 * that lies inside it is returned without a copy. The malloc of zig's wasi-libc rounds large
 * blocks up to a power of two; size the writer up front (cortex_writer_init's capacity) when
 * the output is large, to use one block instead of a chain of doublings.
 *
 * Error convention. Functions that can fail because of the input or of memory report the
 * problem through cortex.error themselves and return 0; the capability then returns 0:
 *     if (!cortex_json_fields(...)) return 0;
 * The caller sees PluginError(message). Only the first reported error of a call counts.
 */
#ifndef CORTEX_PLUGIN_H
#define CORTEX_PLUGIN_H

#if !defined(__wasm32__)
#error "cortex_plugin.h is for WebAssembly plugins: compile with --target=wasm32-wasi"
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
/* The header is shared with C, so it uses C casts: keep -Wold-style-cast quiet about them. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wold-style-cast"
#define CORTEX_EXTERN_C extern "C"
extern "C" {
#else
#define CORTEX_EXTERN_C
#endif

#define CORTEX_ABI_VERSION 1

/* The number of elements of an array (e.g. a cortex_field table). */
#define CORTEX_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Deepest nesting the reader accepts when skipping a value (arrays/objects inside each other). */
#ifndef CORTEX_JSON_MAX_DEPTH
#define CORTEX_JSON_MAX_DEPTH 1024
#endif

/* ========================================================================================== */
/* Host imports (module "cortex"). Use the wrappers below; these are the raw ABI.             */

__attribute__((import_module("cortex"), import_name("error")))
void cortex_host_error(const char *msg, uint32_t len);

__attribute__((import_module("cortex"), import_name("log")))
void cortex_host_log(int32_t level, const char *msg, uint32_t len);

/* ========================================================================================== */
/* Results                                                                                    */

/* What a capability returns: a pointer to [u32 little-endian length][JSON bytes], or 0 when
 * the call failed and the failure was reported with cortex_error. */
typedef uint32_t cortex_result_t;

/* ========================================================================================== */
/* Errors and logs                                                                            */

/* Log levels of cortex_log (the host maps anything else to info). */
enum { CORTEX_LOG_DEBUG = 0, CORTEX_LOG_INFO = 1, CORTEX_LOG_WARNING = 2, CORTEX_LOG_ERROR = 3 };

static inline uint32_t cortex_impl_clip(size_t len) {
    return len > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)len;
}

/* Reports that the call failed with `len` bytes of UTF-8 `msg` (the caller gets
 * PluginError(msg); the host keeps the first 4 KiB). Returns 0, so `return cortex_error_n(...)`
 * ends a capability. Only the first error of a call counts. */
static inline cortex_result_t cortex_error_n(const char *msg, size_t len) {
    cortex_host_error(msg, cortex_impl_clip(len));
    return 0;
}

/* cortex_error_n for a NUL-terminated message. */
static inline cortex_result_t cortex_error(const char *msg) {
    return cortex_error_n(msg, strlen(msg));
}

/* printf-style formatting into a buffer; calls `sink(buf, len)`. Long texts use the heap. */
static inline void cortex_impl_vformat(void (*sink)(int, const char *, size_t), int level,
                                       const char *fmt, va_list ap) {
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        sink(level, fmt, strlen(fmt)); /* formatting failed: the format itself is better than nothing */
        return;
    }
    if ((size_t)n < sizeof small) {
        va_end(again);
        sink(level, small, (size_t)n);
        return;
    }
    char *big = (char *)malloc((size_t)n + 1);
    if (big == NULL) {
        va_end(again);
        sink(level, small, sizeof small - 1); /* truncated */
        return;
    }
    vsnprintf(big, (size_t)n + 1, fmt, again);
    va_end(again);
    sink(level, big, (size_t)n);
}

static inline void cortex_impl_error_sink(int level, const char *msg, size_t len) {
    (void)level;
    cortex_error_n(msg, len);
}

/* cortex_error with a printf format: return cortex_errorf("bad mode %s", mode); */
static inline cortex_result_t cortex_errorf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline cortex_result_t cortex_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cortex_impl_vformat(cortex_impl_error_sink, 0, fmt, ap);
    va_end(ap);
    return 0;
}

/* Logs `len` bytes of UTF-8 at `level` (CORTEX_LOG_*). The host turns it into a structlog
 * event "plugin.log"; lines are cut at 4 KiB and a call may log limits.maxLogBytes in all. */
static inline void cortex_log_n(int level, const char *msg, size_t len) {
    cortex_host_log((int32_t)level, msg, cortex_impl_clip(len));
}

/* cortex_log_n for a NUL-terminated message. */
static inline void cortex_log(int level, const char *msg) { cortex_log_n(level, msg, strlen(msg)); }

static inline void cortex_impl_log_sink(int level, const char *msg, size_t len) {
    cortex_log_n(level, msg, len);
}

/* cortex_log with a printf format: cortex_logf(CORTEX_LOG_DEBUG, "%zu bytes", n); */
static inline void cortex_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void cortex_logf(int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cortex_impl_vformat(cortex_impl_log_sink, level, fmt, ap);
    va_end(ap);
}

/* ========================================================================================== */
/* The allocator export and the input buffer                                                  */

/* The input block of the current call, as handed out by cortex_alloc (internal). */
__attribute__((weak)) char *cortex_impl_input = NULL;
__attribute__((weak)) size_t cortex_impl_input_len = 0;

/* The allocator the host calls (once per call) for the input: manifest "allocator": "custom"
 * (or "auto"). It reserves 4 bytes in front of the block so that a result built inside the
 * input buffer gets its length header without a copy (see cortex_result). Defined weak: a
 * plugin may replace it with its own `cortex_alloc`. Not meant to be called by plugin code.
 *
 * To use wasi-libc's malloc instead (manifest "allocator": "wasi", as in the product
 * document's example), compile every file with -DCORTEX_ALLOCATOR_WASI (or #define it before
 * including this header) and link with -Wl,--export=malloc. Everything else works the same;
 * cortex_result then always copies. */
#ifndef CORTEX_ALLOCATOR_WASI
CORTEX_EXTERN_C __attribute__((weak, export_name("cortex_alloc"))) void *cortex_alloc(uint32_t size);
CORTEX_EXTERN_C __attribute__((weak, export_name("cortex_alloc"))) void *cortex_alloc(uint32_t size) {
    if (size > 0xFFFFFFF0u) return NULL;
    char *block = (char *)malloc((size_t)size + 4);
    if (block == NULL) return NULL;
    cortex_impl_input = block + 4;
    cortex_impl_input_len = size;
    return block + 4;
}
#endif

#define CORTEX_IMPL_OOM_MESSAGE \
    "out of memory while writing the result (raise wasm.maxMemoryPages in plugin.json)"

static inline void cortex_impl_put_u32le(char *p, uint32_t v) {
    p[0] = (char)(v & 0xFF);
    p[1] = (char)((v >> 8) & 0xFF);
    p[2] = (char)((v >> 16) & 0xFF);
    p[3] = (char)((v >> 24) & 0xFF);
}

/* Returns `len` bytes of JSON text at `json` as the call's result. The text must be one valid
 * JSON value in UTF-8 (the host checks: anything else is InvalidOutput).
 * If `json` lies inside the input buffer (e.g. `return cortex_result(input, input_len);`, or a
 * result built in place in the input), the 4 bytes in front of it are overwritten with the
 * length header and no copy is made (the input buffer has 4 spare bytes in front). Otherwise
 * the text is copied into a new block. Returns 0 after reporting "out of memory" if that fails. */
static inline cortex_result_t cortex_result(const char *json, size_t len) {
    if (len > 0x7FFFFFFFu) return cortex_error("result too large");
    uintptr_t in = (uintptr_t)cortex_impl_input;
    uintptr_t at = (uintptr_t)json;
    if (in != 0 && at >= in && len <= cortex_impl_input_len && at - in <= cortex_impl_input_len - len) {
        char *out = cortex_impl_input + (at - in) - 4; /* the same bytes, writable */
        cortex_impl_put_u32le(out, (uint32_t)len);
        return (cortex_result_t)(uintptr_t)out;
    }
    char *out = (char *)malloc(len + 4);
    if (out == NULL) return cortex_error(CORTEX_IMPL_OOM_MESSAGE);
    cortex_impl_put_u32le(out, (uint32_t)len);
    if (len) memcpy(out + 4, json, len);
    return (cortex_result_t)(uintptr_t)out;
}

/* cortex_result for NUL-terminated JSON text: return cortex_result_cstr("{\"ok\":true}"); */
static inline cortex_result_t cortex_result_cstr(const char *json) {
    return cortex_result(json, strlen(json));
}

/* ========================================================================================== */
/* Capabilities                                                                               */

/*
 * CORTEX_CAPABILITY(name, input, input_len) { body }
 *
 * Defines and exports the capability `name`. In the body, `input` (char *) points at the
 * `input_len` (size_t) bytes of UTF-8 JSON the caller sent; they are not NUL-terminated, and
 * you may modify them. The body returns a cortex_result_t: cortex_result(...),
 * cortex_writer_finish(...), or 0 after cortex_error(...).
 *
 * The C symbol is cortex_capability_<name> (so a capability may be called `log` or `exit`
 * without clashing with libc); the wasm export is "name".
 */
#define CORTEX_CAPABILITY(name, input, input_len) \
    CORTEX_CAPABILITY_NAMED(name, #name, input, input_len)

/* The same, with an export name that is not a C identifier: CORTEX_CAPABILITY_NAMED(count_v2,
 * "count.v2", in, n). Capability names: a letter, then up to 127 of A-Z a-z 0-9 _ . - */
#define CORTEX_CAPABILITY_NAMED(ident, wasm_name, input, input_len)                                 \
    static cortex_result_t cortex_capability_body_##ident(char *input, size_t input_len);          \
    CORTEX_EXTERN_C __attribute__((export_name(wasm_name)))                                        \
    cortex_result_t cortex_capability_##ident(char *cortex_input_ptr, uint32_t cortex_input_len);  \
    CORTEX_EXTERN_C __attribute__((export_name(wasm_name)))                                        \
    cortex_result_t cortex_capability_##ident(char *cortex_input_ptr, uint32_t cortex_input_len) { \
        return cortex_capability_body_##ident(cortex_input_ptr, cortex_input_len);                 \
    }                                                                                              \
    static cortex_result_t cortex_capability_body_##ident(char *input, size_t input_len)

/* ========================================================================================== */
/* UTF-8                                                                                      */

/* Length of the valid UTF-8 sequence at s[0] (`avail` bytes available), or 0 if it is invalid
 * (bad lead byte, truncated, overlong, a UTF-16 surrogate, above U+10FFFF). */
static inline size_t cortex_utf8_sequence(const char *str, size_t avail) {
    const uint8_t *s = (const uint8_t *)str;
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return (avail >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* How each byte appears inside a JSON string: 0 as itself (printable ASCII), 1 a short escape
 * (\" \\ \b \f \n \r \t), 2 a \u00XX escape (other control characters), 3 part of a UTF-8
 * sequence (copied once validated). Rows of 32 bytes, from 0x00. */
static const uint8_t cortex_impl_json_class[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
};

/* Encodes code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8; returns 1-4. */
static inline size_t cortex_utf8_encode(uint32_t cp, char *o) {
    uint8_t *out = (uint8_t *)o;
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ========================================================================================== */
/* JSON writer                                                                                */

/*
 * A growable buffer that builds one JSON value. Commas are inserted for you:
 *
 *     cortex_writer w;
 *     cortex_writer_init(&w, 0);                  // capacity hint in bytes, 0 = small
 *     cortex_begin_object(&w);
 *     cortex_write_key(&w, "items");
 *     cortex_begin_array(&w);
 *     cortex_write_int(&w, -1);
 *     cortex_write_cstring(&w, "two");
 *     cortex_end_array(&w);
 *     cortex_end_object(&w);                      // {"items":[-1,"two"]}
 *     return cortex_writer_finish(&w);
 *
 * Out of memory is sticky: later writes do nothing and cortex_writer_finish reports it. The
 * writer does not check that keys and values alternate properly: that is the caller's job.
 * Strings must be UTF-8; invalid bytes are written as U+FFFD so the result is always valid.
 */
typedef struct cortex_writer {
    char *buf;      /* [4-byte length header][JSON text] */
    size_t len;     /* bytes used, including the header */
    size_t cap;     /* bytes allocated */
    int need_comma; /* a value was completed in the current container */
    int failed;     /* out of memory */
} cortex_writer;

static inline int cortex_impl_writer_grow(cortex_writer *w, size_t extra) {
    if (w->failed) return 0;
    if (extra <= w->cap - w->len) return 1;
    if (extra > ((size_t)0x7FFFFFFF) - w->len) {
        w->failed = 1;
        return 0;
    }
    size_t need = w->len + extra;
    /* Capacities are 2^k - 32: the malloc of zig's wasi-libc adds about 20 bytes of headers
     * and rounds every block up to a power of two, so a 2^k request would take 2^(k+1). */
    size_t cap = w->cap < 32 ? 32 : w->cap;
    while (cap < need) cap = cap * 2 + 32;
    char *grown = (char *)realloc(w->buf, cap);
    if (grown == NULL) {
        w->failed = 1;
        return 0;
    }
    w->buf = grown;
    w->cap = cap;
    return 1;
}

/* Prepares `w` with room for `capacity` bytes of JSON (it grows as needed; a good estimate
 * saves copies and memory for large results). Returns 0 when out of memory (then
 * cortex_writer_finish reports it, so checking is optional). */
static inline int cortex_writer_init(cortex_writer *w, size_t capacity) {
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->need_comma = 0;
    w->failed = 0;
    if (capacity > 0x7FFFFFF0u) capacity = 0x7FFFFFF0u;
    if (!cortex_impl_writer_grow(w, capacity + 4)) return 0;
    w->len = 4; /* the length header */
    return 1;
}

/* Makes sure `extra` more bytes fit without growing again. */
static inline int cortex_writer_reserve(cortex_writer *w, size_t extra) {
    return cortex_impl_writer_grow(w, extra);
}

static inline void cortex_impl_put(cortex_writer *w, const char *s, size_t n) {
    if (!cortex_impl_writer_grow(w, n)) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static inline void cortex_impl_putc(cortex_writer *w, char c) {
    if (!cortex_impl_writer_grow(w, 1)) return;
    w->buf[w->len++] = c;
}

/* Before a value: the comma if the container already has one. */
static inline void cortex_impl_value_start(cortex_writer *w) {
    if (w->need_comma) cortex_impl_putc(w, ',');
}

/* Writes `n` bytes of JSON text as the next value, unchanged (it must be valid JSON). */
static inline void cortex_write_raw(cortex_writer *w, const char *json, size_t n) {
    cortex_impl_value_start(w);
    cortex_impl_put(w, json, n);
    w->need_comma = 1;
}

static inline void cortex_write_null(cortex_writer *w) { cortex_write_raw(w, "null", 4); }

static inline void cortex_write_bool(cortex_writer *w, int value) {
    if (value)
        cortex_write_raw(w, "true", 4);
    else
        cortex_write_raw(w, "false", 5);
}

/* Decimal digits of v into out[0..20); returns how many. */
static inline size_t cortex_impl_u64_dec(uint64_t v, char out[20]) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* An unsigned integer (the whole u64 range is exact JSON: the host accepts up to 2^64-1). */
static inline void cortex_write_uint(cortex_writer *w, uint64_t value) {
    char d[20];
    cortex_write_raw(w, d, cortex_impl_u64_dec(value, d));
}

/* A signed integer. */
static inline void cortex_write_int(cortex_writer *w, int64_t value) {
    char d[21];
    if (value < 0) {
        d[0] = '-';
        size_t n = cortex_impl_u64_dec((uint64_t)0 - (uint64_t)value, d + 1);
        cortex_write_raw(w, d, n + 1);
    } else {
        cortex_write_raw(w, d, cortex_impl_u64_dec((uint64_t)value, d));
    }
}

/* A double with 17 significant digits (round-trips exactly); NaN and infinities, which JSON
 * cannot express, are written as null. */
static inline void cortex_write_double(cortex_writer *w, double value) {
    if (value != value || value > 1.7976931348623157e308 || value < -1.7976931348623157e308) {
        cortex_write_null(w);
        return;
    }
    char d[40];
    int n = snprintf(d, sizeof d, "%.17g", value);
    cortex_write_raw(w, d, n > 0 ? (size_t)n : 0);
}

/* Starts a string value; add its text with cortex_string_append*, close with cortex_string_end. */
static inline void cortex_string_begin(cortex_writer *w) {
    cortex_impl_value_start(w);
    cortex_impl_putc(w, '"');
}

/* Eight bytes from p, in memory order (byte 0 in the low bits: wasm is little-endian). */
static inline uint64_t cortex_impl_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#define CORTEX_IMPL_ONES 0x0101010101010101ull
#define CORTEX_IMPL_HIGHS 0x8080808080808080ull

/* Eight bytes tested at once (SWAR): the high bit of each byte of the result is set for a
 * byte that a JSON string cannot hold as it is (below 0x20, '"', '\\', or 0x80 and up). The
 * lowest set bit is exact (borrows only run upwards, past the first hit), so
 * ctz(result) / 8 is the first such byte. */
static inline uint64_t cortex_impl_special8(uint64_t x) {
    uint64_t quote = x ^ (CORTEX_IMPL_ONES * '"');
    uint64_t slash = x ^ (CORTEX_IMPL_ONES * '\\');
    return (x | ((x - CORTEX_IMPL_ONES * 0x20) & ~x) | ((quote - CORTEX_IMPL_ONES) & ~quote) |
            ((slash - CORTEX_IMPL_ONES) & ~slash)) &
           CORTEX_IMPL_HIGHS;
}

/* Length of the run at s[0..n) of bytes that a JSON string holds as they are: printable ASCII
 * other than '"' and '\\', and valid UTF-8 sequences. */
static inline size_t cortex_impl_plain_run(const uint8_t *s, size_t n) {
    const uint8_t *cls = cortex_impl_json_class;
    size_t i = 0;
    for (;;) {
        /* printable ASCII, 16 then 8 bytes per test (fewer instructions, less fuel) */
        while (n - i >= 16 &&
               (cortex_impl_special8(cortex_impl_load64(s + i)) |
                cortex_impl_special8(cortex_impl_load64(s + i + 8))) == 0)
            i += 16;
        while (n - i >= 8) {
            uint64_t hit = cortex_impl_special8(cortex_impl_load64(s + i));
            if (hit) {
                i += (size_t)__builtin_ctzll(hit) >> 3;
                break;
            }
            i += 8;
        }
        while (i < n && cls[s[i]] == 0) i++;
        if (i >= n || cls[s[i]] != 3) return i;
        size_t k = cortex_utf8_sequence((const char *)s + i, n - i);
        if (k == 0) return i;
        i += k;
    }
}

/* Bytes that cortex_string_append writes for `n` bytes of `str` (without the quotes): use it
 * to size a writer exactly. */
static inline size_t cortex_json_escaped_len(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t total = 0, i = 0;
    for (;;) {
        size_t run = cortex_impl_plain_run(s + i, n - i);
        total += run;
        i += run;
        if (i >= n) return total;
        switch (cortex_impl_json_class[s[i]]) {
        case 1: total += 2; break; /* \" \\ \b \f \n \r \t */
        case 2: total += 6; break; /* \u00XX */
        default: total += 3; break; /* an invalid UTF-8 byte becomes U+FFFD */
        }
        i++;
    }
}

/* Appends `n` bytes of UTF-8 to the open string, escaping '"', '\\' and control characters
 * (other characters are copied as UTF-8). Give whole characters per call: an invalid or split
 * sequence is written as U+FFFD. Runs of plain text are copied with memcpy; a writer sized for
 * the text (cortex_writer_init's capacity) does not grow. */
static inline void cortex_string_append(cortex_writer *w, const char *str, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    for (;;) {
        size_t run = cortex_impl_plain_run(s + i, n - i);
        if (run) {
            if (!cortex_impl_writer_grow(w, run)) return;
            memcpy(w->buf + w->len, s + i, run);
            w->len += run;
            i += run;
        }
        if (i >= n) return;
        uint8_t c = s[i++];
        uint8_t kind = cortex_impl_json_class[c]; /* 1: \x, 2: \u00XX, 3: U+FFFD */
        if (!cortex_impl_writer_grow(w, kind == 1 ? 2 : kind == 2 ? 6 : 3)) return;
        char *o = w->buf + w->len;
        if (kind == 3) { /* an invalid UTF-8 byte: U+FFFD */
            *o++ = (char)0xEF;
            *o++ = (char)0xBF;
            *o++ = (char)0xBD;
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
        w->len = (size_t)(o - w->buf);
    }
}

static inline void cortex_string_append_cstr(cortex_writer *w, const char *s) {
    cortex_string_append(w, s, strlen(s));
}

static inline void cortex_string_end(cortex_writer *w) {
    cortex_impl_putc(w, '"');
    w->need_comma = 1;
}

/* A string value from `n` bytes of UTF-8 (escaped as needed). */
static inline void cortex_write_string(cortex_writer *w, const char *s, size_t n) {
    cortex_string_begin(w);
    cortex_string_append(w, s, n);
    cortex_string_end(w);
}

/* A string value from a NUL-terminated UTF-8 string. */
static inline void cortex_write_cstring(cortex_writer *w, const char *s) {
    cortex_write_string(w, s, strlen(s));
}

/* An object member's key (`"key":`); the member's value is written next. */
static inline void cortex_write_key_n(cortex_writer *w, const char *key, size_t n) {
    cortex_write_string(w, key, n);
    cortex_impl_putc(w, ':');
    w->need_comma = 0;
}

static inline void cortex_write_key(cortex_writer *w, const char *key) {
    cortex_write_key_n(w, key, strlen(key));
}

static inline void cortex_begin_object(cortex_writer *w) {
    cortex_impl_value_start(w);
    cortex_impl_putc(w, '{');
    w->need_comma = 0;
}

static inline void cortex_end_object(cortex_writer *w) {
    cortex_impl_putc(w, '}');
    w->need_comma = 1;
}

static inline void cortex_begin_array(cortex_writer *w) {
    cortex_impl_value_start(w);
    cortex_impl_putc(w, '[');
    w->need_comma = 0;
}

static inline void cortex_end_array(cortex_writer *w) {
    cortex_impl_putc(w, ']');
    w->need_comma = 1;
}

/* The JSON written so far (not NUL-terminated) and its length. */
static inline const char *cortex_writer_data(const cortex_writer *w) {
    return w->buf ? w->buf + 4 : "";
}
static inline size_t cortex_writer_size(const cortex_writer *w) { return w->len >= 4 ? w->len - 4 : 0; }

/* Ends the writer and returns its JSON as the call's result (no copy). If memory ran out, it
 * reports "out of memory while writing the result (...)" and returns 0. */
static inline cortex_result_t cortex_writer_finish(cortex_writer *w) {
    if (w->failed || w->buf == NULL) return cortex_error(CORTEX_IMPL_OOM_MESSAGE);
    cortex_impl_put_u32le(w->buf, (uint32_t)(w->len - 4));
    return (cortex_result_t)(uintptr_t)w->buf;
}

/* ========================================================================================== */
/* JSON reader                                                                                */

/*
 * A strict RFC 8259 reader over a mutable buffer (normally the capability's input). It does
 * not allocate. Strings you read are decoded in place: escapes (\n, \", \uXXXX, surrogate
 * pairs) become UTF-8 and the decoded string is NUL-terminated, at the cost of overwriting the
 * encoded form. Values you do not read (other keys, nested arrays/objects) are validated and
 * skipped without being modified, so a nested object can be read later with a new reader over
 * its text. Invalid UTF-8, lone surrogates, bad escapes, trailing garbage and nesting deeper
 * than CORTEX_JSON_MAX_DEPTH are errors.
 *
 * The easy way, for objects: cortex_json_fields(input, input_len, fields, n) fills the fields
 * you name and reports any problem. The general way: cortex_json_object_next /
 * cortex_json_array_next / cortex_json_read over a cortex_json, then cortex_json_report_error
 * if cortex_json_failed.
 */

typedef enum cortex_json_type {
    CORTEX_JSON_MISSING = 0, /* a field that was not in the object */
    CORTEX_JSON_NULL,
    CORTEX_JSON_BOOL,
    CORTEX_JSON_NUMBER,
    CORTEX_JSON_STRING,
    CORTEX_JSON_ARRAY,
    CORTEX_JSON_OBJECT
} cortex_json_type;

/* One JSON value. */
typedef struct cortex_value {
    cortex_json_type type;
    /* STRING: the decoded UTF-8 text, NUL-terminated (it may also contain NULs: use len).
     * NUMBER: the number's JSON text (not NUL-terminated): use cortex_value_int64 & co.
     * ARRAY / OBJECT: the value's whole JSON text, unmodified (not NUL-terminated): read it
     *   with cortex_json_init(&reader, v.str, v.len).
     * otherwise NULL. */
    char *str;
    size_t len;
    int boolean; /* BOOL: 0 or 1 */
} cortex_value;

typedef struct cortex_json {
    char *buf;
    size_t len;
    size_t pos;
    int state;          /* iteration state (internal) */
    const char *err;    /* static reason of the first error, or NULL */
    size_t err_pos;     /* byte offset of the first error */
} cortex_json;

/* Starts reading the `len` bytes of JSON at `json` (which will be modified). */
static inline void cortex_json_init(cortex_json *j, char *json, size_t len) {
    j->buf = json;
    j->len = len;
    j->pos = 0;
    j->state = 0;
    j->err = NULL;
    j->err_pos = 0;
}

static inline int cortex_json_failed(const cortex_json *j) { return j->err != NULL; }

static inline int cortex_impl_fail(cortex_json *j, const char *reason) {
    if (j->err == NULL) {
        j->err = reason;
        j->err_pos = j->pos;
    }
    return 0;
}

static inline void cortex_impl_ws(cortex_json *j) {
    while (j->pos < j->len) {
        char c = j->buf[j->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            j->pos++;
        else
            break;
    }
}

static inline int cortex_impl_peek(const cortex_json *j) {
    return j->pos < j->len ? (uint8_t)j->buf[j->pos] : -1;
}

static inline int cortex_impl_hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline int cortex_impl_hex4(cortex_json *j, uint32_t *out) {
    if (j->len - j->pos < 4) return cortex_impl_fail(j, "truncated \\u escape");
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = cortex_impl_hex((uint8_t)j->buf[j->pos + i]);
        if (h < 0) return cortex_impl_fail(j, "invalid hex digit in \\u escape");
        v = (v << 4) | (uint32_t)h;
    }
    j->pos += 4;
    *out = v;
    return 1;
}

/* Parses the string at j->pos (a '"'). decode=1: decodes it in place, NUL-terminates it and
 * sets *out and *out_len; decode=0: only validates (the buffer is not touched). */
static inline int cortex_impl_string(cortex_json *j, int decode, char **out, size_t *out_len) {
    if (cortex_impl_peek(j) != '"') return cortex_impl_fail(j, "expected '\"'");
    uint8_t *b = (uint8_t *)j->buf;
    const size_t len = j->len;
    size_t r = j->pos + 1; /* read cursor */
    size_t w = r;          /* write cursor (decode only), never ahead of r */
    const size_t start = r;
    for (;;) {
        /* A run of bytes kept as they are (printable ASCII, valid UTF-8): moved down in one
         * memmove once an escape has made the decoded text shorter than the JSON text. */
        size_t run = cortex_impl_plain_run(b + r, len - r);
        if (decode && w != r && run) memmove(b + w, b + r, run);
        r += run;
        w += run;
        if (r >= len) {
            j->pos = r;
            return cortex_impl_fail(j, "unterminated string");
        }
        uint8_t c = b[r];
        if (c == '"') {
            j->pos = r + 1;
            if (decode) {
                b[w] = 0; /* w <= r: overwrites at most the closing quote, already consumed */
                *out = (char *)b + start;
                *out_len = w - start;
            }
            return 1;
        }
        if (c < 0x20) {
            j->pos = r;
            return cortex_impl_fail(j, "unescaped control character in string");
        }
        if (c != '\\') {
            j->pos = r;
            return cortex_impl_fail(j, "invalid UTF-8 in string");
        }
        if (r + 1 >= len) {
            j->pos = r + 1;
            return cortex_impl_fail(j, "unterminated string");
        }
        uint8_t e = b[r + 1];
        uint8_t plain = 0;
        r += 2;
        switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
            uint32_t cp;
            j->pos = r;
            if (!cortex_impl_hex4(j, &cp)) return 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (j->len - j->pos < 2 || b[j->pos] != '\\' || b[j->pos + 1] != 'u')
                    return cortex_impl_fail(j, "unpaired high surrogate in \\u escape");
                j->pos += 2;
                if (!cortex_impl_hex4(j, &lo)) return 0;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return cortex_impl_fail(j, "unpaired high surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return cortex_impl_fail(j, "unpaired low surrogate in \\u escape");
            }
            r = j->pos;
            /* 6 (or 12) escape bytes were read; at most 3 (or 4) are written */
            if (decode)
                w += cortex_utf8_encode(cp, (char *)b + w);
            else
                w = r;
            continue;
        }
        default:
            j->pos = r - 1;
            return cortex_impl_fail(j, "invalid escape in string");
        }
        if (decode)
            b[w++] = plain;
        else
            w = r;
    }
}

static inline int cortex_impl_digit(int c) { return c >= '0' && c <= '9'; }

static inline int cortex_impl_number(cortex_json *j) {
    if (cortex_impl_peek(j) == '-') j->pos++;
    if (cortex_impl_peek(j) == '0') {
        j->pos++;
    } else if (cortex_impl_digit(cortex_impl_peek(j))) {
        while (cortex_impl_digit(cortex_impl_peek(j))) j->pos++;
    } else {
        return cortex_impl_fail(j, "invalid number");
    }
    if (cortex_impl_peek(j) == '.') {
        j->pos++;
        if (!cortex_impl_digit(cortex_impl_peek(j)))
            return cortex_impl_fail(j, "invalid number: expected digit after '.'");
        while (cortex_impl_digit(cortex_impl_peek(j))) j->pos++;
    }
    if (cortex_impl_peek(j) == 'e' || cortex_impl_peek(j) == 'E') {
        j->pos++;
        if (cortex_impl_peek(j) == '+' || cortex_impl_peek(j) == '-') j->pos++;
        if (!cortex_impl_digit(cortex_impl_peek(j)))
            return cortex_impl_fail(j, "invalid number: expected digit in exponent");
        while (cortex_impl_digit(cortex_impl_peek(j))) j->pos++;
    }
    return 1;
}

static inline int cortex_impl_literal(cortex_json *j, const char *lit, size_t n) {
    if (j->len - j->pos < n || memcmp(j->buf + j->pos, lit, n) != 0)
        return cortex_impl_fail(j, "invalid literal");
    j->pos += n;
    return 1;
}

/* `"key" ws ':'` inside an object (the key is only validated). */
static inline int cortex_impl_skip_key(cortex_json *j) {
    if (cortex_impl_peek(j) != '"') return cortex_impl_fail(j, "expected string key");
    if (!cortex_impl_string(j, 0, NULL, NULL)) return 0;
    cortex_impl_ws(j);
    if (cortex_impl_peek(j) != ':') return cortex_impl_fail(j, "expected ':' after object key");
    j->pos++;
    return 1;
}

/* Validates and skips one value (leading whitespace allowed) without modifying it.
 * Iterative: deep nesting cannot overflow the stack. */
static inline int cortex_impl_skip(cortex_json *j) {
    uint8_t objects[(CORTEX_JSON_MAX_DEPTH + 7) / 8]; /* bit set: the container is an object */
    size_t depth = 0;
    for (;;) {
        cortex_impl_ws(j);
        int c = cortex_impl_peek(j);
        if (c == '{' || c == '[') {
            if (depth == CORTEX_JSON_MAX_DEPTH) return cortex_impl_fail(j, "nesting too deep");
            j->pos++;
            cortex_impl_ws(j);
            if (cortex_impl_peek(j) == (c == '{' ? '}' : ']')) {
                j->pos++; /* empty container: a complete value */
            } else {
                if (c == '{')
                    objects[depth / 8] = (uint8_t)(objects[depth / 8] | (1u << (depth % 8)));
                else
                    objects[depth / 8] = (uint8_t)(objects[depth / 8] & ~(1u << (depth % 8)));
                depth++;
                if (c == '{' && !cortex_impl_skip_key(j)) return 0;
                continue; /* the first member's value */
            }
        } else if (c == '"') {
            if (!cortex_impl_string(j, 0, NULL, NULL)) return 0;
        } else if (c == '-' || cortex_impl_digit(c)) {
            if (!cortex_impl_number(j)) return 0;
        } else if (c == 't') {
            if (!cortex_impl_literal(j, "true", 4)) return 0;
        } else if (c == 'f') {
            if (!cortex_impl_literal(j, "false", 5)) return 0;
        } else if (c == 'n') {
            if (!cortex_impl_literal(j, "null", 4)) return 0;
        } else if (c < 0) {
            return cortex_impl_fail(j, "unexpected end of input, expected a value");
        } else {
            return cortex_impl_fail(j, "unexpected character, expected a value");
        }
        /* a value is complete: close containers or go to the next member */
        for (;;) {
            if (depth == 0) return 1;
            cortex_impl_ws(j);
            int is_object = (objects[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
            c = cortex_impl_peek(j);
            if (c == ',') {
                j->pos++;
                if (is_object) {
                    cortex_impl_ws(j);
                    if (!cortex_impl_skip_key(j)) return 0;
                }
                break;
            }
            if (c == (is_object ? '}' : ']')) {
                j->pos++;
                depth--;
                continue;
            }
            return cortex_impl_fail(j, is_object ? "expected ',' or '}' in object"
                                                 : "expected ',' or ']' in array");
        }
    }
}

/* Reads the value at the cursor into *v: strings are decoded, containers skipped (v gets
 * their text), scalars parsed. */
static inline int cortex_impl_value(cortex_json *j, cortex_value *v) {
    cortex_impl_ws(j);
    int c = cortex_impl_peek(j);
    v->str = NULL;
    v->len = 0;
    v->boolean = 0;
    size_t start = j->pos;
    switch (c) {
    case '"':
        v->type = CORTEX_JSON_STRING;
        return cortex_impl_string(j, 1, &v->str, &v->len);
    case '{':
    case '[':
        v->type = c == '{' ? CORTEX_JSON_OBJECT : CORTEX_JSON_ARRAY;
        if (!cortex_impl_skip(j)) return 0;
        v->str = j->buf + start;
        v->len = j->pos - start;
        return 1;
    case 't':
        v->type = CORTEX_JSON_BOOL;
        v->boolean = 1;
        return cortex_impl_literal(j, "true", 4);
    case 'f':
        v->type = CORTEX_JSON_BOOL;
        return cortex_impl_literal(j, "false", 5);
    case 'n':
        v->type = CORTEX_JSON_NULL;
        return cortex_impl_literal(j, "null", 4);
    default:
        if (c == '-' || cortex_impl_digit(c)) {
            v->type = CORTEX_JSON_NUMBER;
            if (!cortex_impl_number(j)) return 0;
            v->str = j->buf + start;
            v->len = j->pos - start;
            return 1;
        }
        v->type = CORTEX_JSON_MISSING;
        return cortex_impl_fail(j, c < 0 ? "unexpected end of input, expected a value"
                                         : "unexpected character, expected a value");
    }
}

static inline int cortex_impl_end(cortex_json *j) {
    cortex_impl_ws(j);
    if (j->pos != j->len) return cortex_impl_fail(j, "unexpected trailing characters");
    return 1;
}

/* Reads the whole document as one value (e.g. a scalar input). Returns 0 on an error. */
static inline int cortex_json_read(cortex_json *j, cortex_value *v) {
    if (j->state != 0) return cortex_impl_fail(j, "reader already used");
    j->state = 3;
    cortex_impl_ws(j);
    if (j->pos >= j->len) return cortex_impl_fail(j, "empty input");
    if (!cortex_impl_value(j, v)) return 0;
    return cortex_impl_end(j);
}

/* Iterates over the members of the object that is the whole document:
 *
 *     cortex_json j; cortex_value key, value;
 *     cortex_json_init(&j, input, input_len);
 *     while (cortex_json_object_next(&j, &key, &value)) { ... }
 *     if (cortex_json_failed(&j)) return cortex_json_report_error(&j);
 *
 * Returns 1 with the next key (a decoded STRING value) and value, 0 at the end or on an error
 * (including "not an object"; the rest of the document is checked before the end). */
static inline int cortex_json_object_next(cortex_json *j, cortex_value *key, cortex_value *value) {
    if (j->err) return 0;
    if (j->state == 0) {
        cortex_impl_ws(j);
        if (j->pos >= j->len) return cortex_impl_fail(j, "empty input");
        if (cortex_impl_peek(j) != '{') return cortex_impl_fail(j, "expected a JSON object");
        j->pos++;
        cortex_impl_ws(j);
        if (cortex_impl_peek(j) == '}') {
            j->pos++;
            j->state = 3;
            cortex_impl_end(j);
            return 0;
        }
        j->state = 1;
    } else if (j->state == 2) {
        cortex_impl_ws(j);
        int c = cortex_impl_peek(j);
        if (c == '}') {
            j->pos++;
            j->state = 3;
            cortex_impl_end(j);
            return 0;
        }
        if (c != ',') return cortex_impl_fail(j, "expected ',' or '}' in object");
        j->pos++;
    } else if (j->state == 3) {
        return 0;
    } else {
        return cortex_impl_fail(j, "reader used for something else");
    }
    cortex_impl_ws(j);
    if (cortex_impl_peek(j) != '"') return cortex_impl_fail(j, "expected string key");
    key->type = CORTEX_JSON_STRING;
    key->boolean = 0;
    if (!cortex_impl_string(j, 1, &key->str, &key->len)) return 0;
    cortex_impl_ws(j);
    if (cortex_impl_peek(j) != ':') return cortex_impl_fail(j, "expected ':' after object key");
    j->pos++;
    if (!cortex_impl_value(j, value)) return 0;
    j->state = 2;
    return 1;
}

/* Iterates over the elements of the array that is the whole document (like
 * cortex_json_object_next). */
static inline int cortex_json_array_next(cortex_json *j, cortex_value *value) {
    if (j->err) return 0;
    if (j->state == 0) {
        cortex_impl_ws(j);
        if (j->pos >= j->len) return cortex_impl_fail(j, "empty input");
        if (cortex_impl_peek(j) != '[') return cortex_impl_fail(j, "expected a JSON array");
        j->pos++;
        cortex_impl_ws(j);
        if (cortex_impl_peek(j) == ']') {
            j->pos++;
            j->state = 3;
            cortex_impl_end(j);
            return 0;
        }
        j->state = 4;
    } else if (j->state == 5) {
        cortex_impl_ws(j);
        int c = cortex_impl_peek(j);
        if (c == ']') {
            j->pos++;
            j->state = 3;
            cortex_impl_end(j);
            return 0;
        }
        if (c != ',') return cortex_impl_fail(j, "expected ',' or ']' in array");
        j->pos++;
    } else if (j->state == 3) {
        return 0;
    } else {
        return cortex_impl_fail(j, "reader used for something else");
    }
    if (!cortex_impl_value(j, value)) return 0;
    j->state = 5;
    return 1;
}

/* "a string", "an object", ... (for messages). */
static inline const char *cortex_json_type_name(cortex_json_type type) {
    switch (type) {
    case CORTEX_JSON_NULL: return "null";
    case CORTEX_JSON_BOOL: return "a boolean";
    case CORTEX_JSON_NUMBER: return "a number";
    case CORTEX_JSON_STRING: return "a string";
    case CORTEX_JSON_ARRAY: return "an array";
    case CORTEX_JSON_OBJECT: return "an object";
    default: return "missing";
    }
}

/* Reports the reader's error ("invalid JSON input at byte N: reason") and returns 0. */
static inline cortex_result_t cortex_json_report_error(const cortex_json *j) {
    const char *reason = j->err ? j->err : "unknown error";
    const char *eof = "";
    if (j->err_pos >= j->len && strncmp(reason, "expected", 8) == 0) eof = "unexpected end of input, ";
    return cortex_errorf("invalid JSON input at byte %zu: %s%s", j->err_pos, eof, reason);
}

/* A field to look up with cortex_json_fields. */
typedef struct cortex_field {
    const char *name;    /* the key (exact bytes, NUL-terminated) */
    cortex_value *value; /* receives the value; type CORTEX_JSON_MISSING if the key is absent */
} cortex_field;

/* Parses `json` (normally the capability's input), which must be one JSON object, and fills
 * the named fields (the last of duplicated keys wins); other keys are checked and skipped.
 * Returns 1, or 0 after reporting the problem: invalid JSON ("invalid JSON input at byte N:
 * ...") or another kind of value ('input must be a JSON object with "text" and "mode", got an
 * array', naming the fields).
 * Field types are not checked: see cortex_expect. */
static inline int cortex_json_fields(char *json, size_t len, cortex_field *fields, size_t count) {
    for (size_t i = 0; i < count; i++) {
        fields[i].value->type = CORTEX_JSON_MISSING;
        fields[i].value->str = NULL;
        fields[i].value->len = 0;
        fields[i].value->boolean = 0;
    }
    cortex_json j;
    cortex_json_init(&j, json, len);
    cortex_impl_ws(&j);
    if (j.pos < j.len && j.buf[j.pos] != '{') {
        cortex_value whole;
        if (!cortex_json_read(&j, &whole)) {
            cortex_json_report_error(&j);
            return 0;
        }
        /* input must be a JSON object with "a", "b" and "c", got an array */
        char msg[512];
        size_t used = 0;
        int n = snprintf(msg, sizeof msg, "input must be a JSON object");
        used = n > 0 ? (size_t)n : 0;
        for (size_t i = 0; i < count && used < sizeof msg; i++) {
            const char *sep = i == 0 ? " with " : (i + 1 == count ? " and " : ", ");
            n = snprintf(msg + used, sizeof msg - used, "%s\"%s\"", sep, fields[i].name);
            used += n > 0 ? (size_t)n : 0;
        }
        if (used < sizeof msg)
            snprintf(msg + used, sizeof msg - used, ", got %s", cortex_json_type_name(whole.type));
        cortex_error(msg);
        return 0;
    }
    cortex_value key, value;
    while (cortex_json_object_next(&j, &key, &value)) {
        for (size_t i = 0; i < count; i++) {
            const char *name = fields[i].name;
            if (strlen(name) == key.len && memcmp(name, key.str, key.len) == 0) *fields[i].value = value;
        }
    }
    if (cortex_json_failed(&j)) {
        cortex_json_report_error(&j);
        return 0;
    }
    return 1;
}

/* Checks that field `name` is present and of `type`, else reports
 * 'missing required field "name" (a string)' or 'field "name" must be a string, got a number'
 * and returns 0. */
static inline int cortex_expect(const cortex_value *v, cortex_json_type type, const char *name) {
    if (v->type == type) return 1;
    if (v->type == CORTEX_JSON_MISSING)
        cortex_errorf("missing required field \"%s\" (%s)", name, cortex_json_type_name(type));
    else
        cortex_errorf("field \"%s\" must be %s, got %s", name, cortex_json_type_name(type),
                      cortex_json_type_name(v->type));
    return 0;
}

/* 1 if v is a STRING equal to the NUL-terminated `s`. */
static inline int cortex_value_equals(const cortex_value *v, const char *s) {
    size_t n = strlen(s);
    return v->type == CORTEX_JSON_STRING && v->len == n && memcmp(v->str, s, n) == 0;
}

/* A NUMBER without fraction or exponent that fits: 1 and *out, else 0. */
static inline int cortex_value_uint64(const cortex_value *v, uint64_t *out) {
    if (v->type != CORTEX_JSON_NUMBER || v->len == 0 || v->str[0] == '-') return 0;
    uint64_t acc = 0;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->str[i];
        if (c < '0' || c > '9') return 0;
        uint64_t d = (uint64_t)(c - '0');
        if (acc > (UINT64_MAX - d) / 10) return 0;
        acc = acc * 10 + d;
    }
    *out = acc;
    return 1;
}

static inline int cortex_value_int64(const cortex_value *v, int64_t *out) {
    if (v->type != CORTEX_JSON_NUMBER || v->len == 0) return 0;
    int neg = v->str[0] == '-';
    cortex_value digits = *v;
    if (neg) {
        digits.str++;
        digits.len--;
    }
    uint64_t mag;
    if (!cortex_value_uint64(&digits, &mag)) return 0;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return 0;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)mag;
    }
    return 1;
}

/* Any NUMBER as the nearest double (strtod): 1 and *out, else 0. */
static inline int cortex_value_double(const cortex_value *v, double *out) {
    if (v->type != CORTEX_JSON_NUMBER || v->len == 0) return 0;
    char small[64];
    char *text = small;
    if (v->len >= sizeof small) {
        text = (char *)malloc(v->len + 1);
        if (text == NULL) return 0;
    }
    memcpy(text, v->str, v->len);
    text[v->len] = 0;
    *out = strtod(text, NULL);
    if (text != small) free(text);
    return 1;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

/* ========================================================================================== */
/* C++ conveniences (C++17: std::string_view)                                                 */

#if defined(__cplusplus) && __cplusplus >= 201703L
#include <string_view>

namespace cortex {

/* A STRING value's decoded text (or a NUMBER/ARRAY/OBJECT's JSON text). */
inline std::string_view view(const cortex_value &v) { return std::string_view(v.str ? v.str : "", v.len); }

inline cortex_result_t error(std::string_view msg) { return cortex_error_n(msg.data(), msg.size()); }

inline void log(int level, std::string_view msg) { cortex_log_n(level, msg.data(), msg.size()); }

inline cortex_result_t result(std::string_view json) { return cortex_result(json.data(), json.size()); }

/* cortex_writer with chainable methods:
 *     return cortex::Writer(64).begin_object().key("ok").boolean(true).end_object().finish(); */
class Writer {
  public:
    explicit Writer(size_t capacity = 0) { cortex_writer_init(&w_, capacity); }
    Writer(const Writer &) = delete;
    Writer &operator=(const Writer &) = delete;

    Writer &begin_object() { cortex_begin_object(&w_); return *this; }
    Writer &end_object() { cortex_end_object(&w_); return *this; }
    Writer &begin_array() { cortex_begin_array(&w_); return *this; }
    Writer &end_array() { cortex_end_array(&w_); return *this; }
    Writer &key(std::string_view k) { cortex_write_key_n(&w_, k.data(), k.size()); return *this; }
    Writer &string(std::string_view s) { cortex_write_string(&w_, s.data(), s.size()); return *this; }
    Writer &string_begin() { cortex_string_begin(&w_); return *this; }
    Writer &append(std::string_view s) { cortex_string_append(&w_, s.data(), s.size()); return *this; }
    Writer &string_end() { cortex_string_end(&w_); return *this; }
    Writer &uinteger(uint64_t v) { cortex_write_uint(&w_, v); return *this; }
    Writer &integer(int64_t v) { cortex_write_int(&w_, v); return *this; }
    Writer &number(double v) { cortex_write_double(&w_, v); return *this; }
    Writer &boolean(bool v) { cortex_write_bool(&w_, v ? 1 : 0); return *this; }
    Writer &null() { cortex_write_null(&w_); return *this; }
    Writer &raw(std::string_view json) { cortex_write_raw(&w_, json.data(), json.size()); return *this; }
    cortex_result_t finish() { return cortex_writer_finish(&w_); }
    cortex_writer *c() { return &w_; }

  private:
    cortex_writer w_;
};

} /* namespace cortex */
#endif

#ifdef __cplusplus
#pragma clang diagnostic pop
#endif

#endif /* CORTEX_PLUGIN_H */
