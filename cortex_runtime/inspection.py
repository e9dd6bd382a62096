"""Check what a worker found inside a wasm module against what its manifest promises.

The worker reports facts (exports, imports, memory); this module, on the supervisor side, decides
whether those facts make a valid plugin for the manifest, and names the problem if not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ManifestError
from .manifest import ALLOCATORS, Manifest


@dataclass(frozen=True)
class ModuleFit:
    """The result of a successful check: which allocator export and capabilities to use."""

    allocator_export: str
    capabilities: tuple[str, ...]


def check_facts(manifest: Manifest, facts: dict[str, Any]) -> ModuleFit:
    """Raise :class:`ManifestError` unless the module can serve this manifest under ABI v1."""
    source = manifest.source
    allocators = set(facts.get("allocators", []))
    if manifest.allocator == "auto":
        if "cortex_alloc" in allocators:
            allocator = "cortex_alloc"
        elif "malloc" in allocators:
            allocator = "malloc"
        else:
            raise ManifestError(
                "the module exports neither cortex_alloc nor malloc with signature (i32) -> i32; "
                "the host needs one to pass the input", path=source, field="wasm.allocator",
            )
    else:
        allocator = ALLOCATORS[manifest.allocator]
        if allocator not in allocators:
            raise ManifestError(
                f"is {manifest.allocator!r}, but the module does not export {allocator!r} with "
                "signature (i32) -> i32", path=source, field="wasm.allocator",
            )

    exported = {e["name"]: e for e in facts.get("exports", []) if e.get("kind") == "func"}
    candidates = list(facts.get("capabilities", []))
    if manifest.capabilities is not None:
        for name in manifest.capabilities:
            if name not in exported:
                raise ManifestError("is declared but the module does not export it", path=source,
                                    field=f"capabilities.{name}")
            if name not in candidates:
                raise ManifestError(
                    "is exported with the wrong signature; a capability is (i32, i32) -> i32",
                    path=source, field=f"capabilities.{name}",
                )
        capabilities = tuple(manifest.capabilities)
    else:
        capabilities = tuple(candidates)
    if not capabilities:
        raise ManifestError(
            "the module exports no capability (a function (i32, i32) -> i32)", path=source,
            field="entryPoint",
        )

    memory = facts.get("memory") or {}
    min_pages = int(memory.get("min_pages", 0))
    declared_max = memory.get("max_pages")
    if min_pages > manifest.max_memory_pages:
        raise ManifestError(
            f"({manifest.max_memory_pages}) is below the {min_pages} pages the module needs at start",
            path=source, field="wasm.maxMemoryPages",
        )
    if declared_max is not None and int(declared_max) < manifest.memory_pages:
        raise ManifestError(
            f"({manifest.memory_pages}) is above the module's own memory maximum of {declared_max}",
            path=source, field="wasm.memoryPages",
        )
    return ModuleFit(allocator_export=allocator, capabilities=capabilities)
