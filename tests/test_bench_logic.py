"""The benchmark plugin computes what it claims, on any text (benchmarks/plugins/bench_logic.h).

Its loops, and the C SDK's JSON string scanner under them, handle eight bytes at a time where the
text allows and byte by byte elsewhere: random texts (ASCII, escapes, control characters,
multi-byte UTF-8, at every length and alignment) check that both paths, and the seams between
them, give the reference results of benchmarks/workloads.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import build, workloads  # noqa: E402
from benchmarks.wasmtime_host import WasmtimeHost, WasmtimePlugin  # noqa: E402

#: Characters chosen to land on every branch: plain ASCII, the letters the case modes change,
#: JSON's escaped characters, other control characters, and 2-, 3- and 4-byte UTF-8.
ALPHABET = st.sampled_from([*"abcxyzABCXYZ019 .-~\x7f\"\\/\n\t\r\b\f\x00\x01\x1f",
                            "é", "ß", "Ω", "€", "東", "😀", "\U0010ffff"])
TEXTS = st.one_of(st.text(ALPHABET, max_size=80), st.text(max_size=40),
                  st.builds(lambda a, b, n: a + "x" * n + b, st.text(ALPHABET, max_size=20),
                            st.text(ALPHABET, max_size=20), st.integers(0, 300)))


@pytest.fixture(scope="module")
def plugin() -> WasmtimePlugin:
    cortex_wasm, _ = build.ensure_built()
    return WasmtimeHost().load(cortex_wasm.read_bytes())


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, mode=st.sampled_from(["reverse", "uppercase", "lowercase", "keep"]))
def test_transform_matches_the_reference(plugin: WasmtimePlugin, text: str, mode: str) -> None:
    value = {"text": text, "mode": mode}
    assert plugin.call("transform", orjson.dumps(value)) == workloads.expected_transform(value)


@settings(max_examples=200, deadline=None)
@given(text=TEXTS)
def test_rot13_turns_ascii_letters_only(plugin: WasmtimePlugin, text: str) -> None:
    def rot13(c: str) -> str:
        for base in ("a", "A"):
            if ord(base) <= ord(c) < ord(base) + 26:
                return chr(ord(base) + (ord(c) - ord(base) + 13) % 26)
        return c

    got = plugin.call("transform", orjson.dumps({"text": text, "mode": "rot13"}))
    assert got["result"] == "".join(rot13(c) for c in text)


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), TEXTS),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(TEXTS, children, max_size=4)),
    max_leaves=12))
def test_echo_and_parse_agree_with_python(plugin: WasmtimePlugin, value: Any) -> None:
    document = orjson.dumps(value)
    assert plugin.call("echo", document) == value
    assert plugin.call("parse", document) == workloads.expected_parse_summary(document)
