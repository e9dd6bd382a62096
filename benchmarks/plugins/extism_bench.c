/*
 * extism_bench.c - the benchmark plugin, Extism ABI, for Extism's Python SDK (scenario C).
 *
 * Hand-written against Extism's host module "extism:host/env" (no PDK library): an export
 * takes no arguments and returns 0 (success) or 1 (error); the input is read from the host
 * with input_length/input_load_u64/input_load_u8, the result is copied into host memory
 * (alloc, store_u64/store_u8) and handed over with output_set; errors with error_set.
 *
 * The capability logic is bench_logic.h, byte for byte the code the Cortex build runs. It
 * uses the JSON reader/writer of sdk/c/cortex_plugin.h, whose two `cortex` host functions are
 * defined here (so the module imports nothing from "cortex"): cortex.error becomes Extism's
 * error_set; cortex.log becomes log_info & co.
 *
 * Extism keeps one instance per Plugin across calls (unlike Cortex's fresh instance per call),
 * so every block this file allocates is freed before the export returns.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cortex_plugin.h"

typedef uint64_t ExtismPointer;

#define EXTISM_IMPORT(name) __attribute__((import_module("extism:host/env"), import_name(name)))

EXTISM_IMPORT("input_length") extern uint64_t extism_input_length(void);
EXTISM_IMPORT("input_load_u8") extern uint32_t extism_input_load_u8(ExtismPointer offset);
EXTISM_IMPORT("input_load_u64") extern uint64_t extism_input_load_u64(ExtismPointer offset);
EXTISM_IMPORT("alloc") extern ExtismPointer extism_alloc(uint64_t size);
EXTISM_IMPORT("store_u8") extern void extism_store_u8(ExtismPointer at, uint32_t value);
EXTISM_IMPORT("store_u64") extern void extism_store_u64(ExtismPointer at, uint64_t value);
EXTISM_IMPORT("output_set") extern void extism_output_set(ExtismPointer at, uint64_t size);
EXTISM_IMPORT("error_set") extern void extism_error_set(ExtismPointer at);
EXTISM_IMPORT("log_info") extern void extism_log_info(ExtismPointer at);
EXTISM_IMPORT("log_debug") extern void extism_log_debug(ExtismPointer at);
EXTISM_IMPORT("log_warn") extern void extism_log_warn(ExtismPointer at);
EXTISM_IMPORT("log_error") extern void extism_log_error(ExtismPointer at);

/* Copies n bytes of guest memory into a new block of Extism (host) memory. */
static ExtismPointer bench_to_host(const char *data, size_t n) {
    ExtismPointer at = extism_alloc(n);
    if (at == 0) return 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        extism_store_u64(at + i, word);
    }
    for (; i < n; i++) extism_store_u8(at + i, (uint8_t)data[i]);
    return at;
}

static int bench_failed; /* cortex.error was called during this export */

/* The SDK's `cortex` host imports, implemented on Extism's. */
void cortex_host_error(const char *msg, uint32_t len) {
    if (bench_failed) return; /* only the first error counts, as in Cortex */
    bench_failed = 1;
    ExtismPointer at = bench_to_host(msg, len);
    if (at) extism_error_set(at);
}

void cortex_host_log(int32_t level, const char *msg, uint32_t len) {
    ExtismPointer at = bench_to_host(msg, len);
    if (at == 0) return;
    switch (level) {
    case 0: extism_log_debug(at); break;
    case 2: extism_log_warn(at); break;
    case 3: extism_log_error(at); break;
    default: extism_log_info(at);
    }
}

#include "bench_logic.h"

typedef cortex_result_t (*bench_capability)(char *input, size_t input_len);

/* Read the input into a block from the SDK's allocator (as the Cortex host does through
 * cortex_alloc), run the capability, copy its result out, free everything. */
static int32_t bench_run(bench_capability capability) {
    bench_failed = 0;
    uint64_t n = extism_input_length();
    char *input = (char *)cortex_alloc((uint32_t)(n ? n : 1));
    if (input == NULL) return cortex_error("out of memory reading the input"), 1;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word = extism_input_load_u64(i);
        memcpy(input + i, &word, 8);
    }
    for (; i < n; i++) input[i] = (char)extism_input_load_u8(i);

    cortex_result_t result = capability(input, (size_t)n);
    int32_t status = 1;
    if (result != 0 && !bench_failed) {
        const char *r = (const char *)(uintptr_t)result;
        uint32_t len = (uint32_t)(uint8_t)r[0] | (uint32_t)(uint8_t)r[1] << 8 |
                       (uint32_t)(uint8_t)r[2] << 16 | (uint32_t)(uint8_t)r[3] << 24;
        ExtismPointer out = bench_to_host(r + 4, len);
        if (out != 0) {
            extism_output_set(out, len);
            status = 0;
        } else {
            cortex_error("out of memory writing the output");
        }
    } else if (!bench_failed) {
        cortex_error("the capability returned no result");
    }
    /* The result block: the writer's own block, or (echo) inside the input block. */
    char *block = input - 4;
    uintptr_t rp = (uintptr_t)result;
    if (rp != 0 && !(rp >= (uintptr_t)block && rp < (uintptr_t)input + n)) free((void *)rp);
    free(block);
    cortex_impl_input = NULL;
    cortex_impl_input_len = 0;
    return status;
}

__attribute__((export_name("transform"))) int32_t transform(void) { return bench_run(bench_transform); }
__attribute__((export_name("parse"))) int32_t parse(void) { return bench_run(bench_parse); }
__attribute__((export_name("echo"))) int32_t echo(void) { return bench_run(bench_echo); }
__attribute__((export_name("trap"))) int32_t trap(void) { __builtin_trap(); }
