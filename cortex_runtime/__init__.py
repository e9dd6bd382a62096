"""Cortex Runtime: run untrusted WebAssembly plugins from async Python, in sandboxed workers.

    from cortex_runtime import Runtime

    async with Runtime(plugin_dirs=["plugins"], workers=2) as rt:
        out = await rt.call("text-processor", "transform", {"text": "hello", "mode": "reverse"})
"""

from . import errors
from .errors import (
    CallTimeout,
    CapabilityNotFound,
    CortexError,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    ManifestError,
    MemoryLimitExceeded,
    Overloaded,
    PluginError,
    PluginNotFound,
    PluginQuarantined,
    PluginTrap,
    ProtocolError,
    WorkerCrashed,
)
from .manifest import Manifest, load_manifest
from .runtime import PluginInfo, Runtime

__version__ = "0.1.0"

__all__ = [
    "CallTimeout",
    "CapabilityNotFound",
    "CortexError",
    "FuelExhausted",
    "InvalidInput",
    "InvalidOutput",
    "Manifest",
    "ManifestError",
    "MemoryLimitExceeded",
    "Overloaded",
    "PluginError",
    "PluginInfo",
    "PluginNotFound",
    "PluginQuarantined",
    "PluginTrap",
    "ProtocolError",
    "Runtime",
    "WorkerCrashed",
    "__version__",
    "errors",
    "load_manifest",
]
