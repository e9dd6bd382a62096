/*
 * conformance-c: the conformance plugin for C (conformance/README.md), written against the
 * public surface of sdk/c/cortex_plugin.h only.
 *
 *   transform  {"text": string, "mode": string} -> {"result": string, "length": N, "hash": N}
 *   echo       any JSON -> the same bytes
 *   fail       {"message": string} -> PluginError(message)
 *   log        {"message": string} -> logs message at info, {"logged": true}
 */
#include <stddef.h>
#include <stdint.h>

#include "cortex_plugin.h"

/* ---- transform ------------------------------------------------------------------------- */

static void reverse_bytes(char *s, size_t n) {
    if (n < 2) return;
    size_t i = 0, j = n - 1;
    while (i < j) {
        char t = s[i];
        s[i++] = s[j];
        s[j--] = t;
    }
}

/* Reverses valid UTF-8 by code point: reverse all bytes, then put the bytes of each
 * multi-byte sequence (now continuation bytes first, lead byte last) back in order. */
static void reverse_utf8(char *s, size_t n) {
    reverse_bytes(s, n);
    size_t i = 0;
    while (i < n) {
        if (((uint8_t)s[i] & 0xC0) == 0x80) {
            size_t j = i;
            while (j < n && ((uint8_t)s[j] & 0xC0) == 0x80) j++;
            size_t end = j < n ? j + 1 : n; /* s[j] is the lead byte */
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

/* h = h * 31 + byte over the UTF-8 bytes, wrapping unsigned 64-bit. */
static uint64_t simple_hash(const char *s, size_t n) {
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31u + (uint8_t)s[i];
    return h;
}

CORTEX_CAPABILITY(transform, input, input_len) {
    cortex_value text, mode;
    cortex_field fields[] = {{"text", &text}, {"mode", &mode}};
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&text, CORTEX_JSON_STRING, "text")) return 0;
    if (!cortex_expect(&mode, CORTEX_JSON_STRING, "mode")) return 0;

    /* text.str is the decoded text inside the input buffer: transform it in place. */
    if (cortex_value_equals(&mode, "reverse"))
        reverse_utf8(text.str, text.len);
    else if (cortex_value_equals(&mode, "uppercase"))
        ascii_upper(text.str, text.len);
    else if (cortex_value_equals(&mode, "lowercase"))
        ascii_lower(text.str, text.len);
    else if (cortex_value_equals(&mode, "rot13"))
        ascii_rot13(text.str, text.len);
    /* any other mode: unchanged */

    /* Sized up front (the text plus room for the rest): one block for a large result instead
     * of a chain of doublings. It still grows if the text needs many escapes. */
    cortex_writer w;
    cortex_writer_init(&w, text.len + 64);
    cortex_begin_object(&w);
    cortex_write_key(&w, "result");
    cortex_write_string(&w, text.str, text.len);
    cortex_write_key(&w, "length");
    cortex_write_uint(&w, text.len);
    cortex_write_key(&w, "hash");
    cortex_write_uint(&w, simple_hash(text.str, text.len));
    cortex_end_object(&w);
    return cortex_writer_finish(&w);
}

/* ---- echo: the raw-bytes path (the input buffer itself, no copy) ------------------------ */

CORTEX_CAPABILITY(echo, input, input_len) { return cortex_result(input, input_len); }

/* ---- fail ------------------------------------------------------------------------------- */

CORTEX_CAPABILITY(fail, input, input_len) {
    cortex_value message;
    cortex_field fields[] = {{"message", &message}};
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&message, CORTEX_JSON_STRING, "message")) return 0;
    return cortex_error_n(message.str, message.len);
}

/* ---- log -------------------------------------------------------------------------------- */

CORTEX_CAPABILITY(log, input, input_len) {
    cortex_value message;
    cortex_field fields[] = {{"message", &message}};
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&message, CORTEX_JSON_STRING, "message")) return 0;
    cortex_log_n(CORTEX_LOG_INFO, message.str, message.len);
    return cortex_result_cstr("{\"logged\":true}");
}
