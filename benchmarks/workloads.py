"""The inputs every host gets: generated deterministically, identical for A, B, C and D."""

from __future__ import annotations

import random
from typing import Any

import orjson

#: The tiny call: the product document's text-processor example.
TINY_INPUT: dict[str, Any] = {"text": "hello", "mode": "reverse"}

_WORDS = (  # noqa: SIM905 (prose reads better than a list of 62 strings)
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
    "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
    "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
    "officia deserunt mollit anim id est laborum"
).split()


def text_of(size: int, seed: int = 1) -> str:
    """``size`` characters of ASCII prose (words, spaces, a newline now and then)."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(_WORDS)
        sep = "\n" if rng.random() < 0.02 else " "
        parts.append(word + sep)
        total += len(word) + 1
    return "".join(parts)[:size]


def large_transform_input(size: int = 1_000_000) -> dict[str, Any]:
    """The 1 MB scenario: a ``transform`` input whose text is ``size`` characters."""
    return {"text": text_of(size), "mode": "reverse"}


def json_document(size: int = 100_000, seed: int = 2) -> bytes:
    """A realistic JSON document of about ``size`` bytes (records with nested objects and arrays,
    strings with escapes and non-ASCII, numbers, booleans, nulls), serialised compactly."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"version": 3, "generated": "2026-01-01T00:00:00Z", "records": records}
    length = len(orjson.dumps(doc))
    i = 0
    while length < size:
        record = {
            "id": i,
            "name": f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} \"{i}\"",
            "city": rng.choice(["Zürich", "Kraków", "São Paulo", "東京", "Reykjavík", "Austin"]),
            "score": round(rng.uniform(-1000, 1000), 4),
            "active": rng.random() < 0.5,
            "parent": None if rng.random() < 0.7 else rng.randrange(i + 1),
            "tags": [rng.choice(_WORDS) for _ in range(rng.randrange(0, 5))],
            "meta": {
                "created": f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                "flags": {"a": rng.random() < 0.5, "b": None, "path": "a\\b\tc"},
                "history": [[rng.randrange(100), rng.random()] for _ in range(rng.randrange(0, 3))],
            },
        }
        encoded = len(orjson.dumps(record)) + 1
        if length + encoded > size and records:
            break
        records.append(record)
        length += encoded
        i += 1
    return orjson.dumps(doc)


def expected_parse_summary(document: bytes) -> dict[str, int]:
    """What ``parse`` must return for ``document`` (computed in Python, to check every host)."""
    counts = {"objects": 0, "arrays": 0, "strings": 0, "numbers": 0, "bools": 0, "nulls": 0,
              "keys": 0, "max_depth": 0, "bytes": len(document)}

    def walk(value: Any, depth: int) -> None:
        if isinstance(value, dict):
            counts["objects"] += 1
            counts["keys"] += len(value)
            counts["max_depth"] = max(counts["max_depth"], depth + 1)
            for item in value.values():
                walk(item, depth + 1)
        elif isinstance(value, list):
            counts["arrays"] += 1
            counts["max_depth"] = max(counts["max_depth"], depth + 1)
            for item in value:
                walk(item, depth + 1)
        elif isinstance(value, str):
            counts["strings"] += 1
        elif isinstance(value, bool):
            counts["bools"] += 1
        elif value is None:
            counts["nulls"] += 1
        else:
            counts["numbers"] += 1

    walk(orjson.loads(document), 0)
    return counts


def expected_transform(value: dict[str, Any]) -> dict[str, Any]:
    """What ``transform`` must return (the reference of conformance/README.md)."""
    text: str = value["text"]
    mode = value["mode"]
    if mode == "reverse":
        text = text[::-1]
    elif mode == "uppercase":
        text = "".join(c.upper() if "a" <= c <= "z" else c for c in text)
    elif mode == "lowercase":
        text = "".join(c.lower() if "A" <= c <= "Z" else c for c in text)
    h = 0
    for byte in text.encode():
        h = (h * 31 + byte) & 0xFFFFFFFFFFFFFFFF
    return {"result": text, "length": len(text.encode()), "hash": h}
