/*
 * utf8.c - where bytes stop being UTF-8, in one pass (for sandbox/utf8.py).
 *
 * The supervisor checks that JSON text a caller hands to Runtime.call_json is UTF-8 before any
 * worker sees it. Python can only tell by decoding, which builds a str: for a 100 KB document
 * with some non-ASCII text that was ~110 µs of a ~0.8 ms round trip (docs/performance.md). This
 * reads eight ASCII bytes at a time and builds nothing. The rules are Unicode's well-formed
 * byte sequences (Table 3-7), which are the ones Python's strict UTF-8 decoder applies: no
 * overlong forms, no surrogates, nothing above U+10FFFF; tests/test_utf8.py holds the two to the
 * same answer, offset included.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ASCII_MASK 0x8080808080808080ULL

/* The offset of the first byte of the first ill-formed sequence in data (where Python's
 * UnicodeDecodeError.start points), or -1 if all length bytes are well-formed UTF-8. */
int64_t cortex_utf8_check(const uint8_t *data, size_t length) {
    size_t i = 0;
    while (i < length) {
        if (length - i >= 16) {
            uint64_t first, second;
            memcpy(&first, data + i, 8);
            memcpy(&second, data + i + 8, 8);
            if (((first | second) & ASCII_MASK) == 0) {
                i += 16;
                continue;
            }
        }
        uint8_t lead = data[i];
        if (lead < 0x80) {
            i++;
            continue;
        }
        size_t more;                       /* continuation bytes after the lead */
        uint8_t low = 0x80, high = 0xBF;   /* the range of the first of them */
        if (lead >= 0xC2 && lead <= 0xDF) {
            more = 1;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            more = 2;
            if (lead == 0xE0) low = 0xA0;        /* overlong */
            else if (lead == 0xED) high = 0x9F;  /* surrogates */
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            more = 3;
            if (lead == 0xF0) low = 0x90;        /* overlong */
            else if (lead == 0xF4) high = 0x8F;  /* above U+10FFFF */
        } else {
            return (int64_t)i;                   /* a continuation byte, C0, C1 or F5-FF */
        }
        if (length - i - 1 < more || data[i + 1] < low || data[i + 1] > high) return (int64_t)i;
        for (size_t k = 2; k <= more; k++) {
            if ((data[i + k] & 0xC0) != 0x80) return (int64_t)i;
        }
        i += more + 1;
    }
    return -1;
}
