/*
 * bench_logic.h - the capability logic shared by every build of the benchmark plugin.
 *
 * The same C source runs in all three wasm hosts of the benchmark suite (benchmarks/):
 *   - cortex_bench.c  wraps it in the Cortex plugin ABI v1 (docs/abi.md): run by Cortex Runtime
 *                     (A) and by the in-process wasmtime-py baseline (B);
 *   - extism_bench.c  wraps it in the Extism ABI (host module "extism:host/env"): run by
 *                     Extism's Python SDK (C).
 * Both include sdk/c/cortex_plugin.h first, for its JSON reader and writer; the Extism build
 * supplies the two `cortex` host functions itself, so its module imports only Extism's.
 *
 * Capabilities (each takes the input JSON in a mutable buffer and returns a cortex_result_t:
 * a pointer to [u32 little-endian length][JSON], or 0 after cortex_error):
 *
 *   transform {"text": string, "mode": string} -> {"result": string, "length": N, "hash": N}
 *             the text-processor transform (examples/text-processor, conformance/README.md):
 *             reverse (by code point), uppercase, lowercase, rot13 (ASCII letters), anything
 *             else unchanged; hash = fold h = h * 31 + byte over the result (u64, wrapping).
 *   parse     any JSON document -> {"objects": N, "arrays": N, "strings": N, "numbers": N,
 *             "bools": N, "nulls": N, "keys": N, "max_depth": N, "bytes": N}
 *             a strict single-pass parse (RFC 8259, UTF-8 checked) counting every value.
 *             Keys are counted in "keys", not in "strings". max_depth: 0 for a scalar
 *             document, 1 for [] or {}, +1 per nesting level.
 *   echo      any JSON -> the same JSON
 *   trap      -> traps (wasm `unreachable`): the restart-penalty scenario
 */
#ifndef BENCH_LOGIC_H
#define BENCH_LOGIC_H

#include <stddef.h>
#include <stdint.h>

/* ---- transform ------------------------------------------------------------------------- */

/* The loops below handle eight bytes at a time (SWAR, on the SDK's cortex_impl_load64) where
 * the text allows, then finish byte by byte: same results, fewer wasm instructions (and less
 * fuel) per byte. */

static void bench_store64(char *p, uint64_t v) { memcpy(p, &v, 8); }

static void bench_reverse_bytes(char *s, size_t n) {
    if (n < 2) return;
    size_t i = 0, j = n; /* s[i..j) is still to be reversed */
    while (j - i >= 16) {
        uint64_t head = cortex_impl_load64((const uint8_t *)s + i);
        uint64_t tail = cortex_impl_load64((const uint8_t *)s + j - 8);
        bench_store64(s + i, __builtin_bswap64(tail));
        bench_store64(s + j - 8, __builtin_bswap64(head));
        i += 8;
        j -= 8;
    }
    while (j - i >= 2) {
        char t = s[i];
        s[i++] = s[--j];
        s[j] = t;
    }
}

/* Reverse valid UTF-8 by code point: reverse all bytes, then restore the byte order inside
 * each multi-byte sequence (which now reads continuation bytes first, lead byte last). */
static void bench_reverse_utf8(char *s, size_t n) {
    bench_reverse_bytes(s, n);
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8 && (cortex_impl_load64((const uint8_t *)s + i) & CORTEX_IMPL_HIGHS) == 0) {
            i += 8; /* ASCII only */
        } else if (((uint8_t)s[i] & 0xC0) == 0x80) {
            size_t j = i;
            while (j < n && ((uint8_t)s[j] & 0xC0) == 0x80) j++;
            size_t end = j < n ? j + 1 : n;
            bench_reverse_bytes(s + i, end - i);
            i = end;
        } else {
            i++;
        }
    }
}

/* Flips the case bit (0x20) of the bytes of x (ASCII only) in [first, last]. */
static uint64_t bench_flip_range8(uint64_t x, uint8_t first, uint8_t last) {
    uint64_t from_first = x + CORTEX_IMPL_ONES * (uint8_t)(0x80 - first); /* no carry: x < 0x80 */
    uint64_t past_last = x + CORTEX_IMPL_ONES * (uint8_t)(0x80 - last - 1);
    return x ^ (((from_first & ~past_last) & CORTEX_IMPL_HIGHS) >> 2);
}

static void bench_ascii_flip(char *s, size_t n, char first, char last) {
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t x = cortex_impl_load64((const uint8_t *)s + i);
        if (x & CORTEX_IMPL_HIGHS) break; /* non-ASCII: byte by byte from here */
        bench_store64(s + i, bench_flip_range8(x, (uint8_t)first, (uint8_t)last));
    }
    for (; i < n; i++)
        if (s[i] >= first && s[i] <= last) s[i] = (char)(s[i] ^ 0x20);
}

static void bench_ascii_upper(char *s, size_t n) { bench_ascii_flip(s, n, 'a', 'z'); }

static void bench_ascii_lower(char *s, size_t n) { bench_ascii_flip(s, n, 'A', 'Z'); }

static void bench_ascii_rot13(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            s[i] = (char)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z')
            s[i] = (char)('A' + (c - 'A' + 13) % 26);
    }
}

/* h = h * 31 + byte over s, eight bytes per step: h * 31^8 plus the eight bytes weighted by
 * 31^7 .. 31^0, so the loop-carried chain is one multiply per eight bytes, not eight
 * (arithmetic mod 2^64, the same value as the byte-by-byte fold). */
static uint64_t bench_hash(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    const uint64_t p1 = 31, p2 = p1 * 31, p3 = p2 * 31, p4 = p3 * 31, p5 = p4 * 31,
                   p6 = p5 * 31, p7 = p6 * 31, p8 = p7 * 31;
    uint64_t h = 0;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t lo = s[i] * p7 + s[i + 1] * p6 + s[i + 2] * p5 + s[i + 3] * p4;
        uint64_t hi = s[i + 4] * p3 + s[i + 5] * p2 + s[i + 6] * p1 + s[i + 7];
        h = h * p8 + (lo + hi);
    }
    for (; i < n; i++) h = h * 31u + s[i];
    return h;
}

static cortex_result_t bench_transform(char *input, size_t input_len) {
    cortex_value text, mode;
    cortex_field fields[] = {{"text", &text}, {"mode", &mode}};
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&text, CORTEX_JSON_STRING, "text")) return 0;
    if (!cortex_expect(&mode, CORTEX_JSON_STRING, "mode")) return 0;

    if (cortex_value_equals(&mode, "reverse"))
        bench_reverse_utf8(text.str, text.len);
    else if (cortex_value_equals(&mode, "uppercase"))
        bench_ascii_upper(text.str, text.len);
    else if (cortex_value_equals(&mode, "lowercase"))
        bench_ascii_lower(text.str, text.len);
    else if (cortex_value_equals(&mode, "rot13"))
        bench_ascii_rot13(text.str, text.len);

    cortex_writer w;
    cortex_writer_init(&w, text.len + 64);
    cortex_begin_object(&w);
    cortex_write_key(&w, "result");
    cortex_write_string(&w, text.str, text.len);
    cortex_write_key(&w, "length");
    cortex_write_uint(&w, text.len);
    cortex_write_key(&w, "hash");
    cortex_write_uint(&w, bench_hash(text.str, text.len));
    cortex_end_object(&w);
    return cortex_writer_finish(&w);
}

/* ---- parse ----------------------------------------------------------------------------- */

typedef struct bench_counts {
    uint64_t objects, arrays, strings, numbers, bools, nulls, keys, max_depth;
} bench_counts;

/* `"key" ws ':'` (validated, counted). */
static int bench_key(cortex_json *j, bench_counts *c) {
    if (cortex_impl_peek(j) != '"') return cortex_impl_fail(j, "expected string key");
    if (!cortex_impl_string(j, 0, NULL, NULL)) return 0;
    c->keys++;
    cortex_impl_ws(j);
    if (cortex_impl_peek(j) != ':') return cortex_impl_fail(j, "expected ':' after object key");
    j->pos++;
    return 1;
}

/* One iterative pass over the document, in the manner of the SDK's own validator (the
 * cortex_impl_* scanners of sdk/c/cortex_plugin.h), counting as it goes. */
static int bench_scan(cortex_json *j, bench_counts *c) {
    uint8_t objects[(CORTEX_JSON_MAX_DEPTH + 7) / 8];
    size_t depth = 0;
    cortex_impl_ws(j);
    if (j->pos >= j->len) return cortex_impl_fail(j, "empty input");
    for (;;) {
        cortex_impl_ws(j);
        int ch = cortex_impl_peek(j);
        if (ch == '{' || ch == '[') {
            if (depth == CORTEX_JSON_MAX_DEPTH) return cortex_impl_fail(j, "nesting too deep");
            if (ch == '{') c->objects++; else c->arrays++;
            if (depth + 1 > c->max_depth) c->max_depth = depth + 1;
            j->pos++;
            cortex_impl_ws(j);
            if (cortex_impl_peek(j) == (ch == '{' ? '}' : ']')) {
                j->pos++;
            } else {
                if (ch == '{')
                    objects[depth / 8] = (uint8_t)(objects[depth / 8] | (1u << (depth % 8)));
                else
                    objects[depth / 8] = (uint8_t)(objects[depth / 8] & ~(1u << (depth % 8)));
                depth++;
                if (ch == '{' && !bench_key(j, c)) return 0;
                continue;
            }
        } else if (ch == '"') {
            if (!cortex_impl_string(j, 0, NULL, NULL)) return 0;
            c->strings++;
        } else if (ch == '-' || cortex_impl_digit(ch)) {
            if (!cortex_impl_number(j)) return 0;
            c->numbers++;
        } else if (ch == 't') {
            if (!cortex_impl_literal(j, "true", 4)) return 0;
            c->bools++;
        } else if (ch == 'f') {
            if (!cortex_impl_literal(j, "false", 5)) return 0;
            c->bools++;
        } else if (ch == 'n') {
            if (!cortex_impl_literal(j, "null", 4)) return 0;
            c->nulls++;
        } else if (ch < 0) {
            return cortex_impl_fail(j, "unexpected end of input, expected a value");
        } else {
            return cortex_impl_fail(j, "unexpected character, expected a value");
        }
        for (;;) {
            if (depth == 0) return cortex_impl_end(j);
            cortex_impl_ws(j);
            int is_object = (objects[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
            ch = cortex_impl_peek(j);
            if (ch == ',') {
                j->pos++;
                if (is_object) {
                    cortex_impl_ws(j);
                    if (!bench_key(j, c)) return 0;
                }
                break;
            }
            if (ch == (is_object ? '}' : ']')) {
                j->pos++;
                depth--;
                continue;
            }
            return cortex_impl_fail(j, is_object ? "expected ',' or '}' in object"
                                                 : "expected ',' or ']' in array");
        }
    }
}

static cortex_result_t bench_parse(char *input, size_t input_len) {
    bench_counts c = {0, 0, 0, 0, 0, 0, 0, 0};
    cortex_json j;
    cortex_json_init(&j, input, input_len);
    if (!bench_scan(&j, &c)) return cortex_json_report_error(&j);

    cortex_writer w;
    cortex_writer_init(&w, 224);
    cortex_begin_object(&w);
    cortex_write_key(&w, "objects");
    cortex_write_uint(&w, c.objects);
    cortex_write_key(&w, "arrays");
    cortex_write_uint(&w, c.arrays);
    cortex_write_key(&w, "strings");
    cortex_write_uint(&w, c.strings);
    cortex_write_key(&w, "numbers");
    cortex_write_uint(&w, c.numbers);
    cortex_write_key(&w, "bools");
    cortex_write_uint(&w, c.bools);
    cortex_write_key(&w, "nulls");
    cortex_write_uint(&w, c.nulls);
    cortex_write_key(&w, "keys");
    cortex_write_uint(&w, c.keys);
    cortex_write_key(&w, "max_depth");
    cortex_write_uint(&w, c.max_depth);
    cortex_write_key(&w, "bytes");
    cortex_write_uint(&w, input_len);
    cortex_end_object(&w);
    return cortex_writer_finish(&w);
}

/* ---- echo ------------------------------------------------------------------------------ */

static cortex_result_t bench_echo(char *input, size_t input_len) {
    return cortex_result(input, input_len);
}

#endif /* BENCH_LOGIC_H */
