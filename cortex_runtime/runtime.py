"""The public entry point: ``async with Runtime(...) as rt: await rt.call(...)``."""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import anyio.abc
import msgspec
import orjson
import structlog

from sandbox import MAX_PREPARED_PLUGINS, PREPARED_PLUGINS

from .artifacts import ArtifactCache
from .compiler import Compiler
from .errors import (
    CallTimeout,
    CapabilityNotFound,
    CortexError,
    FuelExhausted,
    InvalidInput,
    InvalidOutput,
    ManifestError,
    MemoryLimitExceeded,
    PluginError,
    PluginNotFound,
    PluginTrap,
    ProtocolError,
    RuntimeClosed,
    WorkerCrashed,
)
from .inspection import check_facts
from .logs import debug_dropped
from .manifest import MANIFEST_NAME, Manifest
from .pool import PoolConfig, WorkerPool
from .quarantine import Quarantine
from .staging import Staged, Stager
from .utf8 import invalid_utf8_at
from .worker import (
    FATAL_KINDS,
    RETIRED,
    EncodedRequest,
    InFlight,
    Worker,
    WorkerGone,
    WorkerTimedOut,
)

log = structlog.get_logger("cortex_runtime")

#: Worker-reported error kinds after which the worker is killed and replaced.
#: Failures that count toward a plugin's quarantine.
QUARANTINE_KINDS = frozenset({"trap", "fuel", "timeout", "memory", "crash"})
WARM_PLUGINS = 8
#: Weight of a capability's newest call in its moving average of call time (``Runtime._pace``).
PACE_WEIGHT = 0.25
SEND_ATTEMPTS = 3
#: Seconds a worker keeps polling for its next request after it finished one, before it sleeps
#: (``sandbox.worker.poll_briefly``): back-to-back calls then skip an idle CPU's wake-up.
WORKER_SPIN = 100e-6
#: Seconds the supervisor's event loop keeps turning (polling the reply pipe) for the reply to a
#: lone quick call before it sleeps (``Worker._may_spin``): the reply then skips an idle CPU's
#: wake-up too.
SUPERVISOR_SPIN = 200e-6
MAX_SPIN = 0.01
#: Plugins a worker keeps loaded by default (see ``Runtime(max_resident_plugins=...)``): ~190 MB
#: of small modules (0.18 MB each, docs/benchmarks.md), under the default ``max_worker_rss``.
MAX_RESIDENT_PLUGINS = 1024


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "cortex-runtime"


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its manifest, its capabilities and what its module contains."""

    name: str
    version: str
    description: str
    capabilities: tuple[str, ...]
    sha256: str
    wasm_path: Path
    manifest: Manifest
    allocator_export: str
    facts: Mapping[str, Any] = field(repr=False, default_factory=dict)
    #: Each capability's call request with the manifest's limits, encoded on its first call.
    default_calls: dict[str, tuple[EncodedRequest, float]] = field(
        init=False, repr=False, compare=False, default_factory=dict)


class Runtime:
    """Loads plugins and runs their capabilities in a pool of sandboxed worker processes.

    Use it as an async context manager; it works under asyncio and trio (through anyio).
    Leaving the ``async with`` block stops every worker.
    """

    def __init__(
        self,
        plugin_dirs: Iterable[str | os.PathLike[str]] = (),
        *,
        workers: int | None = None,
        spare_workers: int = 1,
        max_queue: int = 1024,
        cache_dir: str | os.PathLike[str] | None = None,
        max_calls_per_worker: int = 100_000,
        max_worker_rss: int = 512 * 1024 * 1024,
        timeout_grace: float = 0.5,
        load_timeout: float = 60.0,
        quarantine_after: int = 5,
        quarantine_window: float = 60.0,
        quarantine_seconds: float = 30.0,
        max_restarts: int = 10,
        restart_period: float = 10.0,
        confine: bool = True,
        require_confinement: bool = False,
        worker_memory_limit: int = 6 * 1024**3,
        prepared_instances: int = PREPARED_PLUGINS,
        compiler_idle: float = 10.0,
        worker_spin: float = WORKER_SPIN,
        supervisor_spin: float = SUPERVISOR_SPIN,
        max_resident_plugins: int | None = MAX_RESIDENT_PLUGINS,
    ) -> None:
        count = workers if workers is not None else (os.cpu_count() or 1)
        if count < 1:
            raise ValueError("workers must be at least 1")
        if require_confinement and not confine:
            raise ValueError("require_confinement=True needs confine=True")
        if isinstance(prepared_instances, bool) or not (
                isinstance(prepared_instances, int) and 0 <= prepared_instances <= MAX_PREPARED_PLUGINS):
            raise ValueError(f"prepared_instances must be an integer from 0 to {MAX_PREPARED_PLUGINS}")
        for name, spin in (("worker_spin", worker_spin), ("supervisor_spin", supervisor_spin)):
            if isinstance(spin, bool) or not (
                    isinstance(spin, (int, float)) and 0 <= spin <= MAX_SPIN):
                raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_SPIN}")
        if max_resident_plugins is not None and (isinstance(max_resident_plugins, bool) or not (
                isinstance(max_resident_plugins, int) and max_resident_plugins >= 1)):
            raise ValueError("max_resident_plugins must be a positive integer or None, "
                             f"got {max_resident_plugins!r}")
        #: How many plugins' compiled modules a worker keeps (None: all it ever ran). Past it,
        #: the worker unloads its least recently called plugins; the next call of one loads it
        #: again from the compiled cache, as on a worker that never had it.
        self.max_resident_plugins = max_resident_plugins
        #: Plugins per worker that keep an instance made ahead for their next call (docs/abi.md).
        self.prepared_instances = prepared_instances
        self.plugin_dirs = [Path(d) for d in plugin_dirs]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.timeout_grace = timeout_grace
        self.load_timeout = load_timeout
        self._pool = WorkerPool(
            PoolConfig(
                workers=count, spare_workers=spare_workers, max_queue=max_queue,
                max_calls_per_worker=max_calls_per_worker, max_worker_rss=max_worker_rss,
                max_restarts=max_restarts, restart_period=restart_period,
                supervisor_spin=float(supervisor_spin),
                resident_plugins=max_resident_plugins,
                worker_options={
                    "confine": confine, "require_all": require_confinement,
                    "data_limit": worker_memory_limit, "prepared_plugins": prepared_instances,
                    "spin": float(worker_spin),
                    # what workers may read besides Python itself: staged wasm and artifacts
                    "read_paths": [str(self.cache_dir / "wasm"), str(self.cache_dir / "compiled")],
                },
            ),
            warmup=self._warm_worker,
        )
        self._artifacts = ArtifactCache(self.cache_dir)
        self._stager = Stager(self.cache_dir, self._artifacts)
        #: Compiles modules missing from the cache; runs no guest code (cortex_runtime/compiler.py).
        self._compiler = Compiler(self._pool.config.worker_options,
                                  start_timeout=self._pool.config.start_timeout,
                                  idle_seconds=compiler_idle)
        self._quarantine = Quarantine(threshold=quarantine_after, window=quarantine_window,
                                      duration=quarantine_seconds)
        self._plugins: dict[str, PluginInfo] = {}
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        #: (plugin digest, capability) -> recent call time in the worker, seconds (moving
        #: average): only a call expected to be quick lets others queue behind it on a worker.
        self._pace: dict[tuple[str, str], float] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._open = False
        #: Plugins found in ``plugin_dirs`` that could not be loaded, with the reason.
        self.load_errors: list[tuple[Path, CortexError]] = []

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        # Workers may read these two folders and nothing else of the cache (Landlock takes paths
        # that exist when a worker starts).
        for sub in ("wasm", "compiled"):
            (self.cache_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            self._compiler.start(self._tg)
            await self._pool.start(self._tg)
            self._open = True
            for directory in self.plugin_dirs:
                await self._scan(directory)
        except BaseException as exc:
            await self._shutdown(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._shutdown(exc_type, exc, tb)

    async def _shutdown(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Stop the workers and the pool's background tasks. The caller's exception (if any)
        propagates unchanged: it is not handed to the task group, which would wrap it."""
        self._open = False
        with anyio.CancelScope(shield=True):
            await self._compiler.close()
        await self._pool.close()
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        return None

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeClosed("use the Runtime inside 'async with Runtime(...) as rt:'")

    # -- plugins ------------------------------------------------------------------------------

    @property
    def plugins(self) -> Mapping[str, PluginInfo]:
        """Loaded plugins by name."""
        return dict(self._plugins)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (spares included)."""
        return self._pool.pids

    @property
    def compiler_pid(self) -> int | None:
        """Process id of the compiler while it runs (it starts on a cache miss, exits when idle)."""
        return self._compiler.pid

    @property
    def confinement(self) -> list[dict[str, Any]]:
        """The OS confinement layers of the workers: name, active, detail."""
        return list(self._pool.layers)

    @property
    def busy_worker_pids(self) -> list[int]:
        """Process ids of the workers running a call right now."""
        return self._pool.busy_pids

    @property
    def stats(self) -> Mapping[str, int]:
        """Counters of the pool: workers started, killed, recycled, back-offs, overloads, plugins
        unloaded from workers past ``max_resident_plugins``."""
        return dict(self._pool.stats)

    async def _scan(self, directory: Path) -> None:
        children = await anyio.to_thread.run_sync(plugin_folders, directory)
        if children is None:
            log.info("plugin.dir_missing", directory=str(directory))
            return
        for child in children:
            try:
                await self.load(child)
            except CortexError as exc:
                self.load_errors.append((child, exc))
                log.warning("plugin.skipped", path=str(child), error=str(exc))

    async def load(self, path: str | os.PathLike[str]) -> PluginInfo:
        """Load a plugin folder, a ``plugin.json``, or a bare ``.wasm`` (with default limits).

        The manifest is checked against the module's exports and imports before this returns
        (``ManifestError`` otherwise). A module not yet in the compiled cache is compiled by the
        compiler process first; one already there is known from the facts cached with it, and a worker
        loads it in the background: should that fail after all, the plugin's first call raises
        ``WorkerCrashed`` with the reason."""
        self._check_open()
        staged = await self._stager.stage(Path(path), self._pool.engine)
        manifest = staged.manifest
        existing = self._plugins.get(manifest.name)
        if existing is not None and existing.manifest.root != manifest.root:
            raise ManifestError(
                f"a plugin named {manifest.name!r} is already loaded from {existing.manifest.root}",
                path=manifest.source, field="name",
            )
        info = await self._prepare(staged)
        self._plugins[manifest.name] = info
        self._quarantine.release(manifest.name)
        log.info("plugin.load", plugin=info.name, version=info.version,
                 capabilities=list(info.capabilities), sha256=info.sha256[:12],
                 cache=info.facts.get("cache"), load_ms=info.facts.get("load_ms"))
        return info

    async def inspect(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Exports, imports, memory and capabilities of a ``.wasm`` or plugin, without loading it."""
        self._check_open()
        staged = await self._stager.stage(Path(path), self._pool.engine)
        manifest, digest = staged.manifest, staged.digest
        if staged.uncompiled:
            staged = await self._compile(staged)
        facts = staged.facts if staged.facts is not None else await self._load_facts(staged)
        report = dict(facts)
        report.update(name=manifest.name, version=manifest.version, sha256=digest,
                      wasm=str(manifest.wasm_path))
        try:
            fit = check_facts(manifest, facts)
            report.update(valid=True, capabilities=list(fit.capabilities),
                          allocator=fit.allocator_export)
        except ManifestError as exc:
            report.update(valid=False, problem=str(exc))
        return report

    async def _load_facts(self, staged: Staged, *, prepare: bool = False) -> dict[str, Any]:
        """Load the module into some worker and return its facts. With ``prepare``, the worker
        also makes the first call's instance right after. A serving worker compiles only what
        the compiler could not get into the cache (code too large to send, a full disk)."""
        reply: dict[str, Any] | None = None
        manifest = staged.manifest
        async with self._pool.borrow() as worker:
            artifact: Path | Literal[False] | None = (
                staged.artifact if worker.engine == staged.engine else False)
            reply = await self._load_into(worker, staged.path, staged.digest, artifact,
                                          prepare=manifest if prepare else None,
                                          keep_facts=staged.facts is None, want_facts=True,
                                          memory_init=_memory_init(staged.facts))
        assert reply is not None
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ManifestError(str(error.get("message")), path=manifest.source,
                                field=str(error.get("field") or "entryPoint"))
        facts = reply.get("facts")
        if not isinstance(facts, dict):
            raise ProtocolError("worker sent a load reply without facts")
        return facts

    async def _load_into(self, worker: Worker, staged: Path, digest: str,
                         artifact: Path | Literal[False] | None = False, *,
                         prepare: Manifest | None = None, keep_facts: bool = False,
                         want_facts: bool = False, memory_init: str | None = None
                         ) -> dict[str, Any]:
        """Load a module into ``worker``; a load slower than ``load_timeout`` dooms the worker.
        ``artifact``: the compiled artifact already looked up (a path or None), or False.
        ``prepare``: the plugin's manifest, to have the worker make an instance for its next
        call right after its reply (one round trip instead of two). ``keep_facts``: store the
        module's facts beside its artifact; ``want_facts``: the reply must hold them (otherwise
        the worker leaves them out unless ``keep_facts``). ``memory_init``: the engine the artifact was
        compiled for, from the module's facts (the worker tries it first)."""
        sent, artifact = await self._send_load(worker, staged, digest, artifact, prepare=prepare,
                                               memory_init=memory_init,
                                               facts=want_facts or keep_facts)
        return await self._load_reply(worker, sent, digest, artifact, prepare=prepare,
                                      keep_facts=keep_facts)

    async def _send_load(self, worker: Worker, staged: Path, digest: str,
                         known: Path | Literal[False] | None, *, prepare: Manifest | None,
                         memory_init: str | None, facts: bool) -> tuple[InFlight, Path | None]:
        """The first half of :meth:`_load_into`: the load request, in ``worker``'s pipe, and
        the artifact it names. Without ``facts`` the reply leaves out the module's facts (a
        plugin the supervisor knows: ~1 KB less to encode and decode on a reload)."""
        found = self._artifacts.verified(digest, worker.engine) if known is False else known
        artifact = found if found is not False else await anyio.to_thread.run_sync(
            self._artifacts.lookup, digest, worker.engine)
        request: dict[str, Any] = {"op": "load", "path": str(staged), "digest": digest,
                                   "artifact": str(artifact) if artifact else None,
                                   "memory_init": memory_init}
        if not facts:
            request["facts"] = False
        if prepare is not None:
            request["prepare"] = _instance_limits(prepare)
        return await worker.submit(request, backstop=self.load_timeout), artifact

    async def _load_reply(self, worker: Worker, sent: InFlight, digest: str,
                          artifact: Path | None, *, prepare: Manifest | None,
                          keep_facts: bool) -> dict[str, Any]:
        """The second half of :meth:`_load_into`: wait for the worker's reply and record it."""
        try:
            reply = await worker.reply_to(sent)
        except WorkerTimedOut:
            reply = {"ok": False, "error": {
                "message": f"the module took longer than {self.load_timeout:g}s to compile",
                "field": "entryPoint"}}
        if not reply.get("ok"):
            worker.load_errors[digest] = str((reply.get("error") or {}).get("message"))
            return reply
        worker.loaded[digest] = None
        worker.load_errors.pop(digest, None)
        if prepare is not None:
            worker.note_prepared(digest, reply.get("prepared") is True)
        bound = self.max_resident_plugins
        if bound is not None and len(worker.loaded) > bound:
            await self._unload_least_recent(worker, bound)
        reply.pop("artifact_b64", None)  # never from a serving worker (see compiler.py)
        facts = reply.get("facts")
        if keep_facts and artifact and isinstance(facts, dict):
            # A cached artifact without facts (an older cache): keep the worker's description.
            await anyio.to_thread.run_sync(self._artifacts.store_facts, digest, worker.engine, facts)
        return reply

    async def _prepare(self, staged: Staged) -> PluginInfo:
        manifest, digest = staged.manifest, staged.digest
        # A module missing from the cache is compiled by the compiler, which stores it. A module
        # in the verified cache is known without asking a worker: its facts are kept with its
        # artifact. Its load is then sent to a worker without waiting for the reply.
        compiled = staged.uncompiled
        if compiled:
            staged = await self._compile(staged)
        known = staged.facts is not None and staged.artifact is not None and not compiled
        if staged.facts is not None and known:
            facts = {"cache": "hit", "load_ms": None, **staged.facts}
        else:
            # Just compiled (or an older cache without facts): a worker loads it before this
            # returns, as the first load of a plugin always did.
            facts = await self._load_facts(staged, prepare=True)
            if compiled:
                facts = {**facts, "cache": "miss"}
        fit = check_facts(manifest, facts)
        info = PluginInfo(
            name=manifest.name, version=manifest.version, description=manifest.description,
            capabilities=fit.capabilities, sha256=digest, wasm_path=manifest.wasm_path,
            manifest=manifest, allocator_export=fit.allocator_export, facts=facts,
        )
        if known:
            await self._load_known(staged, info)
        # The plugin's first call should not pay for instantiation (the worker that loaded it has
        # made an instance), nor its first call on a spare for a load: in the background, load it
        # into the spares.
        assert self._tg is not None
        for spare in self._pool.spares:
            self._tg.start_soon(self._warm_spare, spare, info)
        return info

    async def _compile(self, staged: Staged) -> Staged:
        """Compile a module missing from the cache in the compiler and store what it sends back;
        ``staged`` again, with the module's facts and (unless it could not be stored) artifact.
        A module that does not compile is a ``ManifestError``, as it would be from any worker."""
        manifest, digest, engine = staged.manifest, staged.digest, staged.engine
        try:
            reply = await self._compiler.compile(staged.path, digest, backstop=self.load_timeout)
        except WorkerTimedOut:
            raise ManifestError(f"the module took longer than {self.load_timeout:g}s to compile",
                                path=manifest.source, field="entryPoint") from None
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ManifestError(str(error.get("message")), path=manifest.source,
                                field=str(error.get("field") or "entryPoint"))
        facts, encoded = reply.get("facts"), reply.get("artifact_b64")
        if not isinstance(facts, dict):
            raise ProtocolError("the compiler sent a reply without facts")
        artifact = None
        if isinstance(encoded, str):
            artifact = await anyio.to_thread.run_sync(self._store_compiled, digest, engine,
                                                      encoded, facts)
        return dataclasses.replace(staged, artifact=artifact, facts=facts)

    def _store_compiled(self, digest: str, engine: str, encoded: str,
                        facts: dict[str, Any]) -> Path | None:
        """Store the compiler's artifact (base64) and the module's facts; the artifact's path."""
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            return None
        path = self._artifacts.store(digest, engine, blob)
        if path is not None:
            self._artifacts.store_facts(digest, engine, facts)
        return path

    async def _load_known(self, staged: Staged, info: PluginInfo) -> None:
        """Send a known plugin's load to a worker and return once the request is in its pipe: the
        plugin's first call goes to that worker and runs right after the load (pipelined)
        instead of waiting a round trip for its reply. A load that fails there after all (the
        artifact vanished, the worker died) fails that call, with the reason."""
        digest = info.sha256
        try:
            worker = await self._pool.acquire()
        except CortexError:  # closed or overloaded: the first call loads it itself
            return
        if digest in worker.loaded or digest in worker.loading:
            self._pool.release(worker)
            return
        known: Path | Literal[False] | None = (
            staged.artifact if worker.engine == staged.engine else False)
        try:
            await self._send_load_ahead(worker, info, staged.path, known, prepare=info.manifest,
                                        cached_facts=(staged.facts, staged.engine), lent=True)
        except CortexError as exc:  # the first call reports it
            worker.load_errors[digest] = str(exc)
            self._pool.release(worker)
        except BaseException:
            self._pool.release(worker)
            raise

    async def _send_load_ahead(
        self, worker: Worker, info: PluginInfo, staged: Path, known: Path | Literal[False] | None,
        *, prepare: Manifest | None = None,
        cached_facts: tuple[Mapping[str, Any] | None, str] | None = None, lent: bool = False,
    ) -> anyio.Event:
        """Put ``info``'s load in ``worker``'s pipe (``load_sent``) and return without its reply:
        a task handles that, then sets the event returned (and, if ``lent``, releases the worker
        to the pool). ``cached_facts``: the module's facts as cached for an engine, to drop if
        the worker describes the module otherwise."""
        digest = info.sha256
        done = worker.loading[digest] = anyio.Event()
        try:
            sent, artifact = await self._send_load(worker, staged, digest, known, prepare=prepare,
                                                   memory_init=_memory_init(info.facts),
                                                   facts=cached_facts is not None)
        except BaseException:
            self._load_over(worker, digest, done)
            raise
        worker.load_sent.add(digest)
        assert self._tg is not None
        self._tg.start_soon(self._finish_load_ahead, worker, sent, artifact, info, prepare,
                            cached_facts, lent, done)
        return done

    async def _finish_load_ahead(
        self, worker: Worker, sent: InFlight, artifact: Path | None, info: PluginInfo,
        prepare: Manifest | None, cached_facts: tuple[Mapping[str, Any] | None, str] | None,
        lent: bool, done: anyio.Event,
    ) -> None:
        digest = info.sha256
        try:
            reply = await self._load_reply(worker, sent, digest, artifact, prepare=prepare,
                                           keep_facts=False)
            if cached_facts is not None and reply.get("ok") and _describes_another_module(
                    reply.get("facts"), cached_facts[0]):
                log.warning("plugin.cached_facts_differ", plugin=info.name, sha256=digest[:12])
                self._artifacts.forget_facts(digest, cached_facts[1])
        except CortexError as exc:
            worker.load_errors[digest] = str(exc)
        finally:
            self._load_over(worker, digest, done)
            if lent:
                self._pool.release(worker)

    async def _unload_least_recent(self, worker: Worker, bound: int) -> None:
        """Unload ``worker``'s least recently called plugins down to ``bound``, skipping those a
        caller holds the worker for (its call may not be in the pipe yet). They leave the
        worker's ``loaded`` before the request is written, in one frame: a caller that wants
        one of them again sends its load after this unload, and the worker runs them in order."""
        excess = len(worker.loaded) - bound
        victims: list[str] = []
        for digest in worker.loaded:  # least recently called first
            if len(victims) == excess:
                break
            if digest not in worker.holding:
                victims.append(digest)
        if not victims:
            return
        for digest in victims:
            del worker.loaded[digest]
            worker.prepared.pop(digest, None)
        self._pool.stats["unloaded"] += len(victims)
        with contextlib.suppress(CortexError):  # a dead worker has forgotten them anyway
            await worker.submit({"op": "unload", "digests": victims})

    @staticmethod
    def _load_over(worker: Worker, digest: str, done: anyio.Event) -> None:
        """A load sent ahead is over (answered or failed): calls waiting on it may go on."""
        worker.load_sent.discard(digest)
        del worker.loading[digest]
        done.set()

    @staticmethod
    def _prepare_request(info: PluginInfo) -> dict[str, Any]:
        return {"op": "prepare", "digest": info.sha256, **_instance_limits(info.manifest)}

    async def _prepare_instance(self, worker: Worker, info: PluginInfo) -> None:
        """Have ``worker`` make ``info``'s next instance now. The request occupies the worker's
        line, so the pool does not take the worker for idle meanwhile; a failure only costs the
        head start (the call then instantiates, and reports any problem itself)."""
        with contextlib.suppress(CortexError):
            reply = await worker.request(self._prepare_request(info),
                                         backstop=info.manifest.limits.timeout_ms / 1000 + 5)
            worker.note_prepared(info.sha256, reply.get("prepared") is True)

    async def _warm_spare(self, worker: Worker, info: PluginInfo) -> None:
        # Not at once: on a small machine the spare loading the module would compete with the
        # plugin's first call for the CPU (first call after load 0.9 -> 0.6 ms when it waits).
        await anyio.sleep(self._pool.config.spare_settle)
        with contextlib.suppress(CortexError):
            if info.sha256 not in worker.loaded:
                await self._ensure_loaded(worker, info)

    async def _warm_worker(self, worker: Worker) -> None:
        """Load the most recently used plugins into a fresh worker before it takes calls, and have
        it prepare instances of the most recent ones (a spare then serves its first call warm)."""
        recent = [info for name in list(self._recent)[-WARM_PLUGINS:]
                  if (info := self._plugins.get(name)) is not None]
        hot = {info.sha256 for info in recent[len(recent) - self.prepared_instances:]
               } if self.prepared_instances else set()
        for info in recent:
            if info.sha256 not in worker.loaded:
                await self._load_into(worker, self._staged_path(info), info.sha256,
                                      prepare=info.manifest if info.sha256 in hot else None,
                                      memory_init=_memory_init(info.facts))
            elif info.sha256 in hot:
                await self._prepare_instance(worker, info)

    def _staged_path(self, info: PluginInfo) -> Path:
        return self._stager.path_for(info.sha256)

    # -- calls --------------------------------------------------------------------------------

    async def call(
        self,
        plugin: str,
        capability: str,
        input: Any = None,
        *,
        timeout: float | None = None,
        fuel: int | None = None,
    ) -> Any:
        """Call ``capability`` of ``plugin`` with ``input`` (any JSON-serialisable value).

        ``timeout`` (seconds) and ``fuel`` override the manifest's limits for this call only.
        Returns the decoded JSON result; raises a :class:`CortexError` subclass otherwise.
        """
        info = self._capability(plugin, capability)
        return await self._call(info, capability, _encode_input(input, info), timeout, fuel)

    async def call_json(
        self,
        plugin: str,
        capability: str,
        input_json: str | bytes,
        *,
        timeout: float | None = None,
        fuel: int | None = None,
    ) -> Any:
        """Like :meth:`call`, with the input given as JSON text that reaches the guest byte for byte
        (escapes, spacing and key order preserved). It must be one valid JSON document."""
        info = self._capability(plugin, capability)
        payload = _json_text_bytes(input_json, plugin)
        _check_input_size(payload, info)
        _check_json_text(payload, plugin, utf8_known=isinstance(input_json, str))
        return await self._call(info, capability, payload, timeout, fuel)

    def _capability(self, plugin: str, capability: str) -> PluginInfo:
        self._check_open()
        info = self._plugins.get(plugin)
        if info is None:
            known = ", ".join(sorted(self._plugins)) or "none"
            raise PluginNotFound(f"no plugin named {plugin!r} is loaded (loaded: {known})",
                                 plugin=plugin)
        if capability not in info.capabilities:
            raise CapabilityNotFound(
                f"plugin {plugin!r} has no capability {capability!r} "
                f"(it has: {', '.join(info.capabilities)})", plugin=plugin,
            )
        return info

    async def _call(self, info: PluginInfo, capability: str, payload: bytes,
                    timeout: float | None, fuel: int | None) -> Any:
        plugin = info.name
        self._quarantine.check(plugin)
        request: dict[str, Any] | EncodedRequest
        if timeout is None and fuel is None:  # the manifest's limits: encoded once
            request, timeout_s = info.default_calls.get(capability) or _default_call(info, capability)
        else:
            request, timeout_s = _call_request(info, capability, timeout, fuel)
        self._recent[plugin] = None
        self._recent.move_to_end(plugin)
        if len(self._recent) > 4 * WARM_PLUGINS:
            self._recent.popitem(last=False)

        started = time.perf_counter()
        for attempt in range(SEND_ATTEMPTS):
            try:
                reply, worker_pid, timed_out = await self._call_once(info, capability, request,
                                                                     payload, timeout_s)
            except WorkerGone:
                # The worker died before it received the call (e.g. killed while idle): nothing
                # ran, so another worker may take it.
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                continue
            except WorkerCrashed:
                if not self._open:
                    raise RuntimeClosed(f"the runtime closed during {plugin}.{capability}") from None
                self._note_failure(info.name, "crash")
                self._log_call(info, capability, None, started, None, "worker_crashed")
                raise
            break
        if timed_out:
            self._note_failure(info.name, "timeout")
            self._log_call(info, capability, worker_pid, started, None, "call_timeout")
            raise CallTimeout(
                f"{plugin}.{capability} did not finish within {timeout_s:g}s; its worker was killed",
                plugin=plugin,
            )
        self._emit_plugin_logs(info, reply)
        if reply.get("ok"):
            self._log_call(info, capability, worker_pid, started, reply.get("fuel_used"), "ok")
            return reply["result"]
        error = reply["error"]
        kind = error.get("kind")
        if kind in QUARANTINE_KINDS:
            self._note_failure(info.name, kind)
        exc = _error_from_reply(plugin, capability, error)
        self._log_call(info, capability, worker_pid, started, reply.get("fuel_used"), exc.kind)
        raise exc

    async def _call_once(
        self, info: PluginInfo, capability: str, request: dict[str, Any] | EncodedRequest,
        payload: bytes, timeout_s: float
    ) -> tuple[dict[str, Any], int, bool]:
        digest = info.sha256
        pace_key = (digest, capability)
        pace = self._pace.get(pace_key)
        worker = await self._pool.acquire(prefer=digest)
        holding = worker.holding
        holding[digest] = holding.get(digest, 0) + 1
        try:
            try:
                worker.loaded.move_to_end(digest)  # now its most recently called plugin
                pipelined = None
            except KeyError:
                pipelined = await self._ensure_loaded(worker, info, pipeline=True)
            try:
                reply = await worker.request(
                    request, payload=payload, backstop=timeout_s + self.timeout_grace,
                    queueable=pace is not None and pace <= self._pool.config.pipeline_max_head_age)
            except WorkerTimedOut:
                self._pace[pace_key] = timeout_s
                return {}, worker.pid, True
            _check_reply_shape(worker, reply)
            self._note_pace(pace_key, reply, timeout_s)
            # After a success the worker may prepare the plugin's next instance while idle.
            worker.note_prepared(info.sha256, reply["ok"] and reply.get("prepared") is True)
            if not reply["ok"]:
                kind = reply["error"].get("kind")
                if kind == RETIRED:  # queued behind a fault: it did not run
                    raise WorkerGone(f"worker {worker.pid} retired before running the call")
                if kind in FATAL_KINDS:
                    worker.doomed = True
                if kind == "not_loaded" and pipelined is not None:
                    await pipelined.wait()  # the load's reply came first; let it be handled
                    if info.sha256 not in worker.loaded:
                        raise WorkerCrashed(
                            f"a worker could not load plugin {info.name!r}: "
                            f"{worker.load_errors.get(info.sha256, 'the load failed')}",
                            plugin=info.name)
                if kind == "not_loaded":
                    worker.loaded.pop(info.sha256, None)
                    worker.doomed = True
                    raise ProtocolError(f"worker {worker.pid} lost plugin {info.name!r}")
            if pipelined is not None:
                # Its reply came ahead of the call's; once handled, the worker's plugins are
                # back within the bound (the unload is in the pipe) before the caller goes on.
                await pipelined.wait()
            return reply, worker.pid, False
        finally:
            held = holding[digest]
            if held == 1:
                del holding[digest]
            else:
                holding[digest] = held - 1
            self._pool.release(worker)

    def _note_pace(self, key: tuple[str, str], reply: dict[str, Any], timeout_s: float) -> None:
        """Fold the time a capability's call ran in its worker into its moving average. A call
        that retired its worker (out of fuel or time, a trap, the memory cap) counts as taking its
        whole timeout: whatever was queued behind it would have to be sent again elsewhere."""
        if reply.get("ok"):
            seconds = float(reply.get("elapsed_us") or 0) / 1e6
        elif (reply.get("error") or {}).get("kind") in FATAL_KINDS:
            seconds = timeout_s
        else:
            return
        pace = self._pace.get(key)
        self._pace[key] = seconds if pace is None else pace + (seconds - pace) * PACE_WEIGHT

    async def _ensure_loaded(self, worker: Worker, info: PluginInfo, *,
                             pipeline: bool = False) -> anyio.Event | None:
        """Load ``info`` into ``worker`` unless it is there; callers sharing the worker wait for
        one load instead of each sending their own. With ``pipeline``, for a caller that sends a
        call next: a load already in the pipe, or one sent now because the module's compiled
        artifact is verified (the worker will almost surely load it), is not waited for; the
        call goes right behind it, and this returns the load's event (set once its reply is
        handled: a ``not_loaded`` reply to the call then says why). None once it is loaded."""
        digest = info.sha256
        loading = worker.loading.get(digest)
        if loading is not None:
            if digest in worker.load_sent:
                return loading  # the load is in the pipe ahead of the call: it runs first
            await loading.wait()
        elif pipeline and isinstance(artifact := self._artifacts.verified(digest, worker.engine),
                                     Path):
            return await self._send_load_ahead(worker, info, self._staged_path(info), artifact)
        else:
            loading = worker.loading[digest] = anyio.Event()
            try:
                loaded = await self._load_into(worker, self._staged_path(info), digest,
                                               prepare=info.manifest,
                                               memory_init=_memory_init(info.facts))
            finally:
                del worker.loading[digest]
                loading.set()
            if not loaded.get("ok"):
                error = loaded.get("error") or {}
                if error.get("kind") == RETIRED:  # queued behind a fault: it did not run
                    raise WorkerGone(f"worker {worker.pid} retired before loading {info.name!r}")
                raise WorkerCrashed(
                    f"a worker could not load plugin {info.name!r}: {error.get('message')}",
                    plugin=info.name,
                )
        if digest not in worker.loaded:
            raise WorkerGone(f"worker {worker.pid} could not load plugin {info.name!r}")
        return None

    def _note_failure(self, plugin: str, kind: str) -> None:
        if self._quarantine.record_failure(plugin):
            log.warning("plugin.quarantined", plugin=plugin, last_failure=kind,
                        seconds=self._quarantine.duration)

    def _emit_plugin_logs(self, info: PluginInfo, reply: Mapping[str, Any]) -> None:
        logs = reply.get("logs")
        if not isinstance(logs, list):
            return
        for entry in logs:
            if not (isinstance(entry, list) and len(entry) == 3):
                continue
            level, stream, message = entry
            emit = getattr(log, str(level), None) if level in ("debug", "info", "warning", "error") else None
            (emit or log.info)("plugin.log", plugin=info.name, stream=stream, message=message)
        dropped = reply.get("dropped_logs")
        if dropped:
            log.warning("plugin.log_dropped", plugin=info.name, dropped=dropped)

    @staticmethod
    def _log_call(info: PluginInfo, capability: str, worker_pid: int | None, started: float,
                  fuel_used: Any, outcome: str) -> None:
        if debug_dropped():
            return
        log.debug("call", plugin=info.name, capability=capability, worker_pid=worker_pid,
                  duration_ms=round((time.perf_counter() - started) * 1000, 3),
                  fuel_used=fuel_used, outcome=outcome)


def plugin_folders(directory: Path) -> list[Path] | None:
    """The sub-folders of ``directory`` that hold a ``plugin.json`` (None if it is no folder)."""
    if not directory.is_dir():
        return None
    return [child for child in sorted(directory.iterdir()) if (child / MANIFEST_NAME).is_file()]


def _call_request(info: PluginInfo, capability: str, timeout: float | None,
                  fuel: int | None) -> tuple[dict[str, Any], float]:
    """The call request for ``capability`` with these limits (None: the manifest's), and the
    call's timeout in seconds."""
    if timeout is not None and (isinstance(timeout, bool) or not (
            isinstance(timeout, (int, float)) and 0 < timeout < float("inf"))):
        raise InvalidInput(f"timeout must be a positive number of seconds, got {timeout!r}")
    if fuel is not None and (isinstance(fuel, bool) or not (isinstance(fuel, int) and 0 < fuel < 2**63)):
        raise InvalidInput(f"fuel must be a positive integer, got {fuel!r}")
    limits = info.manifest.limits_for(capability)
    timeout_s = timeout if timeout is not None else limits.timeout_ms / 1000
    manifest = info.manifest
    request = {
        "op": "call", "digest": info.sha256, "export": capability,
        "fuel": fuel if fuel is not None else limits.fuel,
        "timeout_ms": timeout_s * 1000,
        "min_pages": manifest.memory_pages, "max_pages": manifest.max_memory_pages,
        "allocator": info.allocator_export, "max_output": manifest.max_output_bytes,
        "max_log": manifest.max_log_bytes,
    }
    return request, timeout_s


def _default_call(info: PluginInfo, capability: str) -> tuple[EncodedRequest, float]:
    """The call request for ``capability`` with the manifest's limits, encoded once and kept
    with the plugin: building and encoding the same dict was ~2 µs of every call."""
    request, timeout_s = _call_request(info, capability, None, None)
    encoded = info.default_calls[capability] = (EncodedRequest(request), timeout_s)
    return encoded


def _encode_input(value: Any, info: PluginInfo) -> bytes:
    try:
        payload = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"input is not JSON-serialisable: {exc}", plugin=info.name) from None
    _check_input_size(payload, info)
    return payload


#: Validates JSON text without building Python objects (10x faster than a full parse on a
#: document of many small values, and the guest parses it anyway).
_JSON_SYNTAX = msgspec.json.Decoder(msgspec.Raw)


def _json_text_bytes(input_json: str | bytes, plugin: str) -> bytes:
    """``input_json`` as UTF-8 bytes (a ``str`` with a lone surrogate has none: ``InvalidInput``)."""
    if not isinstance(input_json, str):
        return bytes(input_json)
    try:
        return input_json.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"input is not valid JSON: a lone surrogate at character {exc.start} "
                           "cannot be UTF-8", plugin=plugin) from None


def _check_json_text(payload: bytes, plugin: str, *, utf8_known: bool = False) -> None:
    """One JSON document (RFC 8259) in valid UTF-8, or ``InvalidInput``. ``utf8_known``: the
    bytes were encoded from a ``str`` here, so they are valid UTF-8 (no second look)."""
    if not utf8_known:
        bad = invalid_utf8_at(payload)
        if bad is not None:
            raise InvalidInput(f"input is not valid JSON: not UTF-8 at byte {bad}", plugin=plugin)
    try:
        _JSON_SYNTAX.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"input is not valid JSON: {exc}", plugin=plugin) from None


def _memory_init(facts: Mapping[str, Any] | None) -> str | None:
    """The engine a module's artifact was compiled for, as its facts say (see
    ``sandbox.engine.MemoryInit``), or None if they do not."""
    value = facts.get("memory_init") if facts is not None else None
    return value if isinstance(value, str) else None


def _describes_another_module(facts: Any, cached: Mapping[str, Any] | None) -> bool:
    """Whether a worker's facts contradict those kept in the cache for the same module."""
    if not isinstance(facts, dict) or cached is None:
        return False
    return any(facts.get(key) != cached.get(key) for key in ("exports", "imports", "capabilities"))


def _instance_limits(manifest: Manifest) -> dict[str, Any]:
    """What a prepared instance is made with: the manifest's default limits for a call."""
    return {"fuel": manifest.limits.fuel, "timeout_ms": manifest.limits.timeout_ms,
            "min_pages": manifest.memory_pages, "max_pages": manifest.max_memory_pages,
            "max_log": manifest.max_log_bytes}


def _check_input_size(payload: bytes, info: PluginInfo) -> None:
    if len(payload) > info.manifest.max_input_bytes:
        raise InvalidInput(
            f"input of {len(payload)} bytes exceeds the plugin's limit of "
            f"{info.manifest.max_input_bytes} bytes (limits.maxInputBytes)", plugin=info.name,
        )


def _check_reply_shape(worker: Worker, reply: Mapping[str, Any]) -> None:
    """A reply the supervisor cannot interpret is a protocol violation (the worker is doomed)."""
    ok = reply.get("ok")
    problem = None
    if ok is True and "result" not in reply:
        problem = "a success reply without a result"
    elif ok is False and not (isinstance(reply.get("error"), dict)
                              and isinstance(reply["error"].get("kind"), str)):
        problem = "an error reply without an error kind"
    elif ok not in (True, False):
        problem = "a reply without an ok flag"
    if problem:
        worker.doomed = True
        raise ProtocolError(f"worker {worker.pid} sent {problem}")


def _error_from_reply(plugin: str, capability: str, error: Mapping[str, Any]) -> CortexError:
    kind = error.get("kind")
    message = str(error.get("message", ""))
    where = f"{plugin}.{capability}"
    if kind == "trap":
        return PluginTrap(f"{where} trapped: {message}", trap_code=str(error.get("trap_code")),
                          backtrace=str(error.get("backtrace") or ""), plugin=plugin)
    if kind == "fuel":
        return FuelExhausted(f"{where} ran out of fuel", plugin=plugin)
    if kind == "timeout":
        return CallTimeout(f"{where} passed its deadline", plugin=plugin)
    if kind == "memory":
        return MemoryLimitExceeded(f"{where}: {message}", plugin=plugin)
    if kind == "plugin_error":
        return PluginError(message, plugin=plugin)
    if kind == "invalid_output":
        return InvalidOutput(f"{where} returned an invalid result: {message}", plugin=plugin)
    if kind == "no_capability":
        return CapabilityNotFound(f"{where}: {message}", plugin=plugin)
    return ProtocolError(f"worker reported an unknown error kind {kind!r}: {message}")

