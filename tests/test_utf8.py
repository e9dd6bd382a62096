"""The supervisor's UTF-8 check (cortex_runtime/utf8.py): the C pass gives Python's answer.

``invalid_utf8_at`` must say what ``bytes.decode("utf-8")`` says, offset included, since the
offset is in the ``InvalidInput`` message of ``Runtime.call_json``: checked on every boundary of
Unicode's well-formed sequences (overlong forms, surrogates, above U+10FFFF, truncation, stray
continuation bytes), inside and across the 16-byte ASCII strides, and on arbitrary bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_runtime import utf8


def _python_answer(data: bytes) -> int | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


@pytest.fixture
def python_path() -> Iterator[None]:
    utf8.native = False
    try:
        yield
    finally:
        utf8.native = utf8._native_check is not None


#: Every byte whose class matters to a UTF-8 decoder: ASCII, continuation bytes at the edges of
#: the narrowed ranges (80, 8F, 90, 9F, A0, BF), the leads that are never valid (C0, C1, F5-FF)
#: and those with a narrowed second byte (E0, ED, F0, F4).
_EDGES = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
          0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]


def test_the_check_runs_in_c() -> None:
    """`make` builds the library (scripts/build-native); without it the check is Python's decode,
    and the comparisons below would compare the decode with itself."""
    assert utf8.native, f"{utf8.LIBRARY} is missing or stale: run scripts/build-native"


@pytest.mark.parametrize("data, expected", [
    (b"", None),
    (b'{"text": "x\xf0\x9f\x98\x80\xc3\xa9"}', None),
    (b"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf", None),  # U+D7FF, U+E000, U+10FFFF
    (b'{"text": "\xff"}', 10),
    (b"ab\xc0\xaf", 2),                 # overlong "/"
    (b"\xe0\x9f\xbf", 0),               # overlong, three bytes
    (b"a\xed\xa0\x80", 1),              # a surrogate
    (b"\xf4\x90\x80\x80", 0),           # above U+10FFFF
    (b"x" * 40 + b"\xe2\x82", 40),      # truncated at the end, after two ASCII strides
    (b"x" * 15 + b"\x80" + b"y" * 16, 15),  # a stray continuation byte ending a stride
])
def test_known_answers(data: bytes, expected: int | None) -> None:
    assert _python_answer(data) == expected
    assert utf8.invalid_utf8_at(data) == expected


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_EDGES), max_size=24), st.integers(0, 40))
def test_c_and_python_agree_on_the_edges(codes: list[int], ascii_before: int) -> None:
    data = b"a" * ascii_before + bytes(codes)
    assert utf8.invalid_utf8_at(data) == _python_answer(data), data


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_c_and_python_agree_on_any_bytes(data: bytes) -> None:
    assert utf8.invalid_utf8_at(data) == _python_answer(data), data


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=100), st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xbf\xbf"]),
       st.text(max_size=30))
def test_text_with_one_flaw_is_caught_where_it_is(before: str, flaw: bytes, after: str) -> None:
    data = before.encode("utf-8", "surrogatepass") + flaw + after.encode("utf-8", "surrogatepass")
    assert utf8.invalid_utf8_at(data) == _python_answer(data)


def test_the_python_path_gives_the_same_answers(python_path: None) -> None:
    assert not utf8.native
    assert utf8.invalid_utf8_at(b'{"text": "\xff"}') == 10
    assert utf8.invalid_utf8_at("x😀é".encode()) is None


def test_a_library_without_the_check_leaves_python_to_do_it(tmp_path: Path) -> None:
    """A missing library, or one that will not load, is no error: the decode does the check."""
    assert utf8._load(tmp_path / "missing.so") is None
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not a shared object")
    assert utf8._load(junk) is None
