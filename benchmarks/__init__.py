"""Cortex Runtime's benchmark suite (issue 5): ``python -m benchmarks [--quick]``.

A: Cortex Runtime through its public API; B: in-process wasmtime-py written carefully; C: Extism's
Python SDK (and C′, a fresh Extism instance per call); D: the IPC floor. See docs/benchmarks.md
and :func:`benchmarks.suite.run_suite`.
"""
