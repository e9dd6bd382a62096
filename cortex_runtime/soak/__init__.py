"""``cortex soak``: drive plugins for a long time under load and injected faults, prove that every
call ends exactly once, and watch the runtime for leaks and drift (docs/soak.md)."""

from .accounting import CallRecord, Ledger
from .config import FaultSettings, SoakConfig, SoakSetupError, Thresholds, parse_duration
from .driver import SoakResult, run_soak

__all__ = [
    "CallRecord",
    "FaultSettings",
    "Ledger",
    "SoakConfig",
    "SoakResult",
    "SoakSetupError",
    "Thresholds",
    "parse_duration",
    "run_soak",
]
