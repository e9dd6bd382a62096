"""The product document's text-processor, built from C, through the public API and the testing
helper: every mode, UTF-8 lengths, code-point reversal and the unsigned 64-bit ``simple_hash``."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from cortex_runtime import Runtime
from cortex_runtime.errors import PluginError
from cortex_runtime.testing import load_wasm_plugin

pytestmark = pytest.mark.anyio


def simple_hash(text: str) -> int:
    """The document's Rust ``simple_hash``: wrapping ``acc * 31 + byte`` over UTF-8 bytes, as u64."""
    acc = 0
    for byte in text.encode():
        acc = (acc * 31 + byte) & 0xFFFFFFFFFFFFFFFF
    return acc


def expected(text: str, mode: str) -> dict[str, object]:
    ascii_upper = {c: c.upper() for c in "abcdefghijklmnopqrstuvwxyz"}
    ascii_lower = {c.upper(): c for c in "abcdefghijklmnopqrstuvwxyz"}

    def rot13(c: str) -> str:
        if "a" <= c <= "z":
            return chr((ord(c) - 97 + 13) % 26 + 97)
        if "A" <= c <= "Z":
            return chr((ord(c) - 65 + 13) % 26 + 65)
        return c

    result = {
        "reverse": text[::-1],
        "uppercase": "".join(ascii_upper.get(c, c) for c in text),
        "lowercase": "".join(ascii_lower.get(c, c) for c in text),
        "rot13": "".join(rot13(c) for c in text),
    }.get(mode, text)
    return {"result": result, "length": len(result.encode()), "hash": simple_hash(result)}


TEXTS = ["hello", "", "Hello, World!", "héllo wörld 😀", "日本語テキスト", "a\"b\\c\n\t\u0001é", "ÄÖÜ straße"]
MODES = ["reverse", "uppercase", "lowercase", "rot13", "unknown-mode"]


async def test_every_mode_matches_the_reference(text_processor: Path, cache_dir: Path) -> None:
    async with Runtime(workers=2, cache_dir=cache_dir) as rt:
        await rt.load(text_processor)
        results: dict[tuple[str, str], object] = {}

        async def one(text: str, mode: str) -> None:
            results[text, mode] = await rt.call("text-processor", "transform",
                                                {"text": text, "mode": mode})

        async with anyio.create_task_group() as tg:
            for text in TEXTS:
                for mode in MODES:
                    tg.start_soon(one, text, mode)
    for (text, mode), got in results.items():
        assert got == expected(text, mode), (text, mode)


async def test_document_examples(text_processor: Path, cache_dir: Path) -> None:
    async with Runtime(workers=1, cache_dir=cache_dir) as rt:
        await rt.load(text_processor)
        out = await rt.call("text-processor", "transform", {"text": "hello", "mode": "reverse"},
                            timeout=1.0, fuel=None)
        assert out == {"result": "olleh", "length": 5, "hash": simple_hash("olleh")}
        # The hash is an unsigned 64-bit integer: long texts wrap around 2**64, never go negative.
        long = "z" * 1000
        out = await rt.call("text-processor", "transform", {"text": long, "mode": "none"})
        assert out["hash"] == simple_hash(long) and 0 <= out["hash"] < 2**64


async def test_one_megabyte_text(text_processor: Path, cache_dir: Path) -> None:
    text = ("The quick brown fox jumps over the lazy dog. " * 23302)[:1_000_000]
    async with Runtime(workers=1, cache_dir=cache_dir) as rt:
        await rt.load(text_processor)
        out = await rt.call("text-processor", "transform", {"text": text, "mode": "rot13"})
    assert out == expected(text, "rot13")


async def test_bad_input_is_a_plugin_error_with_its_message(text_processor: Path, cache_dir: Path) -> None:
    async with Runtime(workers=1, cache_dir=cache_dir) as rt:
        await rt.load(text_processor)
        with pytest.raises(PluginError, match='"mode"'):
            await rt.call("text-processor", "transform", {"text": "x"})
        with pytest.raises(PluginError, match='"text" must be a string'):
            await rt.call("text-processor", "transform", {"text": 5, "mode": "reverse"})
        with pytest.raises(PluginError, match="object"):
            await rt.call("text-processor", "transform", ["not", "an", "object"])
        # A plugin-reported error does not cost a worker.
        assert rt.stats.get("killed", 0) == 0


async def test_testing_helper_with_a_bare_wasm_file(text_processor: Path) -> None:
    async with load_wasm_plugin(text_processor / "text_processor.wasm") as plugin:
        result = await plugin.call("transform", {"text": "hello world", "mode": "uppercase"})
        assert result["result"] == "HELLO WORLD"
        assert plugin.capabilities == ("transform",)


async def test_testing_helper_with_a_plugin_folder(text_processor: Path) -> None:
    async with load_wasm_plugin(text_processor) as plugin:
        assert plugin.name == "text-processor"
        assert plugin.info.manifest.max_memory_pages == 50
        assert (await plugin.call("transform", {"text": "abc", "mode": "reverse"}))["result"] == "cba"


async def test_call_json_delivers_the_callers_bytes_exactly(text_processor: Path, cache_dir: Path) -> None:
    from structlog.testing import capture_logs

    from cortex_runtime.errors import InvalidInput

    raw = '{ "mode" : "reverse",\n  "text" : "\\u00e9\\ud83d\\ude00x" }'
    async with Runtime(workers=1, cache_dir=cache_dir) as rt:
        await rt.load(text_processor)
        with capture_logs() as events:
            out = await rt.call_json("text-processor", "transform", raw)
        assert out["result"] == "x😀é"
        # The guest decoded the escapes itself (its log line counts the decoded text's bytes).
        [line] = [e["message"] for e in events if e["event"] == "plugin.log"]
        assert line == "transform mode=reverse bytes=7"
        with pytest.raises(InvalidInput, match="not valid JSON"):
            await rt.call_json("text-processor", "transform", '{"text": "a"} trailing')
        # Text that has no UTF-8 form, or bytes that are not UTF-8: typed errors, nothing sent.
        with pytest.raises(InvalidInput, match="lone surrogate at character 10"):
            await rt.call_json("text-processor", "transform", '{"text": "\ud800"}')
        with pytest.raises(InvalidInput, match="not UTF-8 at byte 10"):
            await rt.call_json("text-processor", "transform", b'{"text": "\xff"}')
        out = await rt.call_json("text-processor", "transform", '{"text": "\u00e9a", "mode": "reverse"}')
        assert out["result"] == "aé"
