"""What the soak calls: a weighted *mix* of cases, each a plugin capability, an input generator and
an expectation the outcome is checked against.

A mix comes from a file (``--mix``) or, without one, from :func:`default_cases`, which picks inputs
per capability (``transform``: random text of many sizes and every mode, checked against a Python
reference; ``echo``: random JSON with a per-call nonce; ``fail``/``log``: the conformance contract).

Mix files (docs/soak.md has the full schema):

- JSON lines (``.jsonl``/``.ndjson``, or any file that is not one JSON document): one case per line.
- A JSON document: a list of cases, or ``{"cases": [...], "faults": {...}}``. The conformance
  suite's ``vectors.json`` is a valid mix.
- A Python file (``.py``): defines ``MIX`` (the same shape as the JSON document) or ``CASES`` (a
  list); a case's ``strategy`` may be a hypothesis strategy object.

A case: ``{"capability": ..., "plugin": ... (default: every loaded plugin with the capability),
"weight": 1, one of "input" / "input_json" / "input_generator" / "generator" / "strategy",
"expect": ...}``.
"""

from __future__ import annotations

import bisect
import itertools
import random
import runpy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .. import errors as cortex_errors
from .config import SoakSetupError

U64 = 0xFFFFFFFFFFFFFFFF
TRANSFORM_MODES = ("reverse", "uppercase", "lowercase", "rot13", "none")
#: (min, max) code points of generated texts and their weights: mostly small, sometimes large.
DEFAULT_TEXT_SIZES: tuple[tuple[int, int, float], ...] = (
    (0, 0, 1.0), (1, 64, 8.0), (65, 1024, 4.0), (1025, 16384, 1.0), (16385, 65536, 0.2),
)
CASE_KEYS = frozenset({"name", "plugin", "capability", "weight", "input", "input_json",
                       "input_generator", "generator", "strategy", "expect",
                       # ignored: conformance vectors carry them
                       "expect_log", "description", "comment"})


# -- payloads and expectations --------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """One call's input: a JSON value (``Runtime.call``) or exact JSON text (``Runtime.call_json``)."""

    value: Any
    json_text: str | None = None

    def decoded(self) -> Any:
        return orjson.loads(self.json_text) if self.json_text is not None else self.value


def _error_classes() -> dict[str, type[cortex_errors.CortexError]]:
    table: dict[str, type[cortex_errors.CortexError]] = {}
    for name in cortex_errors.__all__:
        cls = getattr(cortex_errors, name)
        if isinstance(cls, type) and issubclass(cls, cortex_errors.CortexError):
            table[name] = cls
            table[cls.kind] = cls
    return table


ERROR_CLASSES = _error_classes()


def error_class(name: str) -> type[cortex_errors.CortexError]:
    try:
        return ERROR_CLASSES[name]
    except KeyError:
        raise SoakSetupError(f"unknown error class {name!r}; use a class of cortex_runtime.errors "
                             "such as PluginError") from None


@dataclass(frozen=True)
class Expectation:
    """What a case's outcome must be.

    ``kind``: ``any`` (any result), ``result`` (equal to ``result``), ``echo`` (equal to the
    input), ``transform`` (the conformance reference), ``error`` (one of ``errors``, no result).
    ``errors`` lists typed errors that are acceptable besides a result (for ``error``: instead).
    ``message``/``message_key``: the error message must equal it / the input's field of that name.
    """

    kind: str = "any"
    result: Any = None
    errors: tuple[type[cortex_errors.CortexError], ...] = ()
    message: str | None = None
    message_key: str | None = None

    def check_result(self, payload: Payload, result: Any) -> str | None:
        """None if ``result`` is right, else what is wrong with it."""
        if self.kind == "any":
            return None
        if self.kind == "error":
            names = ", ".join(c.__name__ for c in self.errors)
            return f"expected {names}, got a result {_short(result)}"
        try:
            if self.kind == "result":
                want = self.result
            elif self.kind == "echo":
                want = payload.decoded()
            elif self.kind == "transform":
                value = payload.decoded()
                want = transform_reference(value["text"], value["mode"])
            else:  # pragma: no cover - validated at parse time
                return f"unknown expectation {self.kind!r}"
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            return f"cannot compute the expected {self.kind} result for this input: {exc!r}"
        if _same_json(result, want):
            return None
        return f"expected {_short(want)}, got {_short(result)}"

    def accepts_error(self, payload: Payload, exc: cortex_errors.CortexError) -> bool:
        if not isinstance(exc, self.errors):
            return False
        if self.message is not None and exc.message != self.message:
            return False
        if self.message_key is not None:
            value = payload.decoded()
            wanted = value.get(self.message_key) if isinstance(value, dict) else None
            return exc.message == wanted
        return True

    def describe(self) -> str:
        extra = f" or {'/'.join(c.__name__ for c in self.errors)}" if self.errors and \
            self.kind != "error" else ""
        if self.kind == "error":
            return "error " + "/".join(c.__name__ for c in self.errors)
        return self.kind + extra


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON documents (object key order aside; ``1`` and ``1.0`` and ``true`` differ)."""
    option = orjson.OPT_SORT_KEYS
    try:
        return orjson.dumps(a, option=option) == orjson.dumps(b, option=option)
    except TypeError:
        return False


def _short(value: Any, limit: int = 160) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def transform_reference(text: Any, mode: Any) -> dict[str, Any]:
    """The conformance ``transform`` (conformance/README.md): ASCII-only case mapping, reverse by
    code point, rot13; ``length`` in UTF-8 bytes and ``simple_hash`` of the result."""
    if not isinstance(text, str) or not isinstance(mode, str):
        raise TypeError("transform takes a string text and a string mode")
    if mode == "reverse":
        result = text[::-1]
    elif mode == "uppercase":
        result = text.translate(_UPPER)
    elif mode == "lowercase":
        result = text.translate(_LOWER)
    elif mode == "rot13":
        result = text.translate(_ROT13)
    else:
        result = text
    data = result.encode("utf-8")
    acc = 0
    for byte in data:
        acc = (acc * 31 + byte) & U64
    return {"result": result, "length": len(data), "hash": acc}


_LOWER_ASCII = "abcdefghijklmnopqrstuvwxyz"
_UPPER_ASCII = _LOWER_ASCII.upper()
_UPPER = str.maketrans(_LOWER_ASCII, _UPPER_ASCII)
_LOWER = str.maketrans(_UPPER_ASCII, _LOWER_ASCII)
_ROT13 = str.maketrans(_LOWER_ASCII + _UPPER_ASCII,
                       _LOWER_ASCII[13:] + _LOWER_ASCII[:13] + _UPPER_ASCII[13:] + _UPPER_ASCII[:13])


# -- generators -----------------------------------------------------------------------------------

Generator = Callable[[random.Random, int], Payload]

_ASCII = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
          "     .,;:!?-_()[]{}<>/@#$%^&*+=~'`|") + '"\\\n\t'
_UNICODE_EXTRA = ("éèêëàâäôöûüçñßÄÖÜÉ" "αβγδεζηθλμπσω" "абвгдежзиклмн" "日本語テキスト中文한국어"
                  "😀🎉🚀𝄞🦀" "\u0301\u0308\u200d\u00a0\u2028\u2029\u0001\u001f\u007f\ufeff€")


class TextCorpus:
    """A long random string per alphabet; texts are slices of it (cheap for large sizes)."""

    SIZE = 1 << 17

    def __init__(self, rng: random.Random) -> None:
        ascii_text = "".join(rng.choices(_ASCII, k=self.SIZE))
        alphabet = _ASCII + _UNICODE_EXTRA * 3
        unicode_text = "".join(rng.choices(alphabet, k=self.SIZE))
        self.texts = {"ascii": ascii_text, "unicode": unicode_text}

    def text(self, rng: random.Random, alphabet: str, size: int) -> str:
        source = self.texts[alphabet]
        size = min(size, len(source))
        start = rng.randrange(len(source) - size + 1)
        return source[start:start + size]


@dataclass
class TextGenerator:
    """``{"kind": "text", "sizes": [...], "alphabet": "unicode", "modes": [...], "key": "text",
    "extra": {...}}``: ``{key: random text, "mode": random mode, **extra}``."""

    corpus: TextCorpus
    sizes: Sequence[tuple[int, int, float]] = DEFAULT_TEXT_SIZES
    alphabets: Sequence[str] = ("ascii", "unicode")
    modes: Sequence[str] | None = TRANSFORM_MODES
    key: str = "text"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cum = list(itertools.accumulate(w for _, _, w in self.sizes))

    def __call__(self, rng: random.Random, call_no: int) -> Payload:
        lo, hi, _ = self.sizes[bisect.bisect(self._cum, rng.random() * self._cum[-1])
                               if self._cum[-1] > 0 else 0]
        size = rng.randint(lo, hi)
        value: dict[str, Any] = {self.key: self.corpus.text(rng, rng.choice(self.alphabets), size)}
        if self.modes:
            value["mode"] = rng.choice(self.modes)
        value.update(self.extra)
        return Payload(value)


@dataclass
class RandomJsonGenerator:
    """Random JSON values (nested lists/objects, 64-bit integers, finite floats, Unicode strings),
    wrapped as ``{"call": N, "value": ...}`` so an echoed result names its call."""

    corpus: TextCorpus
    max_depth: int = 3

    def __call__(self, rng: random.Random, call_no: int) -> Payload:
        return Payload({"call": call_no, "value": self._value(rng, 0)})

    def _value(self, rng: random.Random, depth: int) -> Any:
        roll = rng.random()
        if depth < self.max_depth and roll < 0.25:
            return [self._value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
        if depth < self.max_depth and roll < 0.45:
            return {self.corpus.text(rng, "unicode", rng.randint(0, 12)): self._value(rng, depth + 1)
                    for _ in range(rng.randint(0, 6))}
        kind = rng.randrange(6)
        if kind == 0:
            return None
        if kind == 1:
            return rng.random() < 0.5
        if kind == 2:
            return rng.choice([0, -1, 1, 2**53 + 1, -(2**63), 2**63 - 1, 2**64 - 1,
                               rng.randint(-(2**63), 2**63 - 1)])
        if kind == 3:
            return rng.choice([0.0, -0.0, 1.5, 1e-300, 1.7976931348623157e308,
                               rng.uniform(-1e9, 1e9)])
        return self.corpus.text(rng, rng.choice(("ascii", "unicode")), rng.randint(0, 200))


@dataclass
class MessageGenerator:
    """``{"message": short random text}`` (the conformance ``fail`` and ``log`` inputs)."""

    corpus: TextCorpus

    def __call__(self, rng: random.Random, call_no: int) -> Payload:
        text = self.corpus.text(rng, "ascii", rng.randint(1, 80)).strip() or "x"
        return Payload({"message": f"soak {call_no}: {text}"})


@dataclass
class PoolGenerator:
    """Values drawn up front (hypothesis examples), picked at random for each call."""

    values: Sequence[Any]

    def __call__(self, rng: random.Random, call_no: int) -> Payload:
        return Payload(rng.choice(self.values))


@dataclass
class FixedGenerator:
    payload: Payload

    def __call__(self, rng: random.Random, call_no: int) -> Payload:
        return self.payload


# -- cases and the mix ----------------------------------------------------------------------------


@dataclass
class Case:
    """One kind of call. ``plugin`` None: every loaded plugin that has ``capability``."""

    name: str
    capability: str
    generate: Generator
    expect: Expectation = field(default_factory=Expectation)
    plugin: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Entry:
    plugin: str
    case: Case


class Mix:
    """Cases bound to loaded plugins, picked at random by weight."""

    def __init__(self, entries: Sequence[tuple[Entry, float]]) -> None:
        positive = [(e, w) for e, w in entries if w > 0]
        if not positive:
            raise SoakSetupError("the mix has no case with a positive weight")
        self.entries = [e for e, _ in positive]
        self.weights = [w for _, w in positive]
        self._cum = list(itertools.accumulate(self.weights))

    def pick(self, rng: random.Random) -> Entry:
        return self.entries[bisect.bisect(self._cum, rng.random() * self._cum[-1])]

    def describe(self) -> list[dict[str, Any]]:
        total = self._cum[-1]
        return [{"plugin": e.plugin, "capability": e.case.capability, "case": e.case.name,
                 "share": round(w / total, 6), "expect": e.case.expect.describe()}
                for e, w in zip(self.entries, self.weights, strict=True)]


def bind(cases: Sequence[Case], capabilities: Mapping[str, Sequence[str]]) -> Mix:
    """Attach every case to the loaded plugins it applies to; each plugin gets an equal share."""
    per_plugin: dict[str, list[tuple[Case, float]]] = {name: [] for name in capabilities}
    for case in cases:
        if case.plugin is not None:
            if case.plugin not in capabilities:
                raise SoakSetupError(f"case {case.name!r}: plugin {case.plugin!r} is not one of the "
                                     f"soaked plugins ({', '.join(capabilities)})")
            targets = [case.plugin]
        else:
            targets = [name for name, caps in capabilities.items() if case.capability in caps]
        if not targets:
            raise SoakSetupError(f"case {case.name!r}: no soaked plugin has capability "
                                 f"{case.capability!r}")
        for target in targets:
            if case.capability not in capabilities[target]:
                raise SoakSetupError(f"case {case.name!r}: plugin {target!r} has no capability "
                                     f"{case.capability!r} (it has {', '.join(capabilities[target])})")
            per_plugin[target].append((case, case.weight))
    entries: list[tuple[Entry, float]] = []
    active = [name for name, items in per_plugin.items() if items]
    for name in active:
        total = sum(w for _, w in per_plugin[name]) or 1.0
        entries.extend((Entry(name, case), w / total / len(active)) for case, w in per_plugin[name])
    return Mix(entries)


def default_cases(capabilities: Mapping[str, Sequence[str]], rng: random.Random) -> list[Case]:
    """Sensible cases for each capability of each plugin (see the module docstring)."""
    corpus = TextCorpus(rng)
    cases: list[Case] = []
    for plugin, caps in capabilities.items():
        for cap in caps:
            if cap == "transform":
                cases.append(Case(f"{plugin}/transform-random-text", cap, TextGenerator(corpus),
                                  Expectation("transform"), plugin, 8.0))
            elif cap == "echo":
                cases.append(Case(f"{plugin}/echo-random-json", cap, RandomJsonGenerator(corpus),
                                  Expectation("echo"), plugin, 4.0))
            elif cap == "fail":
                cases.append(Case(f"{plugin}/fail-message", cap, MessageGenerator(corpus),
                                  Expectation("error", errors=(cortex_errors.PluginError,),
                                              message_key="message"), plugin, 1.0))
            elif cap == "log":
                cases.append(Case(f"{plugin}/log-message", cap, MessageGenerator(corpus),
                                  Expectation("result", result={"logged": True}), plugin, 1.0))
            else:
                cases.append(Case(
                    f"{plugin}/{cap}-text", cap,
                    TextGenerator(corpus, sizes=((0, 64, 1.0),), modes=None),
                    Expectation("any", errors=(cortex_errors.PluginError,)), plugin, 1.0))
    return cases


# -- mix files ------------------------------------------------------------------------------------


@dataclass
class MixFile:
    cases: list[Case]
    faults: dict[str, Any] = field(default_factory=dict)


def load_mix(path: Path, rng: random.Random, seed: int) -> MixFile:
    """Read a mix file (JSON lines, JSON document or Python); see the module docstring."""
    if not path.is_file():
        raise SoakSetupError(f"mix file {path} does not exist")
    if path.suffix == ".py":
        try:
            namespace = runpy.run_path(str(path))
        except Exception as exc:
            raise SoakSetupError(f"mix file {path} failed to run: {exc}") from None
        spec = namespace.get("MIX", namespace.get("CASES"))
        if spec is None:
            raise SoakSetupError(f"mix file {path} defines neither MIX nor CASES")
        return _parse_document(spec, rng, seed, str(path))
    text = path.read_text(encoding="utf-8")
    if path.suffix not in (".jsonl", ".ndjson"):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            return _parse_document(document, rng, seed, str(path))
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise SoakSetupError(f"{path}:{number}: not a JSON object: {exc}") from None
    return _parse_document(lines, rng, seed, str(path))


def _parse_document(document: Any, rng: random.Random, seed: int, where: str) -> MixFile:
    faults: dict[str, Any] = {}
    if isinstance(document, dict):
        unknown = set(document) - {"cases", "faults"}
        if unknown:
            raise SoakSetupError(f"{where}: unknown key(s) {sorted(unknown)} (use cases, faults)")
        faults = dict(document.get("faults") or {})
        document = document.get("cases")
    if not isinstance(document, list) or not document:
        raise SoakSetupError(f"{where}: a mix needs a non-empty list of cases")
    corpus = TextCorpus(rng)
    cases = [parse_case(item, index, corpus, seed, where) for index, item in enumerate(document)]
    return MixFile(cases, faults)


def parse_case(item: Any, index: int, corpus: TextCorpus, seed: int, where: str = "mix") -> Case:
    if not isinstance(item, dict):
        raise SoakSetupError(f"{where}: case {index} is not an object")
    name = str(item.get("name") or f"case-{index}")
    at = f"{where}: case {name!r}"
    unknown = set(item) - CASE_KEYS
    if unknown:
        raise SoakSetupError(f"{at}: unknown key(s) {sorted(unknown)}")
    capability = item.get("capability")
    if not isinstance(capability, str) or not capability:
        raise SoakSetupError(f"{at}: needs a capability")
    plugin = item.get("plugin")
    if plugin is not None and not isinstance(plugin, str):
        raise SoakSetupError(f"{at}: plugin must be a name")
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise SoakSetupError(f"{at}: weight must be a number >= 0")
    sources = [k for k in ("input", "input_json", "input_generator", "generator", "strategy")
               if k in item]
    if len(sources) > 1:
        raise SoakSetupError(f"{at}: give one of input, input_json, input_generator, generator, "
                             f"strategy (got {', '.join(sources)})")
    generate: Generator
    if not sources or sources[0] == "input":
        value = item.get("input")
        try:
            orjson.dumps(value)
        except TypeError as exc:
            raise SoakSetupError(f"{at}: input is not JSON: {exc}") from None
        generate = FixedGenerator(Payload(value))
    elif sources[0] == "input_json":
        text = item["input_json"]
        if not isinstance(text, str):
            raise SoakSetupError(f"{at}: input_json must be a string of JSON text")
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SoakSetupError(f"{at}: input_json is not valid JSON: {exc}") from None
        generate = FixedGenerator(Payload(None, text))
    elif sources[0] == "input_generator":
        generate = _conformance_generator(item["input_generator"], at)
    elif sources[0] == "generator":
        generate = _generator(item["generator"], corpus, seed + index, at)
    else:
        generate = _hypothesis_generator({"strategy": item["strategy"]}, seed + index, at)
    return Case(name, capability, generate, parse_expect(item.get("expect"), at, capability),
                plugin, float(weight))


def parse_expect(spec: Any, at: str, capability: str = "") -> Expectation:
    if spec is None:
        return Expectation("any")
    if not isinstance(spec, dict):
        raise SoakSetupError(f"{at}: expect must be an object")
    unknown = set(spec) - {"result", "reference", "echo", "error", "errors", "message", "any"}
    if unknown:
        raise SoakSetupError(f"{at}: expect has unknown key(s) {sorted(unknown)}")
    extra = spec.get("errors", [])
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, list):
        raise SoakSetupError(f"{at}: expect.errors must be a list of error class names")
    allowed = tuple(error_class(str(n)) for n in extra)
    message = spec.get("message")
    if message is not None and not isinstance(message, str):
        raise SoakSetupError(f"{at}: expect.message must be a string")
    if "error" in spec:
        names = spec["error"] if isinstance(spec["error"], list) else [spec["error"]]
        classes = tuple(error_class(str(n)) for n in names) + allowed
        return Expectation("error", errors=classes, message=message)
    if "result" in spec:
        return Expectation("result", result=spec["result"], errors=allowed)
    if spec.get("reference"):  # as in the conformance suite: echo's reference is its input
        return Expectation("echo" if capability == "echo" else "transform", errors=allowed)
    if spec.get("echo"):
        return Expectation("echo", errors=allowed)
    return Expectation("any", errors=allowed)


def _conformance_generator(spec: Any, at: str) -> Generator:
    """The conformance vectors' ``{"kind": "text", "repeat": S, "times": N, "mode": M}`` (a
    ``transform`` input) and ``{"kind": "echo", "repeat": S, "times": N}`` (the text itself)."""
    if not (isinstance(spec, dict) and spec.get("kind") in ("text", "echo")
            and isinstance(spec.get("repeat"), str) and isinstance(spec.get("times"), int)):
        raise SoakSetupError(f"{at}: input_generator must be "
                             '{"kind": "text" or "echo", "repeat": STRING, "times": N, "mode": MODE}')
    text = spec["repeat"] * spec["times"]
    if spec["kind"] == "echo":
        return FixedGenerator(Payload(text))
    return FixedGenerator(Payload({"text": text, "mode": str(spec.get("mode", "none"))}))


def _generator(spec: Any, corpus: TextCorpus, seed: int, at: str) -> Generator:
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        raise SoakSetupError(f"{at}: generator must be an object with a kind")
    kind = spec["kind"]
    if kind == "text":
        unknown = set(spec) - {"kind", "sizes", "alphabet", "modes", "key", "extra"}
        if unknown:
            raise SoakSetupError(f"{at}: text generator has unknown key(s) {sorted(unknown)}")
        sizes = _sizes(spec.get("sizes"), at)
        alphabet = spec.get("alphabet", "any")
        alphabets = ("ascii", "unicode") if alphabet == "any" else (alphabet,)
        if any(a not in ("ascii", "unicode") for a in alphabets):
            raise SoakSetupError(f"{at}: alphabet must be ascii, unicode or any")
        modes = spec.get("modes", list(TRANSFORM_MODES))
        if modes is not None and not (isinstance(modes, list) and all(isinstance(m, str) for m in modes)):
            raise SoakSetupError(f"{at}: modes must be a list of strings (or null for no mode)")
        extra = spec.get("extra", {})
        if not isinstance(extra, dict):
            raise SoakSetupError(f"{at}: extra must be an object")
        return TextGenerator(corpus, sizes, alphabets, modes or None, str(spec.get("key", "text")), extra)
    if kind == "json":
        return RandomJsonGenerator(corpus)
    if kind == "hypothesis":
        return _hypothesis_generator(spec, seed, at)
    raise SoakSetupError(f"{at}: unknown generator kind {kind!r} (text, json, hypothesis)")


def _sizes(spec: Any, at: str) -> tuple[tuple[int, int, float], ...]:
    if spec is None:
        return DEFAULT_TEXT_SIZES
    if not isinstance(spec, list) or not spec:
        raise SoakSetupError(f"{at}: sizes must be a non-empty list of sizes or [min, max] pairs")
    out: list[tuple[int, int, float]] = []
    for size in spec:
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            out.append((size, size, 1.0))
        elif (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) for s in size)
              and 0 <= size[0] <= size[1]):
            out.append((size[0], size[1], 1.0))
        else:
            raise SoakSetupError(f"{at}: bad size {size!r} (an integer >= 0 or [min, max])")
    return tuple(out)


def _hypothesis_generator(spec: Mapping[str, Any], seed: int, at: str) -> Generator:
    unknown = set(spec) - {"kind", "strategy", "examples"}
    if unknown:
        raise SoakSetupError(f"{at}: hypothesis generator has unknown key(s) {sorted(unknown)}")
    try:
        import hypothesis.strategies as st
    except ImportError:
        raise SoakSetupError(f"{at}: hypothesis generators need the hypothesis package "
                             "(pip install hypothesis)") from None
    raw = spec.get("strategy", "json")
    strategy = raw if isinstance(raw, st.SearchStrategy) else strategy_from_spec(raw, at)
    count = spec.get("examples", 500)
    if not isinstance(count, int) or count < 1:
        raise SoakSetupError(f"{at}: examples must be a positive integer")
    values = hypothesis_examples(strategy, count, seed)
    for value in values:
        try:
            orjson.dumps(value)
        except TypeError as exc:
            raise SoakSetupError(f"{at}: the strategy drew a value that is not JSON: {exc}") from None
    if not values:
        raise SoakSetupError(f"{at}: the strategy drew no examples")
    return PoolGenerator(values)


def hypothesis_examples(strategy: Any, count: int, seed: int) -> list[Any]:
    """Draw up to ``count`` examples from a hypothesis strategy, reproducibly for ``seed``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fix_seed

    drawn: list[Any] = []

    @fix_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def strategy_from_spec(spec: Any, at: str) -> Any:
    """A hypothesis strategy from its JSON description: ``"json"``, ``{"text": {"max_size": 9}}``,
    ``{"sampled_from": [...]}``, ``{"fixed_dictionaries": {"text": "text", ...}}``, ..."""
    import hypothesis.strategies as st

    args: Any
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        name, args = next(iter(spec.items()))
    else:
        raise SoakSetupError(f"{at}: a strategy is a name or a one-key object, got {_short(spec)}")

    def kw(allowed: Iterable[str]) -> dict[str, Any]:
        if not isinstance(args, dict):
            raise SoakSetupError(f"{at}: strategy {name!r} takes an object of arguments")
        unknown = set(args) - set(allowed)
        if unknown:
            raise SoakSetupError(f"{at}: strategy {name!r} has unknown argument(s) {sorted(unknown)}")
        return dict(args)

    def sub(value: Any) -> Any:
        return strategy_from_spec(value, at)

    int_range = {"min_value": -(2**63), "max_value": 2**63 - 1}
    if name == "json":
        kw(())
        leaves = (st.none() | st.booleans() | st.integers(**int_range)
                  | st.floats(allow_nan=False, allow_infinity=False) | st.text())
        return st.recursive(leaves, lambda inner: st.lists(inner, max_size=5)
                            | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                            max_leaves=20)
    if name == "text":
        options = kw(("min_size", "max_size", "alphabet"))
        return st.text(**options)
    if name == "integers":
        return st.integers(**{**int_range, **kw(("min_value", "max_value"))})
    if name == "floats":
        return st.floats(allow_nan=False, allow_infinity=False, **kw(("min_value", "max_value")))
    if name == "booleans":
        return st.booleans()
    if name == "none":
        return st.none()
    if name == "just":
        return st.just(args)
    if name == "sampled_from":
        if not isinstance(args, list) or not args:
            raise SoakSetupError(f"{at}: sampled_from takes a non-empty list")
        return st.sampled_from(args)
    if name == "one_of":
        if not isinstance(args, list) or not args:
            raise SoakSetupError(f"{at}: one_of takes a non-empty list of strategies")
        return st.one_of([sub(a) for a in args])
    if name == "lists":
        options = kw(("elements", "min_size", "max_size"))
        return st.lists(sub(options.pop("elements", "json")), **options)
    if name == "dictionaries":
        options = kw(("keys", "values", "min_size", "max_size"))
        return st.dictionaries(sub(options.pop("keys", "text")), sub(options.pop("values", "json")),
                               **options)
    if name == "fixed_dictionaries":
        if not isinstance(args, dict):
            raise SoakSetupError(f"{at}: fixed_dictionaries takes an object of strategies")
        return st.fixed_dictionaries({str(k): sub(v) for k, v in args.items()})
    raise SoakSetupError(f"{at}: unknown strategy {name!r}")
