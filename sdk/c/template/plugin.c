/*
 * {{name}}: a Cortex plugin in C, built on the C/C++ SDK (cortex_plugin.h).
 *
 * Capability `greet`
 *   input : {"name": string}            (other keys are ignored)
 *   output: {"greeting": "hello, <name>"}
 *   a missing or non-string "name" fails the call with a PluginError.
 *
 * Build: ./build.sh (needs CORTEX_SDK_DIR). Add capabilities with more CORTEX_CAPABILITY blocks;
 * each becomes an export the host can call.
 */
#include "cortex_plugin.h"

CORTEX_CAPABILITY(greet, input, input_len) {
    /* Read the fields we need; the SDK reports invalid JSON or a non-object input itself. */
    cortex_value name;
    cortex_field fields[] = { {"name", &name} };
    if (!cortex_json_fields(input, input_len, fields, CORTEX_COUNT(fields))) return 0;
    if (!cortex_expect(&name, CORTEX_JSON_STRING, "name")) return 0;

    cortex_logf(CORTEX_LOG_DEBUG, "greeting %zu bytes of name", name.len);

    /* {"greeting": "hello, <name>"}; the writer escapes the text as needed. */
    cortex_writer w;
    cortex_writer_init(&w, name.len + 32);
    cortex_begin_object(&w);
    cortex_write_key(&w, "greeting");
    cortex_string_begin(&w);
    cortex_string_append_cstr(&w, "hello, ");
    cortex_string_append(&w, name.str, name.len);
    cortex_string_end(&w);
    cortex_end_object(&w);
    return cortex_writer_finish(&w);
}
