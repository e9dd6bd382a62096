/*
 * text-processor: the product document's example plugin, written in C for the
 * Cortex plugin ABI v1 (docs/abi.md).
 *
 * Build as a WASI reactor (see build.sh):
 *   python -m ziglang cc --target=wasm32-wasi -mexec-model=reactor -O2 \
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
 * Memory: the input JSON is decoded and transformed in place inside the buffer the host
 * wrote it into (a decoded JSON string is never longer than its escaped form), and the
 * result is then built in that same buffer, grown with realloc() to the exact output size.
 * This matters because the malloc linked by `zig cc` rounds large blocks up to a power of
 * two (observed with ziglang 0.17): a 1 MB input already occupies 2 MB, and a second 1 MB
 * block for the output would not fit the manifest's maxMemoryPages (50 pages = 3.2 MB).
 * Growing the input block in place needs no extra memory. Every pass is linear.
 *
 * Errors are reported through cortex.error followed by `return 0` (ABI v1).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("cortex"), import_name("error")))
void cortex_error(const char *msg, int len);

__attribute__((import_module("cortex"), import_name("log")))
void cortex_log(int level, const char *msg, int len);

#define LOG_DEBUG 0
#define MAX_DEPTH 1024   /* nesting limit when skipping unknown values */
#define LOG_MODE_MAX 64  /* bytes of the mode echoed in the log line */

/* ------------------------------------------------------------------------ */
/* Small string builder on a fixed buffer (used for error and log messages). */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} Msg;

static void msg_bytes(Msg *m, const char *s, size_t n) {
    size_t room = m->cap - m->len;
    if (n > room) n = room;
    memcpy(m->buf + m->len, s, n);
    m->len += n;
}

static void msg_str(Msg *m, const char *s) { msg_bytes(m, s, strlen(s)); }

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

static void msg_u64(Msg *m, uint64_t v) {
    char d[20];
    msg_bytes(m, d, u64_to_dec(v, d));
}

static void report_error(const char *text) { cortex_error(text, (int)strlen(text)); }

/* Bytes of the JSON escape of each byte in output strings: 1 = copied as is (including
 * UTF-8 bytes >= 0x80), 2 = short escape (\" \\ \b \f \n \r \t), 6 = \u00XX. */
static const uint8_t ESC_LEN[256] = {
    [0x00 ... 0x07] = 6, ['\b'] = 2, ['\t'] = 2, ['\n'] = 2, [0x0b] = 6, ['\f'] = 2,
    ['\r'] = 2, [0x0e ... 0x1f] = 6, [0x20 ... 0x21] = 1, ['"'] = 2, [0x23 ... 0x5b] = 1,
    ['\\'] = 2, [0x5d ... 0xff] = 1,
};

static const char HEX[] = "0123456789abcdef";

/* ------------------------------------------------------------------------ */
/* JSON reader. Strings are decoded in place (the write cursor never passes the
 * read cursor), so no allocation is needed while parsing. */

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t pos;
    const char *err;   /* static reason, set on the first failure */
    size_t err_pos;
} Parser;

static int fail(Parser *p, const char *reason) {
    if (!p->err) {
        p->err = reason;
        p->err_pos = p->pos;
    }
    return 0;
}

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        uint8_t c = p->buf[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->pos++;
        else
            break;
    }
}

/* Next byte, or -1 at end of input. */
static int peek(Parser *p) { return p->pos < p->len ? p->buf[p->pos] : -1; }

static int hex_val(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape at p->pos. */
static int read_hex4(Parser *p, uint32_t *out) {
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val(p->buf[p->pos + i]);
        if (h < 0) return fail(p, "invalid hex digit in \\u escape");
        v = (v << 4) | (uint32_t)h;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

static size_t utf8_encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    } else {
        out[0] = (uint8_t)(0xF0 | (cp >> 18));
        out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (uint8_t)(0x80 | (cp & 0x3F));
        return 4;
    }
}

/* Length of the valid UTF-8 sequence starting at s[0] (s has `avail` bytes), or 0 if the
 * sequence is invalid (bad lead byte, truncated, overlong, surrogate, > U+10FFFF). */
static size_t utf8_valid_seq(const uint8_t *s, size_t avail) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (avail < 2 || (s[1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* UTF-16 surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* Parses a JSON string at p->pos (which must be '"'). The decoded UTF-8 bytes are written
 * in place; *start and *n receive their location and length. */
static int parse_string(Parser *p, size_t *start, size_t *n) {
    if (peek(p) != '"') return fail(p, "expected '\"'");
    /* The cursors live in locals: stores through `b` may alias *p, so keeping them in the
     * struct would force a reload and store on every byte. */
    uint8_t *b = p->buf;
    const size_t len = p->len;
    size_t r = p->pos + 1; /* read cursor */
    size_t w = r;          /* write cursor, never ahead of r */
    *start = w;
    for (;;) {
        /* Fast path: printable ASCII other than '"' and '\\'. */
        while (r < len) {
            uint8_t c = b[r];
            if (c >= 0x80 || ESC_LEN[c] != 1) break;
            b[w++] = c;
            r++;
        }
        if (r >= len) {
            p->pos = r;
            return fail(p, "unterminated string");
        }
        uint8_t c = b[r];
        if (c == '"') {
            p->pos = r + 1;
            *n = w - *start;
            return 1;
        }
        if (c < 0x20) {
            p->pos = r;
            return fail(p, "unescaped control character in string");
        }
        if (c == '\\') {
            if (r + 1 >= len) {
                p->pos = r + 1;
                return fail(p, "unterminated string");
            }
            uint8_t e = b[r + 1];
            r += 2;
            switch (e) {
            case '"': b[w++] = '"'; break;
            case '\\': b[w++] = '\\'; break;
            case '/': b[w++] = '/'; break;
            case 'b': b[w++] = '\b'; break;
            case 'f': b[w++] = '\f'; break;
            case 'n': b[w++] = '\n'; break;
            case 'r': b[w++] = '\r'; break;
            case 't': b[w++] = '\t'; break;
            case 'u': {
                uint32_t cp;
                p->pos = r;
                if (!read_hex4(p, &cp)) return 0;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->len - p->pos < 2 || b[p->pos] != '\\' || b[p->pos + 1] != 'u')
                        return fail(p, "unpaired high surrogate in \\u escape");
                    p->pos += 2;
                    if (!read_hex4(p, &lo)) return 0;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail(p, "unpaired high surrogate in \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return fail(p, "unpaired low surrogate in \\u escape");
                }
                r = p->pos;
                /* 6 (or 12) escape bytes were consumed; at most 3 (or 4) are written. */
                w += utf8_encode(cp, b + w);
                break;
            }
            default:
                p->pos = r - 1;
                return fail(p, "invalid escape in string");
            }
            continue;
        }
        /* c >= 0x80: copy one validated UTF-8 sequence. */
        size_t k = utf8_valid_seq(b + r, len - r);
        if (k == 0) {
            p->pos = r;
            return fail(p, "invalid UTF-8 in string");
        }
        for (size_t i = 0; i < k; i++) b[w++] = b[r++];
    }
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int parse_number(Parser *p) {
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p))) p->pos++;
    } else {
        return fail(p, "invalid number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!is_digit(peek(p))) return fail(p, "invalid number: expected digit after '.'");
        while (is_digit(peek(p))) p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!is_digit(peek(p))) return fail(p, "invalid number: expected digit in exponent");
        while (is_digit(peek(p))) p->pos++;
    }
    return 1;
}

static int parse_literal(Parser *p, const char *lit) {
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->buf + p->pos, lit, n) != 0)
        return fail(p, "invalid literal");
    p->pos += n;
    return 1;
}

/* Parses `"key" ws ':'` inside an object. */
static int parse_key_colon(Parser *p, size_t *start, size_t *n) {
    if (peek(p) != '"') return fail(p, "expected string key");
    if (!parse_string(p, start, n)) return 0;
    skip_ws(p);
    if (peek(p) != ':') return fail(p, "expected ':' after object key");
    p->pos++;
    return 1;
}

/* Validates and skips any JSON value starting at p->pos (leading whitespace allowed).
 * Iterative, so deep nesting cannot overflow the C stack. */
static int skip_value(Parser *p) {
    uint8_t stack[MAX_DEPTH];
    size_t depth = 0;
    size_t ks, kn;

    for (;;) {
        /* Expect a value. */
        skip_ws(p);
        int c = peek(p);
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH) return fail(p, "nesting deeper than 1024 levels");
            p->pos++;
            skip_ws(p);
            if (peek(p) == (c == '{' ? '}' : ']')) {
                p->pos++; /* empty container: a complete value */
            } else {
                stack[depth++] = (uint8_t)c;
                if (c == '{') {
                    if (!parse_key_colon(p, &ks, &kn)) return 0;
                }
                continue; /* expect the first member's value */
            }
        } else if (c == '"') {
            if (!parse_string(p, &ks, &kn)) return 0;
        } else if (c == '-' || is_digit(c)) {
            if (!parse_number(p)) return 0;
        } else if (c == 't') {
            if (!parse_literal(p, "true")) return 0;
        } else if (c == 'f') {
            if (!parse_literal(p, "false")) return 0;
        } else if (c == 'n') {
            if (!parse_literal(p, "null")) return 0;
        } else if (c < 0) {
            return fail(p, "unexpected end of input, expected a value");
        } else {
            return fail(p, "unexpected character, expected a value");
        }

        /* A value is complete: close containers or move to the next member. */
        for (;;) {
            if (depth == 0) return 1;
            skip_ws(p);
            uint8_t top = stack[depth - 1];
            c = peek(p);
            if (c == ',') {
                p->pos++;
                if (top == '{') {
                    skip_ws(p);
                    if (!parse_key_colon(p, &ks, &kn)) return 0;
                }
                break; /* expect the next value */
            }
            if ((top == '{' && c == '}') || (top == '[' && c == ']')) {
                p->pos++;
                depth--;
                continue;
            }
            return fail(p, top == '{' ? "expected ',' or '}' in object"
                                      : "expected ',' or ']' in array");
        }
    }
}

static const char *value_type_name(int c) {
    switch (c) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

typedef struct {
    int found;
    int is_string;
    const char *type;  /* type name when not a string */
    size_t start, len; /* decoded bytes when a string */
} Field;

static int key_is(const Parser *p, size_t start, size_t n, const char *name) {
    size_t m = strlen(name);
    return n == m && memcmp(p->buf + start, name, m) == 0;
}

/* Reads one field's value (the last occurrence of a duplicated key wins). */
static int read_field(Parser *p, Field *f) {
    skip_ws(p);
    int c = peek(p);
    f->found = 1;
    if (c == '"') {
        f->is_string = 1;
        return parse_string(p, &f->start, &f->len);
    }
    f->is_string = 0;
    f->type = value_type_name(c);
    return skip_value(p);
}

/* Parses the whole input: a JSON object with "text" and "mode". Returns 0 and sets p->err
 * on malformed JSON; *not_object is set when the input is valid JSON but not an object. */
static int parse_input(Parser *p, Field *text, Field *mode, const char **not_object) {
    size_t ks, kn;
    *not_object = NULL;
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "empty input");
    int c = peek(p);
    if (c != '{') {
        if (!skip_value(p)) return 0;
        skip_ws(p);
        if (p->pos != p->len) return fail(p, "unexpected trailing characters");
        *not_object = value_type_name(c);
        return 1;
    }
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (!parse_key_colon(p, &ks, &kn)) return 0;
            int ok;
            if (key_is(p, ks, kn, "text"))
                ok = read_field(p, text);
            else if (key_is(p, ks, kn, "mode"))
                ok = read_field(p, mode);
            else
                ok = skip_value(p);
            if (!ok) return 0;
            skip_ws(p);
            c = peek(p);
            if (c == ',') {
                p->pos++;
                continue;
            }
            if (c == '}') {
                p->pos++;
                break;
            }
            return fail(p, "expected ',' or '}' in object");
        }
    }
    skip_ws(p);
    if (p->pos != p->len) return fail(p, "unexpected trailing characters");
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Transformations (in place). */

static void reverse_bytes(uint8_t *s, size_t n) {
    if (n < 2) return;
    size_t i = 0, j = n - 1;
    while (i < j) {
        uint8_t t = s[i];
        s[i++] = s[j];
        s[j--] = t;
    }
}

/* Reverses valid UTF-8 by code point: reverse all bytes, then restore the byte order
 * inside each multi-byte sequence (which now reads continuation bytes, then lead). */
static void reverse_utf8(uint8_t *s, size_t n) {
    reverse_bytes(s, n);
    size_t i = 0;
    while (i < n) {
        if ((s[i] & 0xC0) == 0x80) {
            size_t j = i;
            while (j < n && (s[j] & 0xC0) == 0x80) j++;
            /* s[j] is the lead byte of this sequence */
            size_t end = j < n ? j + 1 : n;
            reverse_bytes(s + i, end - i);
            i = end;
        } else {
            i++;
        }
    }
}

static void ascii_upper(uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'a' && s[i] <= 'z') s[i] = (uint8_t)(s[i] - 'a' + 'A');
}

static void ascii_lower(uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (uint8_t)(s[i] - 'A' + 'a');
}

static void ascii_rot13(uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 'a' && c <= 'z')
            s[i] = (uint8_t)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z')
            s[i] = (uint8_t)('A' + (c - 'A' + 13) % 26);
    }
}

static uint64_t simple_hash(const uint8_t *s, size_t n) {
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++) acc = acc * 31u + s[i];
    return acc;
}

/* ------------------------------------------------------------------------ */
/* Output. */


static uint64_t escaped_len(const uint8_t *s, size_t n) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += ESC_LEN[s[i]];
    return total;
}

/* Writes the JSON-escaped form of s[0..n) at o. o may overlap s as long as s starts at or
 * after o + escaped_len(s, n) - n (each byte is read before its escape is written, and an
 * escape never writes past the next unread byte). */
static uint8_t *write_escaped(uint8_t *o, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (ESC_LEN[c] == 1) {
            *o++ = c; /* ASCII and raw UTF-8 */
        } else if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = (uint8_t)HEX[c >> 4];
                *o++ = (uint8_t)HEX[c & 0xF];
            }
        }
    }
    return o;
}

static uint8_t *write_lit(uint8_t *o, const char *s) {
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

/* ------------------------------------------------------------------------ */

static void log_call(const uint8_t *mode, size_t mode_len, size_t text_len) {
    char buf[160];
    Msg m = {buf, sizeof buf, 0};
    size_t n = mode_len;
    if (n > LOG_MODE_MAX) {
        n = LOG_MODE_MAX;
        while (n > 0 && (mode[n] & 0xC0) == 0x80) n--; /* cut on a code point boundary */
    }
    msg_str(&m, "transform mode=");
    msg_bytes(&m, (const char *)mode, n);
    if (n < mode_len) msg_str(&m, "...");
    msg_str(&m, " bytes=");
    msg_u64(&m, text_len);
    cortex_log(LOG_DEBUG, buf, (int)m.len);
}

static int field_error(const char *name, const Field *f) {
    char buf[96];
    Msg m = {buf, sizeof buf, 0};
    if (!f->found) {
        msg_str(&m, "missing required field \"");
        msg_str(&m, name);
        msg_str(&m, "\" (a string)");
    } else {
        msg_str(&m, "field \"");
        msg_str(&m, name);
        msg_str(&m, "\" must be a string, got ");
        msg_str(&m, f->type);
    }
    cortex_error(buf, (int)m.len);
    return 0;
}

static int mode_is(const uint8_t *mode, size_t n, const char *name) {
    size_t m = strlen(name);
    return n == m && memcmp(mode, name, m) == 0;
}

__attribute__((export_name("transform")))
uint32_t transform(uint8_t *input, uint32_t input_len) {
    Parser p = {input, input_len, 0, NULL, 0};
    Field text = {0}, mode = {0};
    const char *not_object;

    if (!parse_input(&p, &text, &mode, &not_object)) {
        char buf[160];
        Msg m = {buf, sizeof buf, 0};
        msg_str(&m, "invalid JSON input at byte ");
        msg_u64(&m, p.err_pos);
        msg_str(&m, ": ");
        if (p.err_pos >= p.len && strncmp(p.err, "expected", 8) == 0)
            msg_str(&m, "unexpected end of input, ");
        msg_str(&m, p.err);
        cortex_error(buf, (int)m.len);
        return 0;
    }
    if (not_object) {
        char buf[96];
        Msg m = {buf, sizeof buf, 0};
        msg_str(&m, "input must be a JSON object with \"text\" and \"mode\", got ");
        msg_str(&m, not_object);
        cortex_error(buf, (int)m.len);
        return 0;
    }
    if (!text.found || !text.is_string) return field_error("text", &text);
    if (!mode.found || !mode.is_string) return field_error("mode", &mode);

    uint8_t *s = input + text.start;
    size_t n = text.len;
    const uint8_t *md = input + mode.start;

    log_call(md, mode.len, n);

    if (mode_is(md, mode.len, "reverse"))
        reverse_utf8(s, n);
    else if (mode_is(md, mode.len, "uppercase"))
        ascii_upper(s, n);
    else if (mode_is(md, mode.len, "lowercase"))
        ascii_lower(s, n);
    else if (mode_is(md, mode.len, "rot13"))
        ascii_rot13(s, n);
    /* any other mode: unchanged */

    uint64_t hash = simple_hash(s, n);
    char len_dec[20], hash_dec[20];
    size_t len_digits = u64_to_dec(n, len_dec);
    size_t hash_digits = u64_to_dec(hash, hash_dec);

    static const char P1[] = "{\"result\":\"";
    static const char P2[] = "\",\"length\":";
    static const char P3[] = ",\"hash\":";
    uint64_t esc = escaped_len(s, n);
    uint64_t head = 4 + (sizeof P1 - 1); /* length prefix + opening of the object */
    uint64_t total = head + esc + (sizeof P2 - 1) + len_digits + (sizeof P3 - 1) +
                     hash_digits + 1;
    if (total > 0x7FFFFFFFu) {
        report_error("output too large");
        return 0;
    }

    /* Build the result in the input buffer, grown to `total` bytes if needed. */
    size_t text_off = (size_t)(s - input);
    uint8_t *out = input;
    if (total > input_len) {
        out = realloc(input, (size_t)total);
        if (!out) {
            report_error("out of memory while building the output");
            return 0;
        }
    }
    /* Park the text so that it ends where its escaped form ends, then escape it forward
     * to its final place (see write_escaped). The bytes before it are no longer needed. */
    uint8_t *text_src = out + head + esc - n;
    memmove(text_src, out + text_off, n);
    uint8_t *o = write_escaped(out + head, text_src, n);

    o = write_lit(o, P2);
    memcpy(o, len_dec, len_digits);
    o += len_digits;
    o = write_lit(o, P3);
    memcpy(o, hash_dec, hash_digits);
    o += hash_digits;
    *o = '}';

    uint32_t json_len = (uint32_t)(total - 4);
    out[0] = (uint8_t)(json_len & 0xFF);
    out[1] = (uint8_t)((json_len >> 8) & 0xFF);
    out[2] = (uint8_t)((json_len >> 16) & 0xFF);
    out[3] = (uint8_t)((json_len >> 24) & 0xFF);
    write_lit(out + 4, P1);
    return (uint32_t)(uintptr_t)out;
}
