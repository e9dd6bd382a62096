"""Code that runs inside a Cortex worker process: the Wasmtime engine, calls, confinement.

Kept apart from ``cortex_runtime`` (the supervisor) and light on imports, so a worker starts
fast and carries nothing it does not need. The supervisor may import from here; never the reverse.
"""
