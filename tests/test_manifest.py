"""Unit tests of ``plugin.json`` parsing (manifest.py) and of module/manifest checks (inspection.py).

Everything here is synchronous and touches no wasm engine: ``check_facts`` gets hand-built dicts in
the shape ``sandbox/engine.py: describe_module`` returns.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex_runtime.errors import CortexError, ManifestError
from cortex_runtime.inspection import ModuleFit, check_facts
from cortex_runtime.manifest import (
    DEFAULT_FUEL,
    DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_MEMORY_PAGES,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MEMORY_PAGES,
    DEFAULT_TIMEOUT_MS,
    HARD_IO_CAP,
    MANIFEST_NAME,
    MAX_FUEL,
    MAX_MANIFEST_BYTES,
    MAX_TIMEOUT_MS,
    WASM_PAGE_LIMIT,
    CallLimits,
    Capability,
    Manifest,
    load_manifest,
    manifest_for_wasm,
    parse_manifest,
)

ROOT = Path("/plugins/example")
REPO = Path(__file__).resolve().parent.parent

# The "Plugin Manifest" example of the product document (wasm-plugin-development.txt), verbatim.
DOC_EXAMPLE = """
{
  "name": "text-processor",
  "version": "1.0.0",
  "type": "wasm",
  "entryPoint": "text_processor.wasm",
  "description": "High-performance text transformation plugin",
  "wasm": {
    "memoryPages": 10,
    "maxMemoryPages": 50,
    "allocator": "wasi"
  }
}
"""

SHA = "0123456789abcdef" * 4

FULL: dict[str, Any] = {
    "$schema": "https://example.com/cortex-plugin.schema.json",
    "name": "text-processor",
    "version": "1.2.3-beta.1+build.5",
    "type": "wasm",
    "entryPoint": "build/text_processor.wasm",
    "description": "High-performance text transformation plugin",
    "abi": 1,
    "wasm": {"memoryPages": 4, "maxMemoryPages": 128, "allocator": "custom"},
    "limits": {
        "timeoutMs": 250,
        "fuel": 50_000_000,
        "maxInputBytes": 1024,
        "maxOutputBytes": 2048,
        "maxLogBytes": 0,
    },
    "sha256": SHA,
    "capabilities": {
        "transform": {"description": "change the text", "timeoutMs": 500, "fuel": 10_000},
        "count_tokens": {"timeoutMs": 50},
        "health": {},
    },
}


def minimal(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "demo", "version": "0.1.0", "type": "wasm",
                            "entryPoint": "demo.wasm"}
    data.update(extra)
    return data


def parse(data: Any, **kw: Any) -> Manifest:
    return parse_manifest(data, root=ROOT, **kw)


def error_of(data: Any) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse(data)
    return info.value


def with_path(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``a.b.c`` set to ``value`` (intermediate objects created)."""
    out = copy.deepcopy(data)
    node = out
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


def write_plugin(folder: Path, data: Any, *, wasm: str | None = "demo.wasm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, (str, bytes)) else json.dumps(data)
    target = folder / MANIFEST_NAME
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    if wasm is not None:
        (folder / wasm).parent.mkdir(parents=True, exist_ok=True)
        (folder / wasm).write_bytes(b"\x00asm\x01\x00\x00\x00")
    return folder


# -- the document's example and the defaults --------------------------------------------------


def test_document_example_parses_with_its_values() -> None:
    m = parse(json.loads(DOC_EXAMPLE))
    assert m.name == "text-processor"
    assert m.version == "1.0.0"
    assert m.entry_point == "text_processor.wasm"
    assert m.description == "High-performance text transformation plugin"
    assert m.memory_pages == 10
    assert m.max_memory_pages == 50
    assert m.allocator == "wasi"
    assert m.root == ROOT
    assert m.wasm_path == ROOT / "text_processor.wasm"
    # Everything it does not say takes the defaults.
    assert m.limits == CallLimits(timeout_ms=DEFAULT_TIMEOUT_MS, fuel=DEFAULT_FUEL)
    assert m.max_input_bytes == DEFAULT_MAX_INPUT_BYTES
    assert m.max_output_bytes == DEFAULT_MAX_OUTPUT_BYTES
    assert m.max_log_bytes == DEFAULT_MAX_LOG_BYTES
    assert m.sha256 is None
    assert m.capabilities is None
    assert m.source == MANIFEST_NAME


def test_shipped_example_plugin_loads() -> None:
    folder = REPO / "examples" / "text-processor"
    if not (folder / MANIFEST_NAME).is_file() or not (folder / "text_processor.wasm").is_file():
        pytest.skip("examples/text-processor is not built")
    m = load_manifest(folder)
    assert m == parse_manifest(json.loads(DOC_EXAMPLE), root=folder.resolve(),
                               source=str(folder / MANIFEST_NAME))


def test_defaults_of_a_minimal_manifest() -> None:
    m = parse(minimal())
    assert (m.name, m.version, m.entry_point) == ("demo", "0.1.0", "demo.wasm")
    assert m.description == ""
    assert m.memory_pages == DEFAULT_MEMORY_PAGES == 1
    assert m.max_memory_pages == DEFAULT_MAX_MEMORY_PAGES == 256
    assert m.allocator == "auto"
    assert m.limits.timeout_ms == DEFAULT_TIMEOUT_MS == 1000
    assert m.limits.fuel == DEFAULT_FUEL == 1_000_000_000
    assert m.max_input_bytes == DEFAULT_MAX_INPUT_BYTES == 4 * 1024 * 1024
    assert m.max_output_bytes == DEFAULT_MAX_OUTPUT_BYTES == 4 * 1024 * 1024
    assert m.max_log_bytes == DEFAULT_MAX_LOG_BYTES == 64 * 1024
    assert m.sha256 is None
    assert m.capabilities is None


def test_empty_sections_mean_defaults() -> None:
    assert parse(minimal(wasm={}, limits={})) == parse(minimal())


def test_description_empty_string_is_allowed() -> None:
    assert parse(minimal(description="")).description == ""


def test_max_memory_pages_default_follows_a_large_memory_pages() -> None:
    m = parse(minimal(wasm={"memoryPages": 1000}))
    assert m.memory_pages == 1000
    assert m.max_memory_pages == 1000
    m = parse(minimal(wasm={"memoryPages": 100}))
    assert m.max_memory_pages == DEFAULT_MAX_MEMORY_PAGES


def test_full_manifest_with_every_field() -> None:
    m = parse(FULL, source="somewhere/plugin.json")
    assert m.name == "text-processor"
    assert m.version == "1.2.3-beta.1+build.5"
    assert m.entry_point == "build/text_processor.wasm"
    assert m.wasm_path == ROOT / "build" / "text_processor.wasm"
    assert (m.memory_pages, m.max_memory_pages, m.allocator) == (4, 128, "custom")
    assert m.limits == CallLimits(timeout_ms=250, fuel=50_000_000)
    assert (m.max_input_bytes, m.max_output_bytes, m.max_log_bytes) == (1024, 2048, 0)
    assert m.sha256 == SHA
    assert m.source == "somewhere/plugin.json"
    assert m.capabilities == {
        "transform": Capability("transform", "change the text", 500, 10_000),
        "count_tokens": Capability("count_tokens", "", 50, None),
        "health": Capability("health", "", None, None),
    }
    assert list(m.capabilities) == ["transform", "count_tokens", "health"]


def test_the_full_example_in_the_docs_parses() -> None:
    """docs/manifest.md's examples are real: every ```json block there must parse."""
    doc = REPO / "docs" / "manifest.md"
    if not doc.is_file():
        pytest.skip("docs/manifest.md not written yet")
    blocks = doc.read_text(encoding="utf-8").split("```json")[1:]
    assert blocks, "docs/manifest.md has no ```json example"
    for block in blocks:
        parse(json.loads(block.split("```")[0]))


@pytest.mark.parametrize("allocator", ["auto", "wasi", "custom"])
def test_each_allocator_is_accepted(allocator: str) -> None:
    assert parse(minimal(wasm={"allocator": allocator})).allocator == allocator


@pytest.mark.parametrize("schema", ["", "https://example.com/schema.json", "./plugin.schema.json"])
def test_schema_is_accepted_and_ignored(schema: str) -> None:
    assert parse(minimal(**{"$schema": schema})) == parse(minimal())


def test_abi_1_is_accepted() -> None:
    assert parse(minimal(abi=1)) == parse(minimal())


# -- errors name their field -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "version", "type", "entryPoint"])
def test_missing_required_field(field: str) -> None:
    data = minimal()
    del data[field]
    exc = error_of(data)
    assert exc.field == field
    assert "is required" in str(exc)


def test_error_message_names_source_and_field() -> None:
    data = minimal()
    del data["version"]
    with pytest.raises(ManifestError) as info:
        parse(data, source="plugins/x/plugin.json")
    exc = info.value
    assert exc.path == "plugins/x/plugin.json"
    assert str(exc) == "plugins/x/plugin.json: version: is required"
    assert exc.kind == "manifest_error"
    assert isinstance(exc, CortexError)


STR_FIELDS = ["name", "version", "type", "entryPoint", "description", "$schema", "sha256",
              "wasm.allocator", "capabilities.run.description"]
INT_FIELDS = ["abi", "wasm.memoryPages", "wasm.maxMemoryPages", "limits.timeoutMs", "limits.fuel",
              "limits.maxInputBytes", "limits.maxOutputBytes", "limits.maxLogBytes",
              "capabilities.run.timeoutMs", "capabilities.run.fuel"]
OBJECT_FIELDS = ["wasm", "limits", "capabilities", "capabilities.run"]


@pytest.mark.parametrize("field", STR_FIELDS)
@pytest.mark.parametrize(("value", "shown"), [
    (1, "a number"), (1.5, "a number"), (True, "a boolean"), (None, "null"), ([], "an array"),
    ({}, "an object"),
])
def test_string_field_with_wrong_type(field: str, value: Any, shown: str) -> None:
    exc = error_of(with_path(minimal(), field, value))
    assert exc.field == field
    assert f"must be a string, not {shown}" in str(exc)


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize(("value", "shown"), [
    ("10", "a string"), (True, "a boolean"), (False, "a boolean"), (None, "null"),
    (10.0, "a number"), (1.5, "a number"), ([1], "an array"), ({"n": 1}, "an object"),
])
def test_integer_field_with_wrong_type(field: str, value: Any, shown: str) -> None:
    exc = error_of(with_path(minimal(), field, value))
    assert exc.field == field
    assert f"must be an integer, not {shown}" in str(exc)


@pytest.mark.parametrize("field", OBJECT_FIELDS)
@pytest.mark.parametrize(("value", "shown"), [
    ("x", "a string"), (3, "a number"), (True, "a boolean"), (None, "null"), ([], "an array"),
])
def test_object_field_with_wrong_type(field: str, value: Any, shown: str) -> None:
    exc = error_of(with_path(minimal(), field, value))
    assert exc.field == field
    assert f"must be an object, not {shown}" in str(exc)


# (field, lowest allowed, highest allowed)
RANGES = [
    ("abi", 1, 1),
    ("wasm.memoryPages", 1, WASM_PAGE_LIMIT),
    ("wasm.maxMemoryPages", 1, WASM_PAGE_LIMIT),
    ("limits.timeoutMs", 1, MAX_TIMEOUT_MS),
    ("limits.fuel", 1, MAX_FUEL),
    ("limits.maxInputBytes", 2, HARD_IO_CAP),
    ("limits.maxOutputBytes", 1, HARD_IO_CAP),
    ("limits.maxLogBytes", 0, HARD_IO_CAP),
    ("capabilities.run.timeoutMs", 1, MAX_TIMEOUT_MS),
    ("capabilities.run.fuel", 1, MAX_FUEL),
]


@pytest.mark.parametrize(("field", "low", "high"), RANGES)
def test_integer_range_bounds_are_inclusive(field: str, low: int, high: int) -> None:
    for value in (low, high):
        data = with_path(minimal(), field, value)
        if field == "wasm.memoryPages":
            data["wasm"]["maxMemoryPages"] = WASM_PAGE_LIMIT
        parse(data)


@pytest.mark.parametrize(("field", "low", "high"), RANGES)
def test_integer_out_of_range(field: str, low: int, high: int) -> None:
    for value in (low - 1, high + 1, -(2**70), 2**70):
        exc = error_of(with_path(minimal(), field, value))
        assert exc.field == field
        assert f"must be between {low} and {high}, got {value}" in str(exc)


def test_range_values_are_stored() -> None:
    m = parse(minimal(
        wasm={"memoryPages": WASM_PAGE_LIMIT, "maxMemoryPages": WASM_PAGE_LIMIT},
        limits={"timeoutMs": MAX_TIMEOUT_MS, "fuel": MAX_FUEL, "maxInputBytes": 2,
                "maxOutputBytes": 1, "maxLogBytes": HARD_IO_CAP},
    ))
    assert (m.memory_pages, m.max_memory_pages) == (WASM_PAGE_LIMIT, WASM_PAGE_LIMIT)
    assert m.limits == CallLimits(MAX_TIMEOUT_MS, MAX_FUEL)
    assert (m.max_input_bytes, m.max_output_bytes, m.max_log_bytes) == (2, 1, HARD_IO_CAP)


def test_max_memory_pages_below_memory_pages() -> None:
    exc = error_of(minimal(wasm={"memoryPages": 10, "maxMemoryPages": 5}))
    assert exc.field == "wasm.maxMemoryPages"
    assert "(5) must be at least memoryPages (10)" in str(exc)
    # Equal is fine.
    m = parse(minimal(wasm={"memoryPages": 10, "maxMemoryPages": 10}))
    assert (m.memory_pages, m.max_memory_pages) == (10, 10)


def test_explicit_max_memory_pages_below_default_is_kept() -> None:
    assert parse(minimal(wasm={"maxMemoryPages": 2})).max_memory_pages == 2


@pytest.mark.parametrize("allocator", ["malloc", "cortex_alloc", "WASI", "Auto", "", " wasi",
                                       "wasi\n", "none"])
def test_bad_allocator(allocator: str) -> None:
    exc = error_of(minimal(wasm={"allocator": allocator}))
    assert exc.field == "wasm.allocator"
    assert repr(allocator) in str(exc)
    assert '"wasi"' in str(exc) and '"custom"' in str(exc) and '"auto"' in str(exc)


@pytest.mark.parametrize("name", [
    "", "Text-Processor", "-lead", ".lead", "_lead", "has space", "x" * 65, "ünïcode",
    "slash/name", "name\n", "name\x00", "naïve",
])
def test_bad_name(name: str) -> None:
    exc = error_of(minimal(name=name))
    assert exc.field == "name"


@pytest.mark.parametrize("name", ["a", "0", "x" * 64, "a.b_c-d", "9lives", "text-processor"])
def test_good_name(name: str) -> None:
    assert parse(minimal(name=name)).name == name


@pytest.mark.parametrize("version", [
    "", "1", "1.0", "v1.0.0", "1.0.0.0", "1.0.0-", "1.0.0+", "01.0", "1.0.0\n", " 1.0.0",
    "1.0.0 beta", "latest", "1.x.0",
])
def test_bad_version(version: str) -> None:
    exc = error_of(minimal(version=version))
    assert exc.field == "version"
    assert "semantic version" in str(exc)


@pytest.mark.parametrize("version", ["0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha.1",
                                     "1.0.0+build.7", "1.0.0-rc.1+sha.5114f85"])
def test_good_version(version: str) -> None:
    assert parse(minimal(version=version)).version == version


@pytest.mark.parametrize("kind", ["esm", "WASM", "wasm32", "", "component"])
def test_type_must_be_wasm(kind: str) -> None:
    exc = error_of(minimal(type=kind))
    assert exc.field == "type"
    assert '"wasm"' in str(exc)


def test_description_length_limit() -> None:
    assert parse(minimal(description="d" * 2000)).description == "d" * 2000
    exc = error_of(minimal(description="d" * 2001))
    assert exc.field == "description"


@pytest.mark.parametrize("entry", [
    "/abs/plugin.wasm", "/plugin.wasm", "../plugin.wasm", "a/../../plugin.wasm", "a/../b.wasm",
    "..", "sub\\plugin.wasm", "..\\plugin.wasm", "",
])
def test_entry_point_must_stay_inside_the_folder(entry: str) -> None:
    exc = error_of(minimal(entryPoint=entry))
    assert exc.field == "entryPoint"
    assert "relative path inside the plugin folder" in str(exc)


@pytest.mark.parametrize("entry", ["plugin", "plugin.wat", "plugin.wasm.bak", "plugin.WASM",
                                   "plugin.wasm/", "wasm"])
def test_entry_point_must_name_a_wasm_file(entry: str) -> None:
    exc = error_of(minimal(entryPoint=entry))
    assert exc.field == "entryPoint"
    assert "must name a .wasm file" in str(exc)


@pytest.mark.parametrize("entry", ["p.wasm", "./p.wasm", "build/release/p.wasm", ".wasm",
                                   "a..b.wasm", "dir.with..dots/p.wasm"])
def test_good_entry_point(entry: str) -> None:
    m = parse(minimal(entryPoint=entry))
    assert m.entry_point == entry
    assert m.wasm_path == ROOT / entry


@pytest.mark.parametrize("digest", [
    SHA.upper(), SHA[:-1], SHA + "0", "g" * 64, "", SHA + "\n", " " + SHA[1:],
    "sha256:" + SHA,
])
def test_bad_sha256(digest: str) -> None:
    exc = error_of(minimal(sha256=digest))
    assert exc.field == "sha256"
    assert "64 lowercase hexadecimal digits" in str(exc)


def test_good_sha256() -> None:
    assert parse(minimal(sha256=SHA)).sha256 == SHA


# -- unknown fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "field"), [
    (minimal(nmae="x"), "nmae"),
    (minimal(entrypoint="x.wasm"), "entrypoint"),
    (minimal(timeoutMs=5), "timeoutMs"),
    (minimal(memoryPages=5), "memoryPages"),
    (minimal(**{"": 1}), ""),
    (minimal(wasm={"maxMemoryPage": 4}), "wasm.maxMemoryPage"),
    (minimal(wasm={"memoryPages": 2, "memory_pages": 2}), "wasm.memory_pages"),
    (minimal(limits={"timeout": 5}), "limits.timeout"),
    (minimal(limits={"fuel": 5, "memoryPages": 2}), "limits.memoryPages"),
    (minimal(capabilities={"run": {"timeout": 5}}), "capabilities.run.timeout"),
    (minimal(capabilities={"run": {"Description": "x"}}), "capabilities.run.Description"),
])
def test_unknown_field_is_an_error_naming_it(data: dict[str, Any], field: str) -> None:
    exc = error_of(data)
    assert exc.field == field
    assert "is not a known field" in str(exc)


def test_several_unknown_fields_name_the_first_alphabetically() -> None:
    assert error_of(minimal(zeta=1, alpha=2)).field == "alpha"


def test_unknown_fields_are_not_hidden_by_valid_ones() -> None:
    # A typo next to the correctly spelled field is still an error, not a silent duplicate.
    exc = error_of(minimal(wasm={"maxMemoryPages": 8, "maxMemoryPage": 4}))
    assert exc.field == "wasm.maxMemoryPage"


# -- capabilities ------------------------------------------------------------------------------


def test_empty_capabilities_is_an_error() -> None:
    exc = error_of(minimal(capabilities={}))
    assert exc.field == "capabilities"
    assert "at least one" in str(exc)


@pytest.mark.parametrize("cap", [
    "", "1abc", "-run", ".run", "_run", "__run", "cortex_run", "has space", "run!", "run\n",
    "ü", "a" * 129, "run/x",
])
def test_bad_capability_name(cap: str) -> None:
    exc = error_of(minimal(capabilities={cap: {}}))
    assert exc.field == f"capabilities.{cap}"
    assert "is not a valid capability name" in str(exc)


@pytest.mark.parametrize("cap", ["run", "R", "a" * 128, "count_tokens", "v1.transform",
                                 "kebab-case", "cortexRun", "Cortex_run"])
def test_good_capability_name(cap: str) -> None:
    m = parse(minimal(capabilities={cap: {}}))
    assert m.capabilities == {cap: Capability(cap)}


@pytest.mark.parametrize(("spec", "field"), [
    ({"timeoutMs": 0}, "capabilities.run.timeoutMs"),
    ({"timeoutMs": MAX_TIMEOUT_MS + 1}, "capabilities.run.timeoutMs"),
    ({"timeoutMs": -5}, "capabilities.run.timeoutMs"),
    ({"timeoutMs": "5"}, "capabilities.run.timeoutMs"),
    ({"timeoutMs": True}, "capabilities.run.timeoutMs"),
    ({"timeoutMs": None}, "capabilities.run.timeoutMs"),
    ({"fuel": 0}, "capabilities.run.fuel"),
    ({"fuel": MAX_FUEL + 1}, "capabilities.run.fuel"),
    ({"fuel": 1.0}, "capabilities.run.fuel"),
    ({"description": 3}, "capabilities.run.description"),
    ({"limits": {"fuel": 1}}, "capabilities.run.limits"),
])
def test_bad_capability_spec(spec: dict[str, Any], field: str) -> None:
    assert error_of(minimal(capabilities={"ok": {}, "run": spec})).field == field


@pytest.mark.parametrize("spec", [None, [], "run", 1, True])
def test_capability_spec_must_be_an_object(spec: Any) -> None:
    exc = error_of(minimal(capabilities={"run": spec}))
    assert exc.field == "capabilities.run"
    assert "must be an object" in str(exc)


@pytest.mark.parametrize("caps", [["run"], "run", 1, None])
def test_capabilities_must_be_an_object(caps: Any) -> None:
    exc = error_of(minimal(capabilities=caps))
    assert exc.field == "capabilities"


def test_capabilities_keep_declaration_order() -> None:
    names = ["zeta", "alpha", "mid"]
    m = parse(minimal(capabilities={n: {} for n in names}))
    assert m.capabilities is not None
    assert list(m.capabilities) == names


# -- limits_for --------------------------------------------------------------------------------


def test_limits_for_precedence() -> None:
    m = parse(minimal(
        limits={"timeoutMs": 300, "fuel": 7000},
        capabilities={"both": {"timeoutMs": 10, "fuel": 20}, "timeout_only": {"timeoutMs": 11},
                      "fuel_only": {"fuel": 21}, "neither": {"description": "plain"}},
    ))
    assert m.limits_for("both") == CallLimits(timeout_ms=10, fuel=20)
    assert m.limits_for("timeout_only") == CallLimits(timeout_ms=11, fuel=7000)
    assert m.limits_for("fuel_only") == CallLimits(timeout_ms=300, fuel=21)
    assert m.limits_for("neither") == CallLimits(timeout_ms=300, fuel=7000)
    # A capability the manifest does not declare (or no capabilities section) gets the plugin's.
    assert m.limits_for("undeclared") == CallLimits(timeout_ms=300, fuel=7000)


def test_limits_for_without_capabilities_section() -> None:
    m = parse(minimal())
    assert m.limits_for("anything") == CallLimits(DEFAULT_TIMEOUT_MS, DEFAULT_FUEL)
    m = parse(minimal(limits={"fuel": 5}))
    assert m.limits_for("anything") == CallLimits(DEFAULT_TIMEOUT_MS, 5)


def test_capability_limits_may_exceed_the_plugin_limits() -> None:
    m = parse(minimal(limits={"timeoutMs": 100, "fuel": 100},
                      capabilities={"slow": {"timeoutMs": 5000, "fuel": 10**12}}))
    assert m.limits_for("slow") == CallLimits(5000, 10**12)
    assert m.limits_for("other") == CallLimits(100, 100)


# -- the data itself is not an object ---------------------------------------------------------


@pytest.mark.parametrize(("data", "shown"), [
    ([], "an array"), ([minimal()], "an array"), ("plugin", "a string"), (1, "a number"),
    (1.5, "a number"), (True, "a boolean"), (None, "null"),
])
def test_manifest_must_be_an_object(data: Any, shown: str) -> None:
    exc = error_of(data)
    assert exc.field is None
    assert f"must be a JSON object, not {shown}" in str(exc)


# -- load_manifest -----------------------------------------------------------------------------


def test_load_from_folder(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal())
    m = load_manifest(folder)
    assert m.root == folder.resolve()
    assert m.wasm_path == folder.resolve() / "demo.wasm"
    assert m.source == str(folder / MANIFEST_NAME)


def test_load_from_manifest_path_and_str(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal())
    by_file = load_manifest(folder / MANIFEST_NAME)
    by_str = load_manifest(str(folder))
    assert by_file.root == by_str.root == folder.resolve()
    assert by_file.name == by_str.name == "demo"


def test_load_relative_path_resolves_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(tmp_path / "demo", minimal())
    monkeypatch.chdir(tmp_path)
    m = load_manifest("demo")
    assert m.root.is_absolute()
    assert m.root == (tmp_path / "demo").resolve()


def test_load_document_example(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "tp", DOC_EXAMPLE, wasm="text_processor.wasm")
    m = load_manifest(folder)
    assert (m.name, m.memory_pages, m.max_memory_pages, m.allocator) == (
        "text-processor", 10, 50, "wasi")


def test_load_nested_entry_point(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal(entryPoint="build/out/demo.wasm"),
                          wasm="build/out/demo.wasm")
    assert load_manifest(folder).wasm_path == folder.resolve() / "build" / "out" / "demo.wasm"


def test_load_folder_without_plugin_json(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "empty")
    assert "no plugin.json here" in str(info.value)
    assert info.value.path == str(tmp_path / "empty" / MANIFEST_NAME)


def test_load_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no plugin\.json here"):
        load_manifest(tmp_path / "nowhere")


def test_load_plugin_json_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "odd" / MANIFEST_NAME).mkdir(parents=True)
    with pytest.raises(ManifestError, match="not a regular file"):
        load_manifest(tmp_path / "odd")


def test_load_plugin_json_that_is_a_fifo(tmp_path: Path) -> None:
    # Opening a FIFO for reading would block until a writer came: refused from its status alone.
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / MANIFEST_NAME)
    with pytest.raises(ManifestError, match="not a regular file") as info:
        load_manifest(tmp_path / "fifo")
    assert info.value.path == str(tmp_path / "fifo" / MANIFEST_NAME)


def test_load_manifest_path_below_a_file(tmp_path: Path) -> None:
    # "<file>/plugin.json" does not exist because <file> is no folder: the file is the manifest.
    (tmp_path / "custom.json").write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON") as info:
        load_manifest(tmp_path / "custom.json")
    assert info.value.path == str(tmp_path / "custom.json")


def test_load_path_with_nul_byte() -> None:
    with pytest.raises(ManifestError):
        load_manifest("bad\x00path")


@pytest.mark.parametrize("text", [
    b"", b"{", b"{'name': 'x'}", b'{"name": "x",}', b"not json", b'{"a": 1} trailing',
    b"\xff\xfe{}", b'{"name": "\xff"}', b"[" * 2000 + b"]" * 2000, b"NaN",
])
def test_load_invalid_json(tmp_path: Path, text: bytes) -> None:
    folder = write_plugin(tmp_path / "bad", text)
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert "is not valid JSON" in str(info.value)
    assert info.value.path == str(folder / MANIFEST_NAME)


@pytest.mark.parametrize(("text", "shown"), [
    ("[]", "an array"), (json.dumps([minimal()]), "an array"), ('"demo"', "a string"),
    ("42", "a number"), ("null", "null"), ("true", "a boolean"),
])
def test_load_json_that_is_not_an_object(tmp_path: Path, text: str, shown: str) -> None:
    folder = write_plugin(tmp_path / "arr", text)
    with pytest.raises(ManifestError, match=f"must be a JSON object, not {shown}"):
        load_manifest(folder)


def test_load_huge_manifest_is_refused(tmp_path: Path) -> None:
    data = minimal(description="x")
    text = json.dumps(data)
    text = text[:-1] + " " * (MAX_MANIFEST_BYTES + 1 - len(text)) + "}"
    assert len(text.encode()) == MAX_MANIFEST_BYTES + 1
    folder = write_plugin(tmp_path / "huge", text)
    with pytest.raises(ManifestError, match=f"larger than {MAX_MANIFEST_BYTES} bytes"):
        load_manifest(folder)
    # Much bigger: refused the same way (and without reading it all).
    (folder / MANIFEST_NAME).write_text(json.dumps(minimal(description="y" * (4 << 20))))
    with pytest.raises(ManifestError, match="larger than"):
        load_manifest(folder)


def test_load_manifest_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    text = json.dumps(minimal())
    text = text[:-1] + " " * (MAX_MANIFEST_BYTES - len(text)) + "}"
    assert len(text.encode()) == MAX_MANIFEST_BYTES
    assert load_manifest(write_plugin(tmp_path / "edge", text)).name == "demo"


def test_load_errors_carry_the_file_path(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal(wasm={"maxMemoryPage": 3}))
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert info.value.path == str(folder / MANIFEST_NAME)
    assert info.value.field == "wasm.maxMemoryPage"
    assert str(info.value).startswith(f"{folder / MANIFEST_NAME}: wasm.maxMemoryPage: ")


def test_load_missing_wasm_file(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal(), wasm=None)
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert info.value.field == "entryPoint"
    assert "'demo.wasm' does not exist" in str(info.value)


def test_load_wasm_entry_point_that_is_a_directory(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal(), wasm=None)
    (folder / "demo.wasm").mkdir()
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert info.value.field == "entryPoint"


def test_load_wasm_entry_point_symlink_loop(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "demo", minimal(), wasm=None)
    os.symlink("demo.wasm", folder / "demo.wasm")
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert info.value.field == "entryPoint"


def test_load_wasm_in_a_sibling_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.wasm").write_bytes(b"\x00asm")
    folder = write_plugin(tmp_path / "demo", minimal(entryPoint="../other.wasm"), wasm=None)
    with pytest.raises(ManifestError) as info:
        load_manifest(folder)
    assert info.value.field == "entryPoint"


def test_load_does_not_check_the_sha256_of_the_wasm(tmp_path: Path) -> None:
    # load_manifest only validates the format; Runtime.load compares it with the file's hash.
    folder = write_plugin(tmp_path / "demo", minimal(sha256=SHA))
    assert load_manifest(folder).sha256 == SHA


# -- manifest_for_wasm -------------------------------------------------------------------------


def test_manifest_for_wasm_defaults(tmp_path: Path) -> None:
    wasm = tmp_path / "hello.wasm"
    wasm.write_bytes(b"\x00asm")
    m = manifest_for_wasm(wasm)
    assert (m.name, m.version, m.entry_point) == ("hello", "0.0.0", "hello.wasm")
    assert m.root == tmp_path.resolve()
    assert m.wasm_path == wasm.resolve()
    assert m.source == str(wasm.resolve())
    assert m.capabilities is None and m.sha256 is None
    assert m.allocator == "auto"
    assert m.limits == CallLimits()
    assert (m.memory_pages, m.max_memory_pages) == (DEFAULT_MEMORY_PAGES, DEFAULT_MAX_MEMORY_PAGES)
    assert (m.max_input_bytes, m.max_output_bytes, m.max_log_bytes) == (
        DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_LOG_BYTES)


@pytest.mark.parametrize(("filename", "name"), [
    ("My Plugin.wasm", "my-plugin"),
    ("Text_Processor.wasm", "text_processor"),
    ("ÄÖÜ.wasm", "plugin"),
    ("--x--.wasm", "x"),
    (".hidden.wasm", "hidden"),
    ("a+b=c.wasm", "a-b-c"),
    ("v1.2.wasm", "v1.2"),
    ("x" * 100 + ".wasm", "x" * 64),
])
def test_manifest_for_wasm_derives_a_valid_name(tmp_path: Path, filename: str, name: str) -> None:
    wasm = tmp_path / filename
    wasm.write_bytes(b"\x00asm")
    assert manifest_for_wasm(wasm).name == name


def test_manifest_for_wasm_overrides(tmp_path: Path) -> None:
    wasm = tmp_path / "hello.wasm"
    wasm.write_bytes(b"\x00asm")
    m = manifest_for_wasm(wasm, name="custom", limits={"timeoutMs": 5, "fuel": 9},
                          wasm={"allocator": "custom", "memoryPages": 2},
                          capabilities={"run": {"fuel": 3}})
    assert m.name == "custom"
    assert m.limits == CallLimits(5, 9)
    assert (m.allocator, m.memory_pages) == ("custom", 2)
    assert m.limits_for("run") == CallLimits(5, 3)


def test_manifest_for_wasm_validates_overrides(tmp_path: Path) -> None:
    wasm = tmp_path / "hello.wasm"
    wasm.write_bytes(b"\x00asm")
    with pytest.raises(ManifestError) as info:
        manifest_for_wasm(wasm, limits={"timeoutMs": 0})
    assert info.value.field == "limits.timeoutMs"
    with pytest.raises(ManifestError) as info:
        manifest_for_wasm(wasm, bogus=1)
    assert info.value.field == "bogus"


def test_manifest_for_wasm_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        manifest_for_wasm(tmp_path / "missing.wasm")
    with pytest.raises(ManifestError, match="no such file"):
        manifest_for_wasm(tmp_path)  # a directory is not a wasm file


def test_manifest_for_wasm_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ManifestError):
        manifest_for_wasm("bad\x00path.wasm")
    os.symlink("loop.wasm", tmp_path / "loop.wasm")
    with pytest.raises(ManifestError):
        manifest_for_wasm(tmp_path / "loop.wasm")


def test_manifest_for_wasm_needs_a_wasm_suffix(tmp_path: Path) -> None:
    wasm = tmp_path / "HELLO.WASM"
    wasm.write_bytes(b"\x00asm")
    with pytest.raises(ManifestError) as info:
        manifest_for_wasm(wasm)
    assert info.value.field == "entryPoint"


# -- check_facts -------------------------------------------------------------------------------


def func(name: str, params: list[str], results: list[str]) -> dict[str, Any]:
    return {"name": name, "kind": "func", "params": params, "results": results}


def cap_func(name: str) -> dict[str, Any]:
    return func(name, ["i32", "i32"], ["i32"])


def facts(
    *,
    capabilities: tuple[str, ...] = ("run",),
    allocators: tuple[str, ...] = ("malloc",),
    extra_exports: tuple[dict[str, Any], ...] = (),
    min_pages: int = 1,
    max_pages: int | None = None,
    memory: bool = True,
) -> dict[str, Any]:
    """Facts in the shape of ``sandbox.engine.describe_module``."""
    exports = [cap_func(c) for c in capabilities]
    exports += [func(a, ["i32"], ["i32"]) for a in allocators]
    exports += list(extra_exports)
    mem = {"name": "memory", "kind": "memory", "min_pages": min_pages, "max_pages": max_pages,
           "memory64": False, "shared": False}
    if memory:
        exports.append(mem)
    return {
        "exports": exports,
        "imports": [],
        "capabilities": list(capabilities),
        "memory": mem if memory else None,
        "has_initialize": False,
        "allocators": list(allocators),
    }


def man(**extra: Any) -> Manifest:
    return parse_manifest(minimal(**extra), root=ROOT, source="x/plugin.json")


def fact_error(manifest: Manifest, f: dict[str, Any]) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        check_facts(manifest, f)
    assert info.value.path == "x/plugin.json"
    return info.value


@pytest.mark.parametrize(("allocators", "chosen"), [
    (("cortex_alloc", "malloc"), "cortex_alloc"),
    (("malloc", "cortex_alloc"), "cortex_alloc"),
    (("cortex_alloc",), "cortex_alloc"),
    (("malloc",), "malloc"),
])
def test_auto_allocator_prefers_cortex_alloc(allocators: tuple[str, ...], chosen: str) -> None:
    fit = check_facts(man(), facts(allocators=allocators))
    assert fit == ModuleFit(allocator_export=chosen, capabilities=("run",))


def test_auto_allocator_needs_one() -> None:
    exc = fact_error(man(), facts(allocators=()))
    assert exc.field == "wasm.allocator"
    assert "neither cortex_alloc nor malloc" in str(exc)


def test_auto_allocator_ignores_wrongly_typed_exports() -> None:
    # describe_module lists only (i32) -> i32 allocators; a malloc of another type is not one.
    f = facts(allocators=(), extra_exports=(func("malloc", ["i64"], ["i64"]),))
    assert fact_error(man(), f).field == "wasm.allocator"


@pytest.mark.parametrize(("allocator", "export", "other"), [
    ("wasi", "malloc", "cortex_alloc"),
    ("custom", "cortex_alloc", "malloc"),
])
def test_explicit_allocator(allocator: str, export: str, other: str) -> None:
    m = man(wasm={"allocator": allocator})
    assert check_facts(m, facts(allocators=(export,))).allocator_export == export
    assert check_facts(m, facts(allocators=(export, other))).allocator_export == export
    exc = fact_error(m, facts(allocators=(other,)))
    assert exc.field == "wasm.allocator"
    assert f"does not export {export!r}" in str(exc)
    assert fact_error(m, facts(allocators=())).field == "wasm.allocator"


def test_capabilities_discovered_when_not_declared() -> None:
    fit = check_facts(man(), facts(capabilities=("b", "a", "c")))
    assert fit.capabilities == ("b", "a", "c")


def test_declared_capabilities_are_exactly_those_used() -> None:
    m = man(capabilities={"a": {}, "c": {}})
    fit = check_facts(m, facts(capabilities=("a", "b", "c")))
    assert fit.capabilities == ("a", "c")


def test_declared_capability_not_exported() -> None:
    exc = fact_error(man(capabilities={"run": {}, "missing": {}}), facts(capabilities=("run",)))
    assert exc.field == "capabilities.missing"
    assert "does not export it" in str(exc)


def test_declared_capability_exported_as_something_else() -> None:
    f = facts(extra_exports=({"name": "counter", "kind": "global"},))
    exc = fact_error(man(capabilities={"counter": {}}), f)
    assert exc.field == "capabilities.counter"
    assert "does not export it" in str(exc)


def test_declared_capability_with_wrong_signature() -> None:
    f = facts(extra_exports=(func("count", ["i32", "i32"], []),))
    exc = fact_error(man(capabilities={"count": {}}), f)
    assert exc.field == "capabilities.count"
    assert "wrong signature" in str(exc)


def test_module_without_capabilities() -> None:
    exc = fact_error(man(), facts(capabilities=()))
    assert exc.field == "entryPoint"
    assert "exports no capability" in str(exc)
    # Exports with other signatures are not capabilities either.
    f = facts(capabilities=(), extra_exports=(func("count", ["i32"], ["i32"]),))
    assert fact_error(man(), f).field == "entryPoint"


def test_memory_needed_at_start_above_max_memory_pages() -> None:
    m = man(wasm={"maxMemoryPages": 16})
    assert check_facts(m, facts(min_pages=16)).capabilities == ("run",)
    exc = fact_error(m, facts(min_pages=17))
    assert exc.field == "wasm.maxMemoryPages"
    assert "(16) is below the 17 pages" in str(exc)


def test_memory_pages_above_module_maximum() -> None:
    m = man(wasm={"memoryPages": 8})
    assert check_facts(m, facts(max_pages=8)).allocator_export == "malloc"
    assert check_facts(m, facts(max_pages=None)).allocator_export == "malloc"
    exc = fact_error(m, facts(max_pages=7))
    assert exc.field == "wasm.memoryPages"
    assert "(8) is above the module's own memory maximum of 7" in str(exc)


def test_module_max_below_max_memory_pages_is_fine() -> None:
    # The module's own maximum simply wins at run time; the manifest's cap is an upper bound.
    m = man(wasm={"maxMemoryPages": 256})
    assert check_facts(m, facts(min_pages=2, max_pages=4)).capabilities == ("run",)


def test_facts_without_memory() -> None:
    assert check_facts(man(), facts(memory=False)).capabilities == ("run",)


def test_check_facts_with_document_example() -> None:
    m = parse_manifest(json.loads(DOC_EXAMPLE), root=ROOT)
    fit = check_facts(m, facts(capabilities=("transform",), allocators=("malloc",), min_pages=2))
    assert fit == ModuleFit("malloc", ("transform",))
    # "wasi" and only cortex_alloc: refused.
    with pytest.raises(ManifestError):
        check_facts(m, facts(capabilities=("transform",), allocators=("cortex_alloc",)))


# -- property tests ---------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(-3, 70_000)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from(["wasm", "1.0.0", "demo", "demo.wasm", "auto", "wasi", "custom", SHA,
                       "../x.wasm", "/x.wasm", "run", "__run"])
)
keys = st.text(max_size=12) | st.sampled_from(
    ["name", "version", "type", "entryPoint", "description", "abi", "$schema", "wasm", "limits",
     "sha256", "capabilities", "memoryPages", "maxMemoryPages", "allocator", "timeoutMs", "fuel",
     "maxInputBytes", "maxOutputBytes", "maxLogBytes"]
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)

# Every path a valid manifest can hold, with the kind of value it expects.
MUTABLE_PATHS = [
    "name", "version", "type", "entryPoint", "description", "abi", "$schema", "sha256",
    "wasm", "wasm.memoryPages", "wasm.maxMemoryPages", "wasm.allocator",
    "limits", "limits.timeoutMs", "limits.fuel", "limits.maxInputBytes", "limits.maxOutputBytes",
    "limits.maxLogBytes", "capabilities", "capabilities.transform",
    "capabilities.transform.description", "capabilities.transform.timeoutMs",
    "capabilities.transform.fuel",
]


def _mutate(base: dict[str, Any], dotted: str, action: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    node: Any = out
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    if action == "delete":
        node.pop(last, None)
    elif action == "unknown":
        # Add a misspelt field inside the object at ``dotted`` (or next to a scalar field).
        target = node[last] if isinstance(node.get(last), dict) else node
        target["unknownField"] = value
    else:
        node[last] = value
    return out


@st.composite
def mutated_manifests(draw: st.DrawFn) -> dict[str, Any]:
    base = draw(st.sampled_from([FULL, json.loads(DOC_EXAMPLE), minimal()]))
    present = [p for p in MUTABLE_PATHS if _has(base, p)]
    dotted = draw(st.sampled_from(present))
    action = draw(st.sampled_from(["replace", "replace", "delete", "unknown"]))
    return _mutate(base, dotted, action, draw(json_values))


def _has(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _parses_or_manifest_error(data: Any) -> None:
    try:
        result = parse_manifest(data, root=ROOT)
    except ManifestError as exc:
        assert str(exc)
        return
    assert isinstance(result, Manifest)
    # Whatever was accepted is within the documented ranges.
    assert 1 <= result.memory_pages <= result.max_memory_pages <= WASM_PAGE_LIMIT
    assert 1 <= result.limits.timeout_ms <= MAX_TIMEOUT_MS
    assert 1 <= result.limits.fuel <= MAX_FUEL
    assert result.allocator in ("auto", "wasi", "custom")
    assert result.entry_point.endswith(".wasm") and ".." not in Path(result.entry_point).parts


PROPERTY_SETTINGS = settings(max_examples=400, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(json_values)
def test_property_arbitrary_json_never_escapes_manifest_error(data: Any) -> None:
    _parses_or_manifest_error(data)


@PROPERTY_SETTINGS
@given(st.dictionaries(keys, json_values, max_size=10))
def test_property_arbitrary_objects_never_escape_manifest_error(data: dict[str, Any]) -> None:
    _parses_or_manifest_error(data)


@PROPERTY_SETTINGS
@given(mutated_manifests())
def test_property_mutated_manifest_parses_or_names_an_error(data: dict[str, Any]) -> None:
    _parses_or_manifest_error(data)


@PROPERTY_SETTINGS
@given(
    st.integers(1, WASM_PAGE_LIMIT), st.integers(1, WASM_PAGE_LIMIT),
    st.integers(1, MAX_TIMEOUT_MS), st.integers(1, MAX_FUEL),
    st.sampled_from(["auto", "wasi", "custom"]),
)
def test_property_valid_values_round_trip(pages: int, max_pages: int, timeout: int, fuel: int,
                                          allocator: str) -> None:
    low, high = sorted((pages, max_pages))
    m = parse(minimal(wasm={"memoryPages": low, "maxMemoryPages": high, "allocator": allocator},
                      limits={"timeoutMs": timeout, "fuel": fuel}))
    assert (m.memory_pages, m.max_memory_pages, m.allocator) == (low, high, allocator)
    assert m.limits == CallLimits(timeout, fuel)
