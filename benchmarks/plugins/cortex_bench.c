/*
 * cortex_bench.c - the benchmark plugin, Cortex plugin ABI v1 (docs/abi.md), built with the
 * C SDK (sdk/c/cortex_plugin.h). Run by Cortex Runtime (scenario A) and by the in-process
 * wasmtime-py baseline (B). The logic lives in bench_logic.h, shared with extism_bench.c.
 */
#include "cortex_plugin.h"
#include "bench_logic.h"

CORTEX_CAPABILITY(transform, input, input_len) { return bench_transform(input, input_len); }

CORTEX_CAPABILITY(parse, input, input_len) { return bench_parse(input, input_len); }

CORTEX_CAPABILITY(echo, input, input_len) { return bench_echo(input, input_len); }

CORTEX_CAPABILITY(trap, input, input_len) {
    (void)input;
    (void)input_len;
    __builtin_trap();
}
