"""The build engine: stages of a parsed Dockerfile -> an image in the store.

Each stage is a chain of steps over an image state (the OCI config document and its layers).
Every step's result is looked up in the step cache first (`pallet.build.cache`) under a key
made from the parent's key and what decides the step; metadata steps (ENV, LABEL, CMD, ...)
only change the config and get an `empty_layer` history entry; RUN, COPY, ADD and WORKDIR run
on a workspace snapshot and add a layer when they changed files. The stages the target needs
run in dependency order, two at once when independent. The result is registered in the store
and tagged with each name.
"""

from __future__ import annotations

import copy as _copy
import json
import os
import platform as _platform
import stat
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from pallet.build import instructions as I
from pallet.build.cache import StepCache, step_key
from pallet.build.context import Context, HashIndex, SourceNotFound
from pallet.build.dockerfile import DockerfileError
from pallet.build.graph import plan
from pallet.build.progress import Progress
from pallet.build.shell import Lex, ShellError
from pallet.errors import NotFound, PalletError

__all__ = ["BuildError", "BuildOptions", "Builder"]

PROXY_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
DEFAULT_SHELL = ["/bin/sh", "-c"]


class BuildError(PalletError):
    """A failed build: one line (exit 1, as docker build)."""

    exit_code = 1


@dataclass
class BuildOptions:
    context: str
    dockerfile: bytes
    dockerfile_name: str = "Dockerfile"
    dockerfile_path: str | None = None
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    secrets: dict[str, str] = field(default_factory=dict)   # id -> file on the host
    source_date_epoch: int | None = None   # SOURCE_DATE_EPOCH: history, created and layer mtimes
    extra_hosts: list[str] = field(default_factory=list)   # --add-host NAME:IP, in RUN's /etc/hosts
    build_contexts: dict[str, str] = field(default_factory=dict)   # --build-context NAME=DIR|docker-image://REF
    output: tuple[str, str] | None = None   # -o: ("local", DIR) or ("tar", FILE|-); None: the image
    cache_from: list[str] = field(default_factory=list)   # type=local,src=DIR directories
    cache_to: str | None = None   # type=local,dest=DIR
    cache_from_registry: list[str] = field(default_factory=list)   # type=registry,ref=REF
    cache_to_registry: str | None = None   # type=registry,ref=REF
    cache_mode: str = "max"   # --cache-to mode: min (the final stage's steps) or max (every step)
    squash: bool = False   # the layers this build added, merged into one
    pull: str = "missing"   # base images: missing (pulled when not in the store), always, never
    format: str = "oci"   # oci: OCI manifest and config; docker: docker schema 2 media types (same config)


def _arch() -> str:
    m = _platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def builtin_args() -> dict[str, str]:
    arch = _arch()
    plat = f"linux/{arch}"
    return {"TARGETPLATFORM": plat, "TARGETOS": "linux", "TARGETARCH": arch, "TARGETVARIANT": "",
            "BUILDPLATFORM": plat, "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": ""}


def _env_dict(env: list[str]) -> dict[str, str]:
    out = {}
    for e in env:
        k, _, v = e.partition("=")
        out[k] = v
    return out


def _set_env(cfg: dict, key: str, value: str) -> None:
    env = [e for e in (cfg.get("Env") or []) if e.partition("=")[0] != key]
    env.append(f"{key}={value}")
    cfg["Env"] = env


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


class _Stage:
    """The state of one stage while it is built."""

    def __init__(self, doc: dict, layers: list[dict], key: str) -> None:
        self.doc = doc
        self.layers = layers
        self.key = key
        self.args: dict[str, str] = {}     # build args in scope, in declaration order
        self.cmd_set = False
        self.base_layers = len(layers)     # the layers of the base image (--squash keeps them)

    @property
    def cfg(self) -> dict:
        return self.doc.setdefault("config", {})

    def env(self) -> dict[str, str]:
        e = dict(self.args)
        e.update(_env_dict(self.cfg.get("Env") or []))
        return e

    def shell(self) -> list[str]:
        return list(self.cfg.get("Shell") or DEFAULT_SHELL)

    def entry(self) -> dict:
        return {"doc": self.doc, "layers": self.layers}


class Builder:
    def __init__(self, store, *, run_dir: str, storage_driver: str | None = None,
                 progress: Progress | None = None, puller=None, registry_client=None) -> None:
        self.root = str(store.root)
        self.main_store = store
        self.run_dir = str(run_dir)
        self.driver = storage_driver
        self.progress = progress or Progress()
        self._local = threading.local()
        self._local.store = store
        self.cache = StepCache(store.root, store.blobs)
        self.index = HashIndex(store.root / "buildcache" / "context-index.json")
        self.cancelled = threading.Event()
        self.puller = puller            # puller(store, ref) -> image id: FROM an image not in the store
        self.registry_client = registry_client   # () -> a registry Client (context manager): registry caches
        self._pull_lock = threading.Lock()
        self._pulled: dict[str, str] = {}
        self.running: dict = {}      # RUN steps in progress: cid -> runtime (to kill them on cancel)

    # ---- per-thread store (one SQLite connection per thread) -----------------------------------
    @property
    def store(self):
        s = getattr(self._local, "store", None)
        if s is None:
            from pallet.store import Store

            s = self._local.store = Store(self.root)
        return s

    # ---- entry point ----------------------------------------------------------------------------
    def build(self, opts: BuildOptions) -> str:
        self._tmpfiles: list[str] = []
        self._tmpdirs: list[str] = []
        self._client = None
        try:
            return self._build(opts)
        finally:
            import shutil

            if self._client is not None:
                self._client.close()

            for d in self._tmpdirs:
                shutil.rmtree(d, ignore_errors=True)
            for p in self._tmpfiles:
                try:
                    os.unlink(p)
                except OSError:
                    pass

    def _build(self, opts: BuildOptions) -> str:
        self.opts = opts
        self.used_keys: list[tuple[int, str]] = []   # (stage index, key) of every step this build used
        remotes = self._import_registry_caches(opts.cache_from_registry)
        if opts.cache_from or remotes:
            self.cache = StepCache(self.main_store.root, self.main_store.blobs, sources=opts.cache_from,
                                   record_layer=lambda *a: self.store.record_layer(*a), remotes=remotes)
        epoch = opts.source_date_epoch
        if epoch is None and "SOURCE_DATE_EPOCH" in opts.build_args:
            try:
                epoch = int(opts.build_args["SOURCE_DATE_EPOCH"])
            except ValueError:
                raise BuildError(f"invalid SOURCE_DATE_EPOCH: {opts.build_args['SOURCE_DATE_EPOCH']!r}") from None
        self.epoch = epoch
        try:
            self.df = I.load(opts.dockerfile, filename=opts.dockerfile_name)
        except DockerfileError as e:
            raise BuildError(str(e)) from None
        self.lex = Lex(self.df.escape_token)
        self.builtin = builtin_args()
        try:
            self.meta = self.df.meta_args(opts.build_args, self.builtin)
            graph, order = plan(self.df, self.meta, opts.target)
            for i in order:   # an undefined ARG in FROM fails before anything runs
                self.df.resolve_from(self.df.stages[i], self.meta)
        except DockerfileError as e:
            raise BuildError(str(e)) from None
        self.graph = graph
        from pallet.build.run import release_stale_leases, remove_stale_runs
        from pallet.build.workspace import remove_stale

        # what a killed build left: its RUN containers (what runs in them, their cgroups), then its
        # workspaces and its RUNs' network leases
        remove_stale_runs(os.path.join(self.run_dir, "build"))
        remove_stale(self.store, self.driver)
        release_stale_leases(self.store, os.path.join(self.run_dir, "build"))
        self.ctx = Context(opts.context, dockerfile=opts.dockerfile_path, index=self.index)
        self.results: dict[int, Future] = {}
        multi = len(self.df.stages) > 1
        self.multi = multi
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="build") as pool:
            for i in order:
                self.results[i] = pool.submit(self._stage_worker, i)
            errors = []
            try:
                for i in order:
                    try:
                        self.results[i].result()
                    except Exception as e:  # noqa: BLE001
                        errors.append(e)
            except BaseException:
                self.cancel()   # Ctrl-C: kill what runs; each step removes its own workspace
                raise
            if errors:
                for e in errors:
                    if isinstance(e, PalletError) and not isinstance(e, _Skipped):
                        raise e
                raise errors[0]
        final = self.results[order[-1]].result()
        self.index.save()
        declared = {d.key for a in self.df.global_args for d in a.args}
        declared |= {d.key for i in order for c in self.df.stages[i].commands if isinstance(c, I.Arg) for d in c.args}
        unused = sorted(k for k in opts.build_args if k not in declared and k not in PROXY_ARGS
                        and k != "SOURCE_DATE_EPOCH")
        if unused:
            self.progress.emit(f"WARNING: one or more build-args [{' '.join(unused)}] were not consumed")
        if opts.cache_to or opts.cache_to_registry:
            keys = self._cache_keys(order[-1])
            if opts.cache_to:
                v = self.progress.vertex(f"exporting cache to {opts.cache_to}")
                n = self.cache.export(keys, opts.cache_to)
                v.line(f"{n} steps")
                v.done()
            if opts.cache_to_registry:
                self._export_registry_cache(keys, opts.cache_to_registry)
        if opts.output is not None and opts.output[0] in ("local", "tar"):
            return self._export_files(final, *opts.output)
        if opts.squash and len(final.layers) - final.base_layers > 1:
            final = self._squash(final)
        if opts.output is not None:
            return self._export_archive(final, *opts.output)
        return self._export(final)

    def _export_archive(self, st: _Stage, kind: str, dest: str) -> str:
        """-o type=oci|docker,dest=FILE: the image as an oci-archive (an OCI image layout in a tar) or
        a docker-archive (docker save's), the -t names in it; the store keeps no new image."""
        import sys
        import tempfile

        from pallet.store.archive import save_archive

        before = {r.id for r in self.store.images()}
        image_id = self._export(st, names=[])
        v = self.progress.vertex(f"exporting to {kind} image format")
        try:
            rec = self.store.get_image(image_id)
            fmt = "oci-archive" if kind == "oci" else "docker-archive"
            if dest == "-":
                save_archive(self.store, [(rec, list(self.opts.tags))], sys.stdout.buffer, fmt)
            else:
                d = os.path.dirname(os.path.abspath(dest))
                fd, tmp = tempfile.mkstemp(prefix=".build-archive-", dir=d)
                try:
                    with os.fdopen(fd, "wb") as f:
                        save_archive(self.store, [(rec, list(self.opts.tags))], f, fmt)
                    os.replace(tmp, dest)
                except BaseException:
                    os.unlink(tmp)
                    raise
        finally:
            if image_id not in before:
                self.store.remove_image(image_id, force=True)
        v.status(f"sending tarball to {dest}")
        v.done()
        return image_id

    def _use(self, key: str) -> None:
        self.used_keys.append((getattr(self._local, "stage", -1), key))

    def _cache_keys(self, final: int) -> list[str]:
        """The keys --cache-to exports: every step (mode=max) or the final stage's chain (min)."""
        if self.opts.cache_mode == "max":
            return [k for _, k in self.used_keys]
        chain = {final}
        i = final
        while self.graph.base_stage.get(i) is not None:
            i = self.graph.base_stage[i]
            chain.add(i)
        return [k for s, k in self.used_keys if s in chain]

    def _registry(self):
        if self._client is None:
            if self.registry_client is None:
                raise BuildError("a registry cache needs a registry client")
            self._client = self.registry_client()
        from pallet.build.regcache import RegistryCache

        return RegistryCache(self._client, self.store)

    def _import_registry_caches(self, refs: list[str]) -> list:
        out = []
        for ref in refs:
            v = self.progress.vertex(f"importing cache manifest from {ref}")
            try:
                remote = self._registry().load(ref)
            except PalletError as e:
                v.error(e.message)
                raise BuildError(f"importing cache from {ref}: {e.message}") from None
            if remote is None:
                self.progress.emit(f"WARNING: cache import: {ref}: not found (building without it)")
            else:
                v.line(f"{len(remote.entries)} steps")
                out.append(remote)
            v.done()
        return out

    def _export_registry_cache(self, keys: list[str], ref: str) -> None:
        v = self.progress.vertex(f"exporting cache to registry {ref}")
        entries = {}
        for k in dict.fromkeys(keys):
            entry = self.cache.get(k)
            if entry is not None:
                entries[k] = entry
        try:
            digest = self._registry().export(ref, entries)
        except PalletError as e:
            v.error(e.message)
            raise BuildError(f"exporting cache to {ref}: {e.message}") from None
        v.line(f"{len(entries)} steps, manifest {digest}")
        v.done()

    def cancel(self) -> None:
        from pallet.build.run import cancel_all

        self.cancelled.set()
        cancel_all(self.running)

    def _stage_worker(self, i: int) -> _Stage:
        for d in self.graph.deps[i]:
            try:
                self.results[d].result()
            except BaseException:
                raise _Skipped("a stage it needs failed") from None
        try:
            return self._build_stage(self.df.stages[i])
        except Exception as e:
            if not isinstance(e, _Skipped):
                self.cancel()   # a failing stage stops the one running beside it
            raise

    # ---- expansion ------------------------------------------------------------------------------
    def _expand(self, inst: I.Instruction, word: str, env: dict[str, str]) -> str:
        try:
            return self.lex.process_word(word, env)
        except ShellError as e:
            raise BuildError(f"{self.df.filename}:{inst.line}: {e}") from None

    def _fail(self, inst: I.Instruction, message: str) -> BuildError:
        return BuildError(f"{self.df.filename}:{inst.line}: {message}")

    # ---- stages ---------------------------------------------------------------------------------
    def _stage_label(self, stage: I.Stage, i: int, n: int) -> str:
        if not self.multi:
            return f"[{i}/{n}]"
        return f"[{stage.name or f'stage-{stage.index}'} {i}/{n}]"

    def _from(self, stage: I.Stage) -> tuple[_Stage, str]:
        base, _platform_ = self.df.resolve_from(stage, self.meta)
        src = self.graph.base_stage.get(stage.index)
        if src is not None:
            parent: _Stage = self.results[src].result()
            child = _Stage(_copy.deepcopy(parent.doc), list(parent.layers), parent.key)
            child.base_layers = parent.base_layers
            return child, f"FROM {base}"
        named = self.opts.build_contexts.get(base)
        if named is not None:
            if not named.startswith("docker-image://"):
                raise self._fail(stage.from_, f"FROM {base}: the build context {base!r} is a directory, not an image")
            base = named.removeprefix("docker-image://")
        if base == "scratch":
            doc = {"architecture": _arch(), "os": "linux", "config": {},
                   "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            return _Stage(doc, [], step_key("scratch")), "FROM scratch"
        rec = None
        if self.opts.pull != "always":
            try:
                rec = self.store.resolve_image(base)
            except NotFound as e:
                if self.opts.pull == "never" or self.puller is None:
                    raise self._fail(stage.from_, f"failed to resolve source metadata for {base}: {e.message}") \
                        from None
            except PalletError as e:
                raise self._fail(stage.from_, f"failed to resolve source metadata for {base}: {e.message}") from None
        if rec is None:
            rec = self._pull(stage, base)
        doc = json.loads(self.store.config(rec).raw)
        man = self.store.manifest(rec)
        layers = [{"digest": d.digest, "diff_id": diff, "size": d.size, "media_type": d.media_type}
                  for d, diff in zip(man.layers, doc.get("rootfs", {}).get("diff_ids", []), strict=True)]
        return _Stage(doc, layers, step_key("image", rec.id)), f"FROM {base}"

    def _pull(self, stage: I.Stage, base: str):
        """The base image from its registry (one pull at a time; each name once per build)."""
        with self._pull_lock:
            image_id = self._pulled.get(base)
            if image_id is None:
                v = self.progress.vertex(f"[internal] pull {base}")
                try:
                    image_id = self.puller(self.store, base)
                except PalletError as e:
                    v.error(e.message)
                    raise self._fail(stage.from_, f"failed to resolve source metadata for {base}: {e.message}") \
                        from None
                v.done()
                self._pulled[base] = image_id
        return self.store.get_image(image_id)

    def _build_stage(self, stage: I.Stage) -> _Stage:
        self._local.stage = stage.index
        st, from_text = self._from(stage)
        if self.epoch is not None:
            st.key = step_key(st.key, "SOURCE_DATE_EPOCH", self.epoch)
        commands = list(stage.commands)
        triggers = st.cfg.get("OnBuild") or []
        if triggers:
            try:
                extra = I.load("FROM scratch\n" + "\n".join(triggers) + "\n").stages[0].commands
            except DockerfileError as e:
                raise self._fail(stage.from_, f"an ONBUILD trigger of the base image: {e.message}") from None
            for x in extra:
                x.line = stage.from_.line
            commands = extra + commands
            st.cfg.pop("OnBuild", None)
            st.key = step_key(st.key, "onbuild", triggers)
        fs_steps = [c for c in commands if isinstance(c, (I.Run, I.Copy, I.Add, I.Workdir))]
        n = 1 + len(fs_steps)
        v = self.progress.vertex(f"{self._stage_label(stage, 1, n)} {from_text}")
        v.done()
        i = 1
        for inst in commands:
            if isinstance(inst, (I.Run, I.Copy, I.Add, I.Workdir)):
                i += 1
                label = self._stage_label(stage, i, n)
            else:
                label = None
            self._step(st, stage, inst, label)
        return st

    # ---- one step -------------------------------------------------------------------------------
    def _now(self) -> str:
        if self.epoch is not None:
            import datetime

            return datetime.datetime.fromtimestamp(self.epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        from pallet.store.rootfs import rfc3339_now

        return rfc3339_now()

    def _history(self, st: _Stage, created_by: str, empty: bool) -> None:
        h = {"created": self._now(), "created_by": created_by, "comment": "buildkit.dockerfile.v0"}
        if empty:
            h["empty_layer"] = True
        st.doc.setdefault("history", []).append(h)

    def _add_layer(self, st: _Stage, layer: dict | None) -> None:
        if layer is None:
            return
        st.layers.append(layer)
        st.doc.setdefault("rootfs", {"type": "layers", "diff_ids": []}).setdefault("diff_ids", []).append(
            layer["diff_id"])

    def _step(self, st: _Stage, stage: I.Stage, inst: I.Instruction, label: str | None) -> None:
        env = st.env()
        if isinstance(inst, I.Arg):
            for d in inst.args:
                if d.key in self.opts.build_args:
                    st.args[d.key] = self.opts.build_args[d.key]
                elif d.default is not None:
                    st.args[d.key] = self._expand(inst, d.default, env)
                elif d.key in self.meta:
                    st.args[d.key] = self.meta[d.key]
                elif d.key in self.builtin:
                    st.args[d.key] = self.builtin[d.key]
                env = st.env()
            st.key = step_key(st.key, "ARG", [(d.key, d.default) for d in inst.args])
            return
        if self.cancelled.is_set():
            raise _Skipped("cancelled")
        desc, run = self._describe(st, inst, env)
        key = step_key(st.key, *desc)
        fs = label is not None
        v = self.progress.vertex(f"{label} {' '.join(inst.original.split())}") if fs else None
        # (--no-cache looks nothing up: a metadata step's entry would bring back the old run's layers)
        hit = None if self.opts.no_cache else self.cache.get(key)
        if hit is not None:
            st.doc, st.layers = hit["doc"], hit["layers"]
            st.key = key
            self._use(key)
            if isinstance(inst, (I.Cmd, I.Entrypoint)):
                st.cmd_set = st.cmd_set or isinstance(inst, I.Cmd)
            if v:
                v.cached()
            return
        try:
            how = run(v)
        except _Skipped:
            raise
        except PalletError as e:
            if self.cancelled.is_set() and e.message == "cancelled":
                if v:
                    v.error("cancelled")
                raise _Skipped("cancelled") from None
            if isinstance(e, BuildError):
                if v:
                    v.error(e.message)
                raise
            if v:
                v.error(e.message)
            raise self._fail(inst, e.message) from None
        st.key = key
        self.cache.put(key, st.entry())
        self._use(key)
        if v:
            v.cached() if how == "cached" else v.done()

    def _describe(self, st: _Stage, inst: I.Instruction, env: dict[str, str]):
        """(cache key parts, a function doing the step) for one instruction."""
        cfg = st.cfg
        x = lambda w: self._expand(inst, w, env)  # noqa: E731

        def meta(change, created_by: str):
            def run(_v) -> None:
                change()
                self._history(st, created_by, True)
            return run

        if isinstance(inst, I.Env):
            pairs = [(x(k), x(v)) for k, v in inst.pairs]

            def change() -> None:
                for k, val in pairs:
                    _set_env(cfg, k, val)
            return ("ENV", pairs), meta(change, "ENV " + " ".join(f"{k}={v}" for k, v in pairs))
        if isinstance(inst, I.Label):
            pairs = [(x(k), x(v)) for k, v in inst.pairs]

            def change() -> None:
                labels = cfg.setdefault("Labels", {}) or {}
                labels.update(dict(pairs))
                cfg["Labels"] = labels
            return ("LABEL", pairs), meta(change, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))
        if isinstance(inst, I.Maintainer):
            m = inst.maintainer
            return ("MAINTAINER", m), meta(lambda: st.doc.__setitem__("author", m), f"MAINTAINER {m}")
        if isinstance(inst, (I.Cmd, I.Entrypoint)):
            cmd = st.shell() + inst.cmd if inst.prepend_shell else list(inst.cmd)
            name = "CMD" if isinstance(inst, I.Cmd) else "ENTRYPOINT"

            def change() -> None:
                if name == "CMD":
                    cfg["Cmd"] = cmd
                    st.cmd_set = True
                else:
                    cfg["Entrypoint"] = cmd
                    if not st.cmd_set:
                        cfg.pop("Cmd", None)
            return (name, cmd, st.cmd_set), meta(change, f"{name} {json.dumps(cmd)}")
        if isinstance(inst, I.Shell):
            return ("SHELL", inst.shell), meta(lambda: cfg.__setitem__("Shell", list(inst.shell)),
                                               f"SHELL {json.dumps(inst.shell)}")
        if isinstance(inst, I.User):
            u = x(inst.user)
            return ("USER", u), meta(lambda: cfg.__setitem__("User", u), f"USER {u}")
        if isinstance(inst, I.StopSignal):
            s = x(inst.signal)
            return ("STOPSIGNAL", s), meta(lambda: cfg.__setitem__("StopSignal", s), f"STOPSIGNAL {s}")
        if isinstance(inst, I.Expose):
            ports = []
            for p in inst.ports:
                for w in self.lex.process_words(p, env):
                    ports.append(w if "/" in w else f"{w}/tcp")

            def change() -> None:
                ex = cfg.get("ExposedPorts") or {}
                for p in ports:
                    ex[p.lower()] = {}
                cfg["ExposedPorts"] = ex
            return ("EXPOSE", ports), meta(change, "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in ports) + "]")
        if isinstance(inst, I.Volume):
            vols = [x(v) for v in inst.volumes]

            def change() -> None:
                vv = cfg.get("Volumes") or {}
                for p in vols:
                    vv[p] = {}
                cfg["Volumes"] = vv
            return ("VOLUME", vols), meta(change, f"VOLUME {json.dumps(vols)}")
        if isinstance(inst, I.Onbuild):
            e = inst.expression.strip()

            def change() -> None:
                cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [e]
            return ("ONBUILD", e), meta(change, f"ONBUILD {e}")
        if isinstance(inst, I.Healthcheck):
            hc: dict = {"Test": list(inst.test)}
            if inst.test != ["NONE"]:
                for k, val in (("Interval", inst.interval), ("Timeout", inst.timeout),
                               ("StartPeriod", inst.start_period), ("StartInterval", inst.start_interval)):
                    if val:
                        hc[k] = _ns(val)
                if inst.retries:
                    hc["Retries"] = inst.retries
            return ("HEALTHCHECK", hc), meta(lambda: cfg.__setitem__("Healthcheck", hc),
                                              "HEALTHCHECK " + " ".join(inst.original.split()[1:]))
        if isinstance(inst, I.Workdir):
            path = x(inst.path)
            if not path.startswith("/"):
                path = os.path.join(cfg.get("WorkingDir") or "/", path)
            path = os.path.normpath(path)
            if path.startswith("//"):
                path = path[1:]

            def run(_v) -> None:
                from pallet.engine.snapshots import mkdir_in_root

                cfg["WorkingDir"] = path
                self._fs(st, lambda ws: mkdir_in_root(ws.root, path), f"WORKDIR {path}")
            return ("WORKDIR", path), run
        if isinstance(inst, I.Run):
            return self._describe_run(st, inst, env)
        if isinstance(inst, (I.Copy, I.Add)):
            return self._describe_copy(st, inst, env)
        raise self._fail(inst, f"{type(inst).__name__.upper()} is not supported by pallet build yet")

    def _fs(self, st: _Stage, fn, created_by: str) -> None:
        from pallet.build.workspace import Workspace

        with Workspace(self.store, st.layers, driver=self.driver) as ws:
            fn(ws)
            layer = ws.finish(clamp=self.epoch)
        self._add_layer(st, layer)
        self._history(st, created_by, layer is None)

    def _describe_run(self, st: _Stage, inst: I.Run, env: dict[str, str]):
        import re

        from pallet.build.run import RunFailed, run_in

        script = None
        if inst.heredocs and inst.prepend_shell and inst.cmd:
            line = inst.cmd[0].strip()
            if len(inst.heredocs) == 1 and re.fullmatch(r"<<-?([\"']?)[^\s\"']+\1", line):
                data = inst.heredocs[0].data
                if data.startswith("#!"):   # a script with its interpreter: run as a file, as BuildKit does
                    script = (inst.heredocs[0].name, data)
                    argv = ["/dev/pipes/" + inst.heredocs[0].name]
                else:
                    argv = st.shell() + [data]
            else:   # heredocs inside a command line: the shell reads them
                argv = st.shell() + [inst.cmd[0] + "\n" + "".join(h.data + h.name + "\n" for h in inst.heredocs)]
        elif inst.prepend_shell:
            argv = st.shell() + inst.cmd
        else:
            argv = list(inst.cmd)
        network = inst.network or self.opts.network
        if network == "default":
            from pallet.build.run import default_network

            network = default_network()
        args = [(k, v) for k, v in st.args.items()]
        image_env = _env_dict(st.cfg.get("Env") or [])
        run_env = list(st.cfg.get("Env") or [])
        if not any(e.startswith("PATH=") for e in run_env):
            from pallet.engine.spec import DEFAULT_PATH

            run_env.insert(0, f"PATH={DEFAULT_PATH}")
        run_env += [f"{k}={v}" for k, v in args if k not in image_env]
        hist_args = [f"{k}={v}" for k, v in args if k not in PROXY_ARGS]
        created_by = "RUN " + (f"|{len(hist_args)} {' '.join(hist_args)} " if hist_args else "") + \
            " ".join(argv) + " # buildkit"
        user = st.cfg.get("User") or ""
        cwd = st.cfg.get("WorkingDir") or "/"
        if inst.security == "insecure":
            raise self._fail(inst, "RUN --security=insecure is not allowed (pallet build grants no entitlements)")
        plan = None
        if inst.mounts:
            from pallet.build.runmounts import plan_mounts

            plan = plan_mounts(self, inst, inst.mounts, lambda w: self._expand(inst, w, env), self.opts.secrets, cwd)
        if script is not None:
            from pallet.build.runmounts import MountPlan, script_mount

            plan = plan or MountPlan()
            script_mount(plan, self.store, *script)

        def run(v) -> None:
            def work(ws) -> None:
                try:
                    run_in(ws, argv, env=run_env + (plan.env if plan else []), cwd=cwd, user=user, network=network,
                           run_dir=os.path.join(self.run_dir, "build"), on_line=v.line if v else None,
                           running=self.running, cancelled=self.cancelled, mounts=plan,
                           extra_hosts=self.opts.extra_hosts)
                except RunFailed as e:
                    self._report_run_failure(v, inst, e)
                    raise BuildError(f"{self.df.filename}:{inst.line}: {e.message}") from None
            self._fs(st, work, created_by)
        return ("RUN", argv, sorted(args), network, user, cwd, run_env, plan.key if plan else [],
                self.opts.extra_hosts), run

    def _report_run_failure(self, v, inst: I.Run, e) -> None:
        lines = ["------", f" > {v.name if v else 'RUN'}:"]
        lines += [f"   {t}" for t in e.tail[-10:]]
        lines.append("------")
        for line in lines:
            self.progress.emit(line)

    def _describe_copy(self, st: _Stage, inst, env: dict[str, str]):
        from pallet.build.copy import copy_into

        x = lambda w: self._expand(inst, w, env)  # noqa: E731
        name = "COPY" if isinstance(inst, I.Copy) else "ADD"
        srcs = [x(s) for s in inst.srcs]
        dest = x(inst.dest)
        chown = x(inst.chown) if inst.chown else None
        chmod = x(inst.chmod) if inst.chmod else None
        contents = [(c.path, self._expand(inst, c.data, env) if c.expand else c.data) for c in inst.contents]
        urls = []
        gits = []
        for s in srcs:
            if name == "ADD" and _is_git(s):
                gits.append(s)
                continue
            if name == "ADD" and (s.startswith("http://") or s.startswith("https://")):
                urls.append(s)
            elif name == "COPY" and (s.startswith("http://") or s.startswith("https://")):
                raise self._fail(inst, "source can't be a URL for COPY")
        srcs = [s for s in srcs if s not in urls and s not in gits]
        if getattr(inst, "checksum", None) and len(urls) != 1:
            raise self._fail(inst, "checksum can't be specified for non-HTTP(S) sources")
        wd = st.cfg.get("WorkingDir") or "/"
        trailing = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        if not dest.startswith("/"):
            dest = os.path.join(wd, dest)
        dest = os.path.normpath(dest) + ("/" if trailing else "")
        if dest.startswith("//"):
            dest = dest[1:]
        from_ = x(inst.from_) if isinstance(inst, I.Copy) and inst.from_ else None
        # the sources and their content hash
        entries: list = []
        is_dir = len(srcs) + len(contents) > 1
        source_key: object
        ws_src = None
        src_ctx = self.ctx
        named = self.opts.build_contexts.get(from_) if from_ else None
        if named is not None and named.startswith("docker-image://"):
            from_ = named.removeprefix("docker-image://")
        elif named is not None:
            src_ctx = self._named_context(inst, from_, named)
            from_ = None
        if from_ is None:
            for s in srcs:
                try:
                    found, d = src_ctx.select(s)
                except SourceNotFound as e:
                    raise self._fail(inst, e.message) from None
                if getattr(inst, "parents", False):
                    found = _with_parents(found, s, d)
                    d = True
                entries += found
                is_dir = is_dir or d
            excludes = [x(e) for e in inst.exclude]
            if excludes:
                from pallet.build.ignore import PatternMatcher

                pm = PatternMatcher(excludes)
                entries = [e for e in entries if not pm.matches_or_parent_matches(e.rel)
                           and not pm.matches_or_parent_matches(e.ctx_rel)]
            fetched = [self._fetch(inst, u, x(inst.checksum) if getattr(inst, "checksum", None) else None)
                       for u in urls]
            if urls:
                is_dir = is_dir or len(urls) + len(srcs) > 1
            cloned = [self._git(inst, g, bool(getattr(inst, "keep_git_dir", False))) for g in gits]
            if gits:
                is_dir = True
            source_key = (src_ctx.digest(entries), excludes, getattr(inst, "parents", False),
                          [(e.rel, e.st.st_mtime, d) for e, d in fetched],
                          [(c, bool(getattr(inst, "keep_git_dir", False))) for _, c in cloned])
            entries += [e for e, _ in fetched]
            for found, _ in cloned:
                entries += found
        else:
            source_layers, source_key = self._copy_source(inst, from_)
            ws_src = source_layers
        if is_dir and not dest.endswith("/"):
            dest += "/"
        single = None if is_dir else "file"
        created_by = f"{name} " + " ".join(srcs + [c[0] for c in contents]) + f" {dest} # buildkit"

        archives = []
        if name == "ADD" and ws_src is None and (inst.unpack is True or (inst.unpack is None and not urls)):
            from pallet.build.copy import archive_kind

            archives = [(e, k) for e in entries if stat.S_ISREG(e.st.st_mode)
                        for k in [archive_kind(e.path)] if k is not None]
        if archives:
            entries = [e for e in entries if all(e is not a for a, _ in archives)]
            if not dest.endswith("/"):
                dest += "/"
            single = None

        desc = (name, srcs, dest, chown, chmod, contents, from_, source_key)

        def work(ws, chown=chown) -> None:
            if ws_src is None:
                if entries or contents:
                    copy_into(ws, entries, dest, single=single, tmp_dir=str(self.store.tmp), chown=chown,
                              chmod=chmod, contents=contents)
                for e, kind in archives:
                    self._add_archive(inst, ws, e.path, kind, dest, chown, chmod)
                return
            self._copy_from_image(inst, ws, ws_src, srcs, dest, single, chown, chmod)

        def run(_v) -> None:
            self._fs(st, work, created_by)

        if getattr(inst, "link", False):
            return desc, lambda v: self._linked(st, desc, work, created_by, chown, v)
        return desc, run

    def _linked(self, st: _Stage, desc: tuple, work, created_by: str, chown: str | None, v) -> str | None:
        """COPY/ADD --link: the files go into an empty layer (no parent's directory is read or
        followed), cached under a key without the parent: a changed earlier step reuses the same
        blob. A --chown name is looked up in the parent first and only its numbers are in the key."""
        from pallet.build.copy import resolve_chown
        from pallet.build.workspace import Workspace

        owner = chown
        if chown and not all(p.isdigit() for p in chown.split(":")):
            with Workspace(self.store, st.layers, driver=self.driver) as pws:
                uid, gid = resolve_chown(pws.root, chown)
            owner = f"{uid}:{gid}"
        lkey = step_key("link", desc[0], desc[1], desc[2], owner, *desc[4:], self.epoch)
        hit = None if self.opts.no_cache else self.cache.get(lkey)
        if hit is not None:
            layer = hit["layers"][0] if hit["layers"] else None
        else:
            with Workspace(self.store, [], driver=self.driver) as ws:
                work(ws, owner)
                layer = ws.finish(clamp=self.epoch)
            self.cache.put(lkey, {"doc": None, "layers": [layer] if layer else []})
        self._use(lkey)
        self._add_layer(st, layer)
        self._history(st, created_by, layer is None)
        return "cached" if hit is not None else None

    def _named_context(self, inst, name: str, path: str) -> Context:
        cache = self.__dict__.setdefault("_named", {})
        if name not in cache:
            try:
                cache[name] = Context(path, index=self.index)
            except PalletError as e:
                raise self._fail(inst, f"build context {name!r}: {e.message}") from None
        return cache[name]

    def _git(self, inst, src: str, keep_git_dir: bool):
        """ADD of a git repository (URL#ref:subdir): cloned with Debian's git; (entries, commit)."""
        import shutil
        import subprocess
        import tempfile

        url, _, frag = src.partition("#")
        ref, _, subdir = frag.partition(":")
        d = tempfile.mkdtemp(prefix="build-git-", dir=str(self.store.tmp))
        self._tmpdirs.append(d)
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0")

        def git(*args: str) -> str:
            cp = subprocess.run(["git", *args], capture_output=True, text=True, env=env, timeout=300)
            if cp.returncode != 0:
                last = (cp.stderr.strip().splitlines() or ["git failed"])[-1]
                raise self._fail(inst, f"failed to fetch {src}: {last}")
            return cp.stdout.strip()

        if shutil.which("git") is None:
            raise self._fail(inst, "ADD of a git repository needs git (apt-get install git)")
        git("clone", "--quiet", "--no-checkout", url, d)
        git("-C", d, "checkout", "--quiet", ref or "HEAD")
        commit = git("-C", d, "rev-parse", "HEAD")
        if not keep_git_dir:
            shutil.rmtree(os.path.join(d, ".git"))
        try:
            found, _ = Context(d, ignore=[]).select(subdir or ".")
        except SourceNotFound:
            raise self._fail(inst, f"{subdir}: not found in {url}") from None
        return found, commit

    def _fetch(self, inst, url: str, checksum: str | None):
        """ADD URL: the file downloaded (mode 0600, mtime from Last-Modified) as a context entry."""
        import email.utils
        import hashlib
        import tempfile
        import urllib.error
        import urllib.parse
        import urllib.request

        from pallet.build.context import Entry

        fd, path = tempfile.mkstemp(prefix="build-url-", dir=str(self.store.tmp))
        self._tmpfiles.append(path)
        h = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as r, os.fdopen(fd, "wb") as f:
                while chunk := r.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
                modified = r.headers.get("Last-Modified")
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise self._fail(inst, f"failed to load cache key: invalid response status for {url}: {reason}") from None
        digest = "sha256:" + h.hexdigest()
        if checksum is not None and checksum != digest and checksum != h.hexdigest():
            raise self._fail(inst, f"digest mismatch {digest}: {checksum}")
        os.chmod(path, 0o600)
        mtime = 0
        if modified:
            try:
                mtime = int(email.utils.parsedate_to_datetime(modified).timestamp())
            except (TypeError, ValueError):
                mtime = 0
        os.utime(path, (mtime, mtime))
        name = os.path.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
        return Entry(path, "", name, os.lstat(path)), digest

    def _add_archive(self, inst, ws, path: str, kind: str, dest: str, chown, chmod) -> None:
        import shutil

        from pallet.build.context import Context
        from pallet.build.copy import copy_into, unpack_archive

        try:
            out = unpack_archive(path, kind, str(self.store.tmp))
        except PalletError as e:
            raise self._fail(inst, f"ADD {os.path.basename(path)}: {e.message}") from None
        try:
            entries, _ = Context(out, ignore=[]).select(".")
            copy_into(ws, entries, dest, single=None, tmp_dir=str(self.store.tmp), chown=chown, chmod=chmod,
                      keep_owner=True)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def _copy_source(self, inst, from_: str) -> tuple[list[dict], str]:
        try:
            s = self.df.stage(from_)
        except KeyError:
            s = None
        if s is not None and (not from_.isdigit() or s.index < self._current_index(inst)):
            res: _Stage = self.results[s.index].result()
            return res.layers, res.key
        try:
            rec = self.store.resolve_image(from_)
        except PalletError:
            raise self._fail(inst, f"COPY --from={from_}: no build stage and no image named {from_!r}") from None
        man = self.store.manifest(rec)
        diffs = self.store.config(rec).diff_ids
        return ([{"digest": d.digest, "diff_id": diff, "size": d.size, "media_type": d.media_type}
                 for d, diff in zip(man.layers, diffs, strict=True)], step_key("image", rec.id))

    def _current_index(self, inst) -> int:
        for s in self.df.stages:
            if inst in s.commands:
                return s.index
        return len(self.df.stages)

    def _copy_from_image(self, inst, ws, layers: list[dict], srcs: list[str], dest: str, single, chown, chmod):
        """COPY --from: the sources read from a read-only view of the other image's layers."""
        from pallet.build.context import Context
        from pallet.build.copy import copy_into
        from pallet.build.workspace import Workspace

        with Workspace(self.store, layers, driver=self.driver) as src_ws:
            ctx = _ImageContext(src_ws.root)
            entries = []
            for s in srcs:
                try:
                    found, is_dir = ctx.select(s)
                except SourceNotFound as e:
                    raise self._fail(inst, e.message) from None
                entries += found
                if is_dir:
                    single = None
                    if not dest.endswith("/"):
                        dest += "/"
            copy_into(ws, entries, dest, single=single, tmp_dir=str(self.store.tmp), chown=chown, chmod=chmod)
        del Context

    # ---- export ---------------------------------------------------------------------------------
    def _squash(self, st: _Stage) -> _Stage:
        import tempfile

        from pallet.build.squash import merge_diffs
        from pallet.build.workspace import layer_sources
        from pallet.layers.diff import write_layer
        from pallet.layers.snapshots import Snapshots

        v = self.progress.vertex(f"squashing {len(st.layers) - st.base_layers} layers")
        snaps = Snapshots(self.store.root, self.driver)
        with self.store.shared_lock():
            ids = snaps.ensure(layer_sources(self.store, st.layers), parallel=False)
        out = tempfile.mkdtemp(prefix="build-squash-", dir=str(self.store.tmp))
        try:
            merge_diffs([str(snaps.diff_path(c)) for c in ids[st.base_layers:]], out)
            with tempfile.NamedTemporaryFile(dir=str(self.store.tmp), prefix="build-layer-") as tmp:
                res = write_layer(tmp, upper=out, compression="gzip")
                tmp.flush()
                tmp.seek(0)
                digest = self.store.blobs.put_stream(tmp, expected=res.digest)
            self.store.record_layer(digest, res.diff_id, res.size)
        finally:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        squashed = _Stage(_copy.deepcopy(st.doc), st.layers[:st.base_layers], st.key)
        squashed.base_layers = st.base_layers
        base_history = 0
        hist = squashed.doc.get("history") or []
        # the base's entries are the first ones with a layer count equal to the base's layers
        seen = 0
        for i, h in enumerate(hist):
            if seen >= st.base_layers:
                base_history = i
                break
            if not h.get("empty_layer"):
                seen += 1
        else:
            base_history = len(hist)
        for h in hist[base_history:]:
            h["empty_layer"] = True
        hist.append({"created": self._now(), "created_by": "pallet build --squash",
                     "comment": f"merge of {len(st.layers) - st.base_layers} layers"})
        squashed.doc["history"] = hist
        self._add_layer(squashed, {"digest": digest, "diff_id": res.diff_id, "size": res.compressed_size,
                                   "media_type": res.media_type})
        v.done()
        return squashed

    def _export_files(self, st: _Stage, kind: str, dest: str) -> str:
        """-o type=local|tar: the final stage's filesystem to a directory or a tar (no image)."""
        import sys
        import tarfile

        from pallet.build.workspace import Workspace

        v = self.progress.vertex(f"exporting to {'client directory' if kind == 'local' else 'client tarball'}")
        with Workspace(self.store, st.layers, driver=self.driver) as ws:
            names = sorted(os.listdir(ws.root))
            if kind == "tar":
                out = sys.stdout.buffer if dest == "-" else open(dest, "wb")
                try:
                    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                        for n in names:
                            tar.add(os.path.join(ws.root, n), arcname=n)
                finally:
                    if out is not sys.stdout.buffer:
                        out.close()
            else:
                import tempfile

                os.makedirs(dest, exist_ok=True)
                with tempfile.TemporaryFile(dir=str(self.store.tmp)) as tmp:
                    with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
                        for n in names:
                            tar.add(os.path.join(ws.root, n), arcname=n)
                    tmp.seek(0)
                    with tarfile.open(fileobj=tmp, mode="r") as tar:
                        for m in tar:
                            if m.name.startswith("/") or ".." in m.name.split("/"):
                                continue
                            tar.extract(m, dest, numeric_owner=True)
        v.status(f"copying files to {dest}")
        v.done()
        return ""

    def _export(self, st: _Stage, names: list[str] | None = None) -> str:
        from pallet.oci import mediatypes as mt
        from pallet.oci.documents import Descriptor, ImageConfig, Manifest, canonical_json
        from pallet.store.ingest import Ingest

        doc = _copy.deepcopy(st.doc)
        if self.opts.labels:
            labels = doc.setdefault("config", {}).get("Labels") or {}
            labels.update(self.opts.labels)
            doc["config"]["Labels"] = labels
        hist = doc.get("history") or []
        if self.epoch is not None:
            doc["created"] = self._now()
        elif hist:
            doc["created"] = max(h.get("created", "") for h in hist)
        doc.pop("container", None)
        doc.pop("container_config", None)
        doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        doc["rootfs"]["diff_ids"] = [x["diff_id"] for x in st.layers]
        v = self.progress.vertex("exporting to image")
        raw = canonical_json(doc)
        store = self.store
        with Ingest(store) as ing:
            cdig = ing.put_bytes(raw, what="config")
            if self.opts.format == "docker":
                to_docker = {mt.OCI_LAYER_GZIP: mt.DOCKER_LAYER_GZIP, mt.OCI_LAYER: mt.DOCKER_LAYER,
                             mt.OCI_LAYER_ZSTD: mt.DOCKER_LAYER_ZSTD}
                layers = [Descriptor(to_docker.get(x["media_type"], x["media_type"]), x["digest"], x["size"])
                          for x in st.layers]
                man = Manifest.build(Descriptor(mt.DOCKER_CONFIG, cdig, len(raw)), layers,
                                     media_type=mt.DOCKER_MANIFEST)
            else:
                to_oci = {mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER: mt.OCI_LAYER,
                          mt.DOCKER_LAYER_ZSTD: mt.OCI_LAYER_ZSTD}
                layers = [Descriptor(to_oci.get(x["media_type"], x["media_type"]), x["digest"], x["size"])
                          for x in st.layers]
                man = Manifest.build(Descriptor(mt.OCI_CONFIG, cdig, len(raw)), layers)
            names = list(self.opts.tags) if names is None else names
            ing.add_image(man, ImageConfig.parse(raw), names=names)
            rec = ing.commit()[0]
        v.status(f"writing image {rec.id}")
        for t in names:
            v.status(f"naming to {t}")
        v.done()
        return rec.id


def _is_git(src: str) -> bool:
    """BuildKit's git source forms: git@host:path, git://, ssh://, or an http(s) URL ending in .git."""
    if src.startswith(("git@", "git://", "ssh://")):
        return True
    if src.startswith(("http://", "https://")):
        return src.partition("#")[0].endswith(".git")
    return False


def _with_parents(found: list, src: str, is_dir: bool) -> list:
    """COPY --parents: each entry keeps its path from the context root (or from a `/./` pivot in the
    source), with the directories above it."""
    from pallet.build.context import Entry

    pivot = ""
    if "/./" in src:
        pivot = os.path.normpath(src.split("/./", 1)[0]).lstrip("/")
        pivot = "" if pivot == "." else pivot
    out: list = []
    seen: set[str] = set()
    for e in found:
        rel = e.ctx_rel
        if pivot and (rel == pivot or rel.startswith(pivot + "/")):
            rel = rel[len(pivot):].lstrip("/")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in seen:
                seen.add(parent)
                full = e.path[: len(e.path) - len(rel)] + parent if e.path.endswith(rel) else None
                if full and os.path.isdir(full):
                    out.append(Entry(full, parent, parent, os.lstat(full)))
        if rel not in seen:
            seen.add(rel)
            out.append(Entry(e.path, e.ctx_rel, rel, e.st))
    return out


class _Skipped(PalletError):
    exit_code = 1


class _ImageContext(Context):
    """Sources inside another stage's (or image's) root: symlinks resolve inside that root."""

    def __init__(self, root: str) -> None:
        from pallet.build.ignore import PatternMatcher

        self.root = os.path.realpath(root)
        self.matcher = PatternMatcher([])
        self.index = HashIndex(None)

    def select(self, src: str):
        import glob
        import stat

        from pallet.runtime.rootfs import secure_join

        clean = os.path.normpath("/" + src)
        if glob.has_magic(clean):
            names = sorted(glob.glob(clean.lstrip("/"), root_dir=self.root, include_hidden=True))
        else:
            names = [clean.lstrip("/") or "."]
        out = []
        is_dir = False
        found = False
        from pallet.build.context import Entry

        for n in names:
            real = secure_join(self.root, n) if n != "." else self.root
            if not os.path.lexists(real):
                continue
            found = True
            st = os.lstat(real)
            if stat.S_ISDIR(st.st_mode):
                is_dir = True
                out += self._walk(real, "")
            else:
                out.append(Entry(real, n, os.path.basename(n), st))
        if not found:
            raise SourceNotFound(f'"{clean}": not found')
        return out, is_dir or len(names) > 1
