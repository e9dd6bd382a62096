"""The ``cortex`` command line.

Exit codes (documented in docs/cli.md): 0 success; 2 usage error (bad arguments, input that is not
JSON, unknown plugin or capability); 3 plugin error (invalid plugin, or the plugin failed: trap,
timeout, fuel, memory, reported error, invalid output); 4 runtime failure (worker crash, protocol
error, overload, anything unexpected). Errors print one line on stderr.
"""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson

from . import eventloop
from .errors import (
    CapabilityNotFound,
    CortexError,
    InvalidInput,
    ManifestError,
    PluginFailure,
    PluginNotFound,
)
from .logs import configure_logging
from .manifest import MANIFEST_NAME, NAME_RE, Manifest, load_manifest
from .runtime import Runtime, default_cache_dir
from .soak.command import soak_options

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PLUGIN = 3
EXIT_RUNTIME = 4
T = TypeVar("T")


def user_plugin_dir() -> Path:
    """Where ``cortex plugin install`` puts plugins: ``$CORTEX_HOME/plugins`` (~/.cortex)."""
    home = os.environ.get("CORTEX_HOME") or os.path.join(Path.home(), ".cortex")
    return Path(home) / "plugins"


def plugin_search_path(explicit: tuple[str, ...]) -> list[Path]:
    """``--plugin-dir``, else ``$CORTEX_PLUGIN_PATH``, else ``./plugins`` then the user's folder."""
    if explicit:
        return [Path(p) for p in explicit]
    env = os.environ.get("CORTEX_PLUGIN_PATH")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path("plugins"), user_plugin_dir()]


def find_manifests(dirs: list[Path]) -> tuple[list[Manifest], list[tuple[Path, ManifestError]]]:
    """Every valid manifest in the plugin folders, first occurrence of a name winning."""
    found: list[Manifest] = []
    broken: list[tuple[Path, ManifestError]] = []
    seen: set[str] = set()
    for directory in dirs:
        if not directory.is_dir():
            continue
        for child in sorted(directory.iterdir()):
            if not (child / MANIFEST_NAME).is_file():
                continue
            try:
                manifest = load_manifest(child)
            except ManifestError as exc:
                broken.append((child, exc))
                continue
            if manifest.name not in seen:
                seen.add(manifest.name)
                found.append(manifest)
    return found, broken


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, (PluginNotFound, CapabilityNotFound, InvalidInput)):
        return EXIT_USAGE
    if isinstance(exc, (ManifestError, PluginFailure)):
        return EXIT_PLUGIN
    return EXIT_RUNTIME


def fail(exc: BaseException) -> NoReturn:
    kind = exc.kind if isinstance(exc, CortexError) else type(exc).__name__
    message = str(exc).splitlines()[0] if str(exc) else kind
    click.echo(f"error: {kind}: {message}", err=True)
    sys.exit(exit_code_for(exc))


def run(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return eventloop.run(fn)
    except CortexError as exc:
        fail(exc)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        fail(exc)


def one_shot_runtime(ctx: click.Context, **options: Any) -> Runtime:
    settings = ctx.obj
    return Runtime(workers=1, spare_workers=0, cache_dir=settings["cache_dir"],
                   require_confinement=settings["require_confinement"], **options)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show the runtime's structured log on stderr.")
@click.option("--json-logs", is_flag=True, help="Log as JSON lines instead of text.")
@click.option("--plugin-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Folder of plugin folders (repeatable). Default: $CORTEX_PLUGIN_PATH, else "
                   "./plugins then ~/.cortex/plugins.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where compiled modules are cached (default: ~/.cache/cortex-runtime).")
@click.option("--require-confinement", is_flag=True,
              help="Fail closed: refuse to run plugins unless every sandbox layer is active.")
@click.version_option(package_name="cortex-runtime")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, json_logs: bool, plugin_dirs: tuple[str, ...],
        cache_dir: str | None, require_confinement: bool) -> None:
    """Cortex Runtime: run WebAssembly plugins in sandboxed worker processes."""
    configure_logging(verbose=verbose, json=json_logs)
    ctx.obj = {
        "plugin_dirs": plugin_search_path(plugin_dirs),
        "cache_dir": Path(cache_dir) if cache_dir else default_cache_dir(),
        "require_confinement": require_confinement,
    }


@cli.group()
def plugin() -> None:
    """Call, list, validate, inspect and install plugins."""


@plugin.command("call")
@click.argument("name")
@click.argument("capability")
@click.argument("input_json", metavar="JSON", default="null")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wall-clock limit in seconds (overrides the manifest).")
@click.option("--fuel", type=click.IntRange(min=1), default=None,
              help="Fuel limit (overrides the manifest).")
@click.option("--pretty", is_flag=True, help="Indent the JSON result.")
@click.pass_context
def call_command(ctx: click.Context, name: str, capability: str, input_json: str,
                 timeout: float | None, fuel: int | None, pretty: bool) -> None:
    """Call CAPABILITY of plugin NAME with the JSON input and print the JSON result."""
    try:
        value = orjson.loads(input_json)
    except orjson.JSONDecodeError as exc:
        fail(InvalidInput(f"the input argument is not valid JSON: {exc}"))
    manifests, _ = find_manifests(ctx.obj["plugin_dirs"])
    match = next((m for m in manifests if m.name == name), None)
    if match is None:
        searched = ", ".join(str(d) for d in ctx.obj["plugin_dirs"])
        fail(PluginNotFound(f"no plugin named {name!r} in {searched}"))

    async def go() -> Any:
        async with one_shot_runtime(ctx) as rt:
            await rt.load(match.root)
            return await rt.call(name, capability, value, timeout=timeout, fuel=fuel)

    result = run(go)
    option = orjson.OPT_INDENT_2 if pretty else 0
    click.echo(orjson.dumps(result, option=option).decode())


@plugin.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the plugins found in the plugin folders (manifests only; nothing is run)."""
    manifests, broken = find_manifests(ctx.obj["plugin_dirs"])
    if as_json:
        click.echo(orjson.dumps({
            "plugins": [{"name": m.name, "version": m.version, "description": m.description,
                         "path": str(m.root)} for m in manifests],
            "broken": [{"path": str(p), "error": str(e)} for p, e in broken],
        }, option=orjson.OPT_INDENT_2).decode())
        return
    if not manifests and not broken:
        searched = ", ".join(str(d) for d in ctx.obj["plugin_dirs"])
        click.echo(f"no plugins found in {searched}")
    for m in manifests:
        click.echo(f"{m.name:<24} {m.version:<10} {m.description}  ({m.root})")
    for path, error in broken:
        click.echo(f"BROKEN {path}: {error}", err=True)


@plugin.command("validate")
@click.argument("path", type=click.Path(exists=True))
@click.pass_context
def validate_command(ctx: click.Context, path: str) -> None:
    """Check a plugin folder (or manifest, or .wasm): manifest, wasm, exports and imports."""

    async def go() -> Any:
        async with one_shot_runtime(ctx) as rt:
            return await rt.load(path)

    info = run(go)
    click.echo(f"ok: {info.name} {info.version}: capabilities {', '.join(info.capabilities)}")


@plugin.command("inspect")
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def inspect_command(ctx: click.Context, path: str, as_json: bool) -> None:
    """Show a module's exports, imports, memory and which exports are capabilities."""

    async def go() -> dict[str, Any]:
        async with one_shot_runtime(ctx) as rt:
            return await rt.inspect(path)

    report = run(go)
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    caps = set(report.get("capabilities", []))
    click.echo(f"{report['name']} {report['version']}  sha256 {report['sha256']}")
    click.echo(f"wasm: {report['wasm']}")
    memory = report.get("memory") or {}
    click.echo(f"memory: {memory.get('min_pages')} pages initial, "
               f"max {memory.get('max_pages') if memory.get('max_pages') is not None else 'none'}")
    click.echo("exports:")
    for e in report["exports"]:
        if e["kind"] == "func":
            sig = f"({', '.join(e['params'])}) -> ({', '.join(e['results'])})"
            mark = "  [capability]" if e["name"] in caps else ""
            click.echo(f"  func   {e['name']} {sig}{mark}")
        else:
            click.echo(f"  {e['kind']:<6} {e['name']}")
    click.echo("imports:" if report["imports"] else "imports: none")
    for i in report["imports"]:
        click.echo(f"  {i['kind']:<6} {i['module']}.{i['name']}")
    if report.get("valid"):
        click.echo(f"valid plugin: allocator {report['allocator']}, "
                   f"capabilities {', '.join(report['capabilities'])}")
    else:
        click.echo(f"NOT a valid plugin: {report.get('problem')}")
        sys.exit(EXIT_PLUGIN)


@plugin.command("install")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Replace an installed plugin of the same name.")
@click.option("--to", "destination_dir", type=click.Path(file_okay=False), default=None,
              help="Install into this folder of plugins instead of ~/.cortex/plugins.")
@click.pass_context
def install_command(ctx: click.Context, path: str, force: bool, destination_dir: str | None) -> None:
    """Validate a plugin folder and copy it into the user's plugin folder."""

    async def go() -> Any:
        async with one_shot_runtime(ctx) as rt:
            return await rt.load(path)

    info = run(go)
    target = (Path(destination_dir) if destination_dir else user_plugin_dir()) / info.name
    if target.exists():
        if not force:
            fail(ManifestError(f"{target} already exists (use --force to replace it)"))
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(Path(path) / MANIFEST_NAME, target / MANIFEST_NAME)
    destination = target / info.manifest.entry_point
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(info.wasm_path, destination)
    click.echo(f"installed {info.name} {info.version} into {target}")


@cli.command("doctor")
@click.option("--require-all", is_flag=True, help="Exit 4 unless every confinement layer is active.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor_command(ctx: click.Context, require_all: bool, as_json: bool) -> None:
    """Start a worker and show which sandbox layers are active on this host, and why not."""

    async def go() -> list[dict[str, Any]]:
        async with one_shot_runtime(ctx) as rt:
            return rt.confinement

    layers = run(go)
    inactive = [layer for layer in layers if not layer["active"]]
    if as_json:
        click.echo(orjson.dumps({"layers": layers, "all_active": not inactive},
                                option=orjson.OPT_INDENT_2).decode())
    else:
        for layer in layers:
            mark = "active  " if layer["active"] else "INACTIVE"
            click.echo(f"{mark}  {layer['name']:<13} {layer['detail']}")
        click.echo("every layer is active" if not inactive else
                   f"{len(inactive)} layer(s) inactive: the worker is less confined on this host")
    if require_all and inactive:
        sys.exit(EXIT_RUNTIME)


@cli.command("soak")
@soak_options
@click.pass_context
def soak_command(ctx: click.Context, /, **options: Any) -> None:
    """Drive PLUGIN(s) under load and injected faults; exit 0 if no call was lost and nothing leaked
    (docs/soak.md). PLUGIN is a folder, plugin.json or .wasm, or a name from the plugin folders."""
    from .soak.command import main as soak_main

    verbose = bool(ctx.parent.params.get("verbose")) if ctx.parent else False
    sys.exit(soak_main(ctx.obj, verbose=verbose, **options))


def benchmarks_root() -> Path:
    """The source checkout whose ``benchmarks/`` suite ``cortex bench`` runs: the folder that
    holds this package (the suite is not part of an installed wheel)."""
    return Path(__file__).resolve().parent.parent


@cli.command("bench", context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench_command(args: tuple[str, ...]) -> None:
    """Run the benchmark suite (benchmarks/, docs/benchmarks.md): Cortex side by side with
    in-process wasmtime-py, Extism and the IPC floor. Same options as ``python -m benchmarks``
    (``cortex bench --help``); needs a source checkout."""
    root = benchmarks_root()
    if not (root / "benchmarks" / "suite.py").is_file():
        fail(InvalidInput(f"cortex bench runs the suite in a source checkout's benchmarks/ "
                          f"folder; there is none in {root}"))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # Imported by name: the suite is a checkout's script, outside the package (and its types).
    suite = importlib.import_module("benchmarks.__main__")
    sys.exit(suite.main(list(args), prog="cortex bench"))


SCAFFOLD_LANGUAGES = ("rust", "go", "c", "zig", "assemblyscript", "wat")


def sdk_dir() -> Path:
    """The SDKs and templates: ``$CORTEX_SDK_DIR``, else ``sdk/`` beside this package."""
    return Path(os.environ.get("CORTEX_SDK_DIR") or Path(__file__).resolve().parent.parent / "sdk")


@plugin.command("new")
@click.argument("name")
@click.option("--lang", "language", type=click.Choice(SCAFFOLD_LANGUAGES), required=True,
              help="Guest language of the new plugin.")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".",
              help="Create the plugin folder inside this folder (default: here).")
def new_command(name: str, language: str, parent: str) -> None:
    """Create plugin NAME from the LANG SDK's template, ready to build and call."""
    if not NAME_RE.match(name) or "." in name or "_" in name:
        fail(InvalidInput(f"{name!r} is not a plugin name: use a-z, 0-9 and '-'"))
    template = sdk_dir() / language / "template"
    if not template.is_dir():
        fail(InvalidInput(f"no template for {language} in {template.parent}"))
    target = Path(parent) / name
    if target.exists():
        fail(InvalidInput(f"{target} already exists"))
    ident = name.replace("-", "_")
    for source in sorted(template.rglob("*")):
        relative = source.relative_to(template)
        if any(part in ("target", "node_modules", ".zig-cache", "zig-out") for part in relative.parts):
            continue
        destination = target / relative
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        data = source.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            destination.write_bytes(data)
        else:
            destination.write_text(text.replace("{{name}}", name).replace("{{ident}}", ident))
        shutil.copymode(source, destination)
    (target / ".cortex-env").write_text(
        f"CORTEX_SDK_DIR={shlex.quote(str(sdk_dir()))}\nPYTHON={shlex.quote(sys.executable)}\n"
        "export CORTEX_SDK_DIR PYTHON\n"
    )
    click.echo(f"created {target} ({language})")
    click.echo(f"build:  (cd {target} && ./build.sh)")
    click.echo(f"call:   cortex --plugin-dir {target.parent} plugin call {name} greet '{{\"name\":\"you\"}}'")


def main() -> None:
    cli(prog_name="cortex")


if __name__ == "__main__":
    main()
