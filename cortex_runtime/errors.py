"""Every failure a caller of Cortex Runtime can see.

All of them derive from :class:`CortexError`, so ``except CortexError`` catches everything the
runtime raises on purpose. Each class answers one question a caller asks: whose fault was it
(the caller's input, the plugin, or the runtime), and is it worth retrying.
"""

from __future__ import annotations


class CortexError(Exception):
    """Base class of every error raised by Cortex Runtime."""

    #: A short stable name for logs, JSON output and the CLI.
    kind: str = "cortex_error"

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.plugin = plugin


# -- the caller's fault ---------------------------------------------------------------------------


class ManifestError(CortexError):
    """A plugin folder, manifest or wasm file is invalid; the message names the field."""

    kind = "manifest_error"

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        where = f"{path}: " if path else ""
        at = f"{field}: " if field else ""
        super().__init__(f"{where}{at}{message}")
        self.path = path
        self.field = field


class PluginNotFound(CortexError):
    """No plugin with this name is loaded."""

    kind = "plugin_not_found"


class CapabilityNotFound(CortexError):
    """The plugin exists but does not export this capability."""

    kind = "capability_not_found"


class InvalidInput(CortexError):
    """The call's input cannot be sent: not JSON-serialisable, or larger than the plugin allows."""

    kind = "invalid_input"


# -- the plugin's fault ---------------------------------------------------------------------------


class PluginFailure(CortexError):
    """Base class of failures caused by the plugin's code (not by the caller or the runtime)."""

    kind = "plugin_failure"


class PluginTrap(PluginFailure):
    """The guest trapped (unreachable, out-of-bounds access, stack overflow, ...)."""

    kind = "plugin_trap"

    def __init__(
        self, message: str, *, trap_code: str, backtrace: str = "", plugin: str | None = None
    ) -> None:
        super().__init__(message, plugin=plugin)
        self.trap_code = trap_code
        self.backtrace = backtrace


class FuelExhausted(PluginFailure):
    """The call used up its fuel budget (instruction count) before returning."""

    kind = "fuel_exhausted"


class CallTimeout(PluginFailure):
    """The call did not finish within its wall-clock deadline."""

    kind = "call_timeout"


class MemoryLimitExceeded(PluginFailure):
    """The guest needed more linear memory than ``wasm.maxMemoryPages`` allows."""

    kind = "memory_limit_exceeded"


class PluginError(PluginFailure):
    """The guest reported an error itself, through the ``cortex.error`` host import."""

    kind = "plugin_error"


class InvalidOutput(PluginFailure):
    """The guest's result broke ABI v1: bad pointer or length, not UTF-8, not JSON, too large."""

    kind = "invalid_output"


class PluginQuarantined(PluginFailure):
    """The plugin failed too often recently and is refused calls until its quarantine ends."""

    kind = "plugin_quarantined"

    def __init__(self, message: str, *, retry_after: float, plugin: str | None = None) -> None:
        super().__init__(message, plugin=plugin)
        self.retry_after = retry_after


# -- the runtime's fault --------------------------------------------------------------------------


class RuntimeFailure(CortexError):
    """Base class of failures of the runtime machinery rather than of one plugin call."""

    kind = "runtime_failure"


class WorkerCrashed(RuntimeFailure):
    """The worker process running the call died (killed, crashed, or could not be started)."""

    kind = "worker_crashed"


class Overloaded(RuntimeFailure):
    """Too many calls are waiting for a worker; try again later."""

    kind = "overloaded"


class ProtocolError(RuntimeFailure):
    """The worker broke the supervisor/worker protocol; it has been killed and replaced."""

    kind = "protocol_error"


class RuntimeClosed(RuntimeFailure):
    """The runtime is not running (used outside ``async with`` or after it closed)."""

    kind = "runtime_closed"


__all__ = [
    "CallTimeout",
    "CapabilityNotFound",
    "CortexError",
    "FuelExhausted",
    "InvalidInput",
    "InvalidOutput",
    "ManifestError",
    "MemoryLimitExceeded",
    "Overloaded",
    "PluginError",
    "PluginFailure",
    "PluginNotFound",
    "PluginQuarantined",
    "PluginTrap",
    "ProtocolError",
    "RuntimeClosed",
    "RuntimeFailure",
    "WorkerCrashed",
]
