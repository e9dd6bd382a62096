"""The check every call's result passes: JSON the supervisor can decode exactly.

See "Null results and errors" in docs/abi.md. One document only (a small result is spliced into
the reply frame, where "1,2" could otherwise inject keys); nesting at most 1023 (the reply frame
adds a level and its decoder allows 1024); integers within [-2**63, 2**64) (orjson would silently
turn larger ones into floats). A worker checks a small result before it replies; a large one
crosses as the reply's attachment, unchecked, and the supervisor checks it as it decodes it (it
decodes it anyway: one parse instead of two). Light on purpose: the supervisor imports it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
#: orjson turns integers outside the 64-bit range into floats at least this large.
_BIG_FLOAT = 9.2e18
MAX_DEPTH = 1023
#: Every literal orjson could turn into a float that large: 19 digits or more in a row, or an
#: exponent (which follows a digit). It may also match inside a string: the walk then decides.
_MAYBE_BIG = re.compile(rb"[0-9](?:[0-9]{18}|[eE])")


class InvalidResult(ValueError):
    """The result is not JSON the supervisor can decode exactly; the message says why."""


def decode_result(data: bytes | bytearray | memoryview) -> Any:
    """``data`` decoded, or ``InvalidResult`` naming the first problem."""
    try:
        value = orjson.loads(data)  # checks UTF-8 too (RFC 3629: no surrogates, no overlongs)
    except orjson.JSONDecodeError as exc:
        try:  # only now, for the message: decoding 1 MB just to check it costs about 1 ms
            str(data, "utf-8")
        except UnicodeDecodeError as bad:
            raise InvalidResult(f"output is not valid UTF-8: {bad.reason} "
                                f"at byte {bad.start}") from None
        problem = "nested deeper than 1023 levels" if "depth" in str(exc) else f"not valid JSON: {exc}"
        raise InvalidResult(f"output is {problem}") from None
    if len(data) <= 2 * MAX_DEPTH and not _MAYBE_BIG.search(data):
        return value  # too short to nest deeper (two bytes a level), and no number that large
    depth, big = _depth_and_big_floats(value)
    if depth > MAX_DEPTH:
        raise InvalidResult("output is nested deeper than 1023 levels")
    if big:  # rare: decide exactly whether a big float was an integer literal
        def exact_int(token: str) -> int:
            if len(token.lstrip("-")) > 20 or not _INT_MIN <= int(token) <= _INT_MAX:
                raise ValueError(token)
            return 0

        try:
            json.loads(bytes(data), parse_int=exact_int)
        except ValueError as exc:
            raise InvalidResult(
                f"output has an integer outside the 64-bit range: {str(exc)[:40]}") from None
        except RecursionError:
            raise InvalidResult("output is too deeply nested to check") from None
    return value


def _depth_and_big_floats(value: Any) -> tuple[int, bool]:
    """Nesting depth of a decoded JSON value, and whether it holds a float that may stand for an
    out-of-range integer literal (one walk over the containers; strings cost nothing)."""
    depth = 0
    big = False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in item)
        elif type(item) is float and abs(item) >= _BIG_FLOAT:
            big = True
    return depth, big
