"""Code that runs inside a Cortex worker process: the Wasmtime engine, calls, confinement.

Kept apart from ``cortex_runtime`` (the supervisor) and light on imports, so a worker starts
fast and carries nothing it does not need. The supervisor may import from here; never the reverse.
"""

#: Plugins a worker keeps one prepared instance for by default (each holds a pooling slot and its
#: pages), and at most (the pool's slots also serve the running call and the spent one).
PREPARED_PLUGINS = 4
MAX_PREPARED_PLUGINS = 6
#: The native library beside this package (scripts/build-native): the worker's call path
#: (sandbox/guest.py) and the supervisor's UTF-8 check (cortex_runtime/utf8.py).
NATIVE_LIBRARY = "_guest_native.so"
