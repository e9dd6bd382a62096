"""Just enough of the wasm binary format to find imported and exported functions whose signature
mentions ``v128``, and the size of a module's initialised data.

Wasmtime's C API aborts the whole process (a Rust panic: "support for v128 is not implemented")
when asked for the kind of a ``v128`` value type, which describing such a function's signature
does. A module may use SIMD inside; this check only refuses one whose *interface* has a ``v128``,
which ABI v1 has no use for, with a clear error instead of a dead process. It runs on modules that
already compiled (so the binary is well formed) under an engine without the GC, function
references and exceptions proposals (so every value type is one byte and every type a function).
"""

from __future__ import annotations

V128 = 0x7B
_FUNC_TYPE = 0x60
_SECTION_TYPE, _SECTION_IMPORT, _SECTION_FUNCTION, _SECTION_EXPORT = 1, 2, 3, 7
_SECTION_DATA = 11
_KIND_FUNC, _KIND_TABLE, _KIND_MEMORY, _KIND_GLOBAL, _KIND_TAG = 0, 1, 2, 3, 4


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("LEB128 too long")

    def name(self) -> str:
        length = self.uleb()
        if self.pos + length > self.end:
            raise ValueError("truncated")
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        return raw.decode("utf-8", "replace")

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()


def v128_in_interface(wasm: bytes) -> str | None:
    """A description of the first imported or exported function whose parameters or results
    include ``v128`` (e.g. "the export 'f'"), or None. ``ValueError`` if the binary is not as
    expected (the caller then refuses the module)."""
    types: list[bool] = []  # per type index: mentions v128
    func_types: list[int] = []  # per function index (imports first): its type index
    reader = _Reader(wasm, 8)
    while reader.pos < reader.end:
        section_id = reader.byte()
        size = reader.uleb()
        body = _Reader(wasm, reader.pos, reader.pos + size)
        reader.pos += size
        if section_id == _SECTION_TYPE:
            for _ in range(body.uleb()):
                if body.byte() != _FUNC_TYPE:
                    raise ValueError("a type that is not a function type")
                mentions = False
                for _vec in range(2):  # parameters, then results
                    for _ in range(body.uleb()):
                        mentions |= body.byte() == V128
                types.append(mentions)
        elif section_id == _SECTION_IMPORT:
            for _ in range(body.uleb()):
                module, field = body.name(), body.name()
                kind = body.byte()
                if kind == _KIND_FUNC:
                    index = body.uleb()
                    if types[index]:
                        return f"the import '{module}.{field}'"
                    func_types.append(index)
                elif kind == _KIND_TABLE:
                    body.byte()
                    body.limits()
                elif kind == _KIND_MEMORY:
                    body.limits()
                elif kind == _KIND_GLOBAL:
                    body.byte()
                    body.byte()
                elif kind == _KIND_TAG:
                    body.byte()
                    body.uleb()
                else:
                    raise ValueError(f"unknown import kind {kind}")
        elif section_id == _SECTION_FUNCTION:
            func_types.extend(body.uleb() for _ in range(body.uleb()))
        elif section_id == _SECTION_EXPORT:
            for _ in range(body.uleb()):
                name = body.name()
                kind, index = body.byte(), body.uleb()
                if kind == _KIND_FUNC and types[func_types[index]]:
                    return f"the export '{name}'"
    return None


def data_section_bytes(wasm: bytes) -> int:
    """The size of the module's data section: its initialised data, give or take a few bytes of
    segment headers. ``ValueError`` if the binary is not as expected."""
    reader = _Reader(wasm, 8)
    while reader.pos < reader.end:
        section_id = reader.byte()
        size = reader.uleb()
        if reader.pos + size > reader.end:
            raise ValueError("truncated")
        if section_id == _SECTION_DATA:
            return size
        reader.pos += size
    return 0
