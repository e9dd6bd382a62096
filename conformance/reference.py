"""The reference semantics of the conformance ``transform`` capability, in Python.

Identical to the product document's Rust example except where docs/decisions.md says otherwise
(ASCII-only case mapping).
"""

from __future__ import annotations

from typing import Any

U64 = 0xFFFFFFFFFFFFFFFF


def simple_hash(text: str) -> int:
    """``s.bytes().fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u64))``."""
    acc = 0
    for byte in text.encode("utf-8"):
        acc = (acc * 31 + byte) & U64
    return acc


def _rot13(char: str) -> str:
    if "a" <= char <= "z":
        return chr((ord(char) - 97 + 13) % 26 + 97)
    if "A" <= char <= "Z":
        return chr((ord(char) - 65 + 13) % 26 + 65)
    return char


_UPPER = {c: c.upper() for c in "abcdefghijklmnopqrstuvwxyz"}
_LOWER = {c.upper(): c for c in "abcdefghijklmnopqrstuvwxyz"}


def transform(text: str, mode: str) -> dict[str, Any]:
    if mode == "reverse":
        result = text[::-1]
    elif mode == "uppercase":
        result = "".join(_UPPER.get(c, c) for c in text)
    elif mode == "lowercase":
        result = "".join(_LOWER.get(c, c) for c in text)
    elif mode == "rot13":
        result = "".join(_rot13(c) for c in text)
    else:
        result = text
    return {"result": result, "length": len(result.encode("utf-8")), "hash": simple_hash(result)}
