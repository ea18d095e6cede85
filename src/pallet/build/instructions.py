"""Typed instructions and build stages from parsed nodes (BuildKit's instructions package).

`load()` parses a Dockerfile and returns a `Dockerfile`: the ARGs before the first FROM
(`global_args`, BuildKit's meta args) and the `stages`, each a `From` line (base image,
`--platform`, `AS` name) with the instructions that follow it.

Values are kept as written — `$VAR` references and quotes included — exactly as BuildKit's
instructions hold them before dispatch: expanding them needs the build arguments and the
stage's environment at that point of the build, which is the builder's business (it uses
`pallet.build.shell.Lex` with the parse result's escape token). Shell-form commands are
one string with `prepend_shell` set; JSON-form commands are the list as written.

What is checked here is what BuildKit rejects before running anything: the number of
arguments, unknown or repeated flags, boolean flag values, durations, HEALTHCHECK types,
ONBUILD triggers, stage names, a heredoc as a destination, instructions before any FROM.
Errors are DockerfileError with the instruction's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pallet.build._go import go_parse_duration
from pallet.build.dockerfile import (
    DockerfileError,
    Heredoc,
    Node,
    Result,
    chomp_heredoc_content,
    parse,
    parse_heredoc,
    unknown_instruction_message,
)
from pallet.build.mounts import Mount, MountError, parse_mount
from pallet.build.shell import Lex, ShellError

__all__ = [
    "Add", "Arg", "ArgDef", "Cmd", "Copy", "Dockerfile", "Entrypoint", "Env", "Expose", "From",
    "Healthcheck", "Instruction", "Label", "Maintainer", "Onbuild", "Run", "Shell", "SourceContent",
    "Stage", "StopSignal", "User", "Volume", "Workdir", "load", "load_file", "parse_instruction",
    "split_stages",
]


# --- records ---------------------------------------------------------------------------------

@dataclass
class Instruction:
    line: int
    end_line: int
    original: str


@dataclass
class From(Instruction):
    base: str = ""
    name: str | None = None  # the AS name, lower case
    platform: str | None = None


@dataclass
class ArgDef:
    key: str
    default: str | None = None  # None: declared without a default


@dataclass
class Arg(Instruction):
    args: list[ArgDef] = field(default_factory=list)


@dataclass
class Env(Instruction):
    pairs: list[tuple[str, str]] = field(default_factory=list)
    legacy: bool = False  # the `ENV key value` form


@dataclass
class Label(Instruction):
    pairs: list[tuple[str, str]] = field(default_factory=list)
    legacy: bool = False


@dataclass
class Maintainer(Instruction):
    maintainer: str = ""


@dataclass
class InlineFile:
    """A heredoc of a RUN: its body is written to a file (or fed as stdin) when the step runs."""

    name: str
    data: str
    expand: bool
    file_descriptor: int = 0


@dataclass
class Run(Instruction):
    cmd: list[str] = field(default_factory=list)
    prepend_shell: bool = False
    mounts: list[Mount] = field(default_factory=list)
    network: str | None = None  # default, none, host
    security: str | None = None  # sandbox, insecure
    heredocs: list[InlineFile] = field(default_factory=list)


@dataclass
class Cmd(Instruction):
    cmd: list[str] = field(default_factory=list)
    prepend_shell: bool = False


@dataclass
class Entrypoint(Instruction):
    cmd: list[str] = field(default_factory=list)
    prepend_shell: bool = False


@dataclass
class Shell(Instruction):
    shell: list[str] = field(default_factory=list)


@dataclass
class SourceContent:
    """A COPY/ADD source given inline as a heredoc: `path` is the heredoc name."""

    path: str
    data: str
    expand: bool


@dataclass
class Copy(Instruction):
    srcs: list[str] = field(default_factory=list)
    dest: str = ""
    contents: list[SourceContent] = field(default_factory=list)
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: list[str] = field(default_factory=list)


@dataclass
class Add(Instruction):
    srcs: list[str] = field(default_factory=list)
    dest: str = ""
    contents: list[SourceContent] = field(default_factory=list)
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    keep_git_dir: bool = False
    checksum: str | None = None
    unpack: bool | None = None
    exclude: list[str] = field(default_factory=list)


@dataclass
class Expose(Instruction):
    ports: list[str] = field(default_factory=list)


@dataclass
class Volume(Instruction):
    volumes: list[str] = field(default_factory=list)


@dataclass
class User(Instruction):
    user: str = ""


@dataclass
class Workdir(Instruction):
    path: str = ""


@dataclass
class Onbuild(Instruction):
    expression: str = ""  # the trigger as written, e.g. "RUN make"


@dataclass
class StopSignal(Instruction):
    signal: str = ""


@dataclass
class Healthcheck(Instruction):
    """test is ["NONE"], ["CMD", arg...] or ["CMD-SHELL", "command line"] (the image config's form)."""

    test: list[str] = field(default_factory=list)
    interval: float = 0.0  # seconds; 0 means the default
    timeout: float = 0.0
    start_period: float = 0.0
    start_interval: float = 0.0
    retries: int = 0


# --- flags -----------------------------------------------------------------------------------

_BOOL, _STRING, _LIST = "bool", "string", "list"


def _flags(node: Node, spec: dict[str, str]) -> dict[str, object]:
    """BuildKit's BFlags: `--name=value` strings, `--name` (=true) booleans, repeatable lists."""
    out: dict[str, object] = {}
    for raw in node.flags:
        if not raw.startswith("--"):
            raise ValueError(f"arg should start with -- : {raw}")
        name, eq, value = raw[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise ValueError(f"unknown flag: {name}")
        if kind == _BOOL:
            if not eq:
                out[name] = True
            elif value.lower() == "true":
                out[name] = True
            elif value.lower() == "false":
                out[name] = False
            else:
                raise ValueError(f"expecting boolean value for flag {name}, not: {value}")
        elif kind == _STRING:
            if name in out:
                raise ValueError(f"duplicate flag specified: {name}")
            if not eq:
                raise ValueError(f"missing a value on flag: {name}")
            out[name] = value
        else:
            if not eq:
                raise ValueError(f"missing a value on flag: {name}")
            out.setdefault(name, [])
            out[name].append(value)  # type: ignore[union-attr]
    return out


def _s(flags: dict[str, object], name: str) -> str | None:
    v = flags.get(name)
    return v if isinstance(v, str) else None


def _l(flags: dict[str, object], name: str) -> list[str]:
    v = flags.get(name)
    return list(v) if isinstance(v, list) else []


# --- argument checks -------------------------------------------------------------------------

def _at_least(args: list[str], n: int, cmd: str) -> None:
    if len(args) < n:
        word = "one argument" if n == 1 else f"{'two' if n == 2 else n} arguments"
        raise ValueError(f"{cmd} requires at least {word}")


def _exactly_one(args: list[str], cmd: str) -> None:
    if len(args) != 1:
        raise ValueError(f"{cmd} requires exactly one argument")


def _command_line(node: Node) -> tuple[list[str], bool]:
    """(cmd, prepend_shell): the JSON list, or the shell-form string as one element."""
    args = node.args
    if node.json:
        return args, False
    return ([" ".join(args)] if args else []), True


_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)


def _base(node: Node) -> dict:
    return {"line": node.start_line, "end_line": node.end_line, "original": node.original}


def _pairs(node: Node, cmd: str) -> tuple[list[tuple[str, str]], bool]:
    args = node.args
    if not args:
        raise ValueError(f"{cmd} requires at least one argument")
    if len(args) % 3:
        raise ValueError(f"{cmd} has too many arguments")
    pairs = []
    legacy = False
    for i in range(0, len(args), 3):
        key, value, sep = args[i:i + 3]
        if not key:
            raise ValueError(f"{cmd} names can not be blank")
        pairs.append((key, value))
        legacy = legacy or sep == ""
    return pairs, legacy


def _sources(node: Node, cmd: str) -> tuple[list[str], str, list[SourceContent]]:
    args = node.args
    _at_least(args, 2, cmd)
    dest = args[-1]
    if parse_heredoc(dest) is not None:
        raise ValueError(f"{cmd} cannot accept a heredoc as a destination")
    by_name = {h.name: h for h in node.heredocs}
    srcs: list[str] = []
    contents: list[SourceContent] = []
    for src in args[:-1]:
        h = parse_heredoc(src)
        if h is None:
            srcs.append(src)
            continue
        found = by_name.get(h.name, Heredoc(name=h.name))
        data = chomp_heredoc_content(found.content) if h.chomp else found.content
        contents.append(SourceContent(path=h.name, data=data, expand=h.expand))
    return srcs, dest, contents


def _duration(flags: dict[str, object], name: str) -> float:
    v = _s(flags, name)
    if v is None:
        return 0.0
    try:
        d = go_parse_duration(v)
    except ValueError as e:
        raise ValueError(str(e)) from None
    if d == 0:
        return 0.0
    if d < 0.001:
        raise ValueError(f'Interval "{name}" cannot be less than 1ms')
    return d


# --- one instruction -------------------------------------------------------------------------

def _parse(node: Node) -> Instruction:
    cmd = node.instruction
    b = _base(node)
    args = node.args
    upper = cmd.upper()

    if cmd == "from":
        f = _flags(node, {"platform": _STRING})
        if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
            raise ValueError("FROM requires either one or three arguments")
        name = None
        if len(args) == 3:
            name = args[2].lower()
            if not _STAGE_NAME.match(name):
                raise ValueError(f"invalid name for build stage: {args[2]!r}, "
                                 "name can't start with a number or contain symbols")
        return From(**b, base=args[0], name=name, platform=_s(f, "platform"))

    if cmd == "arg":
        _flags(node, {})
        if not args:
            raise ValueError("ARG requires at least one argument")
        defs = []
        for a in args:
            key, eq, value = a.partition("=")
            if eq and not key:
                raise ValueError("ARG names can not be blank")
            defs.append(ArgDef(key, value if eq else None))
        return Arg(**b, args=defs)

    if cmd in ("env", "label"):
        _flags(node, {})
        pairs, legacy = _pairs(node, upper)
        return (Env if cmd == "env" else Label)(**b, pairs=pairs, legacy=legacy)

    if cmd == "maintainer":
        _flags(node, {})
        _exactly_one(args, upper)
        return Maintainer(**b, maintainer=args[0])

    if cmd == "run":
        f = _flags(node, {"mount": _LIST, "network": _STRING, "security": _STRING, "device": _LIST})
        _at_least(args, 1, "RUN")
        line, shell = _command_line(node)
        mounts = []
        ssh = 0
        for value in _l(f, "mount"):
            try:
                m = parse_mount(value, ssh_index=ssh)
            except MountError as e:
                raise ValueError(str(e)) from None
            if m.type == "ssh":
                ssh += 1
            mounts.append(m)
        network = _s(f, "network")
        if network is not None and network not in ("default", "none", "host"):
            raise ValueError(f"unsupported network mode {network!r}")
        security = _s(f, "security")
        if security is not None and security not in ("sandbox", "insecure"):
            raise ValueError(f"unsupported security mode {security!r}")
        files = [InlineFile(h.name, h.chomped_content, h.expand, h.file_descriptor) for h in node.heredocs]
        return Run(**b, cmd=line, prepend_shell=shell, mounts=mounts, network=network, security=security,
                   heredocs=files)

    if cmd in ("cmd", "entrypoint"):
        _flags(node, {})
        line, shell = _command_line(node)
        return (Cmd if cmd == "cmd" else Entrypoint)(**b, cmd=line, prepend_shell=shell)

    if cmd == "shell":
        _flags(node, {})
        _at_least(args, 1, "SHELL")
        if not node.json:
            raise ValueError("SHELL requires the arguments to be in JSON form")
        return Shell(**b, shell=args)

    if cmd == "copy":
        f = _flags(node, {"from": _STRING, "chown": _STRING, "chmod": _STRING, "link": _BOOL,
                          "parents": _BOOL, "exclude": _LIST})
        srcs, dest, contents = _sources(node, "COPY")
        return Copy(**b, srcs=srcs, dest=dest, contents=contents, from_=_s(f, "from"), chown=_s(f, "chown"),
                    chmod=_s(f, "chmod"), link=bool(f.get("link", False)), parents=bool(f.get("parents", False)),
                    exclude=_l(f, "exclude"))

    if cmd == "add":
        f = _flags(node, {"chown": _STRING, "chmod": _STRING, "link": _BOOL, "keep-git-dir": _BOOL,
                          "checksum": _STRING, "unpack": _BOOL, "exclude": _LIST})
        srcs, dest, contents = _sources(node, "ADD")
        unpack = f.get("unpack")
        return Add(**b, srcs=srcs, dest=dest, contents=contents, chown=_s(f, "chown"), chmod=_s(f, "chmod"),
                   link=bool(f.get("link", False)), keep_git_dir=bool(f.get("keep-git-dir", False)),
                   checksum=_s(f, "checksum"), unpack=unpack if isinstance(unpack, bool) else None,
                   exclude=_l(f, "exclude"))

    if cmd == "expose":
        _flags(node, {})
        _at_least(args, 1, "EXPOSE")
        return Expose(**b, ports=args)

    if cmd == "volume":
        _flags(node, {})
        _at_least(args, 1, "VOLUME")
        for v in args:
            if v.strip() == "":
                raise ValueError("VOLUME specified can not be an empty string")
        return Volume(**b, volumes=args)

    if cmd in ("user", "workdir", "stopsignal"):
        _flags(node, {})
        _exactly_one(args, upper)
        if cmd == "user":
            return User(**b, user=args[0])
        if cmd == "workdir":
            return Workdir(**b, path=args[0])
        return StopSignal(**b, signal=args[0])

    if cmd == "onbuild":
        _flags(node, {})
        if node.next is None or not node.next.children:
            raise ValueError("ONBUILD requires at least one argument")
        trigger = node.next.children[0].value.upper()
        if trigger == "ONBUILD":
            raise ValueError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise ValueError(f"{trigger} isn't allowed as an ONBUILD trigger")
        return Onbuild(**b, expression=_ONBUILD_PREFIX.sub("", node.original, count=1))

    if cmd == "healthcheck":
        f = _flags(node, {"interval": _STRING, "timeout": _STRING, "start-period": _STRING,
                          "start-interval": _STRING, "retries": _STRING})
        _at_least(args, 1, "HEALTHCHECK")
        typ = args[0].upper()
        rest = args[1:]
        if typ == "NONE":
            if rest:
                raise ValueError("HEALTHCHECK NONE takes no arguments")
            return Healthcheck(**b, test=["NONE"])
        if typ != "CMD":
            raise ValueError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
        if not rest:
            raise ValueError("Missing command after HEALTHCHECK CMD")
        test = ["CMD", *rest] if node.json else ["CMD-SHELL", " ".join(rest)]
        retries = 0
        if _s(f, "retries") is not None:
            try:
                retries = int(_s(f, "retries") or "")
            except ValueError:
                raise ValueError(f"invalid value for retries: {_s(f, 'retries')}") from None
            if retries < 0:
                raise ValueError(f"--retries cannot be negative ({retries})")
        return Healthcheck(**b, test=test, interval=_duration(f, "interval"), timeout=_duration(f, "timeout"),
                           start_period=_duration(f, "start-period"),
                           start_interval=_duration(f, "start-interval"), retries=retries)

    raise ValueError(unknown_instruction_message(node.value))


def parse_instruction(node: Node, filename: str = "Dockerfile") -> Instruction:
    """The typed instruction for one parsed node; DockerfileError names its line."""
    try:
        return _parse(node)
    except DockerfileError:
        raise
    except ValueError as e:
        raise DockerfileError(str(e), node.start_line, node.end_line, filename) from None


# --- stages ----------------------------------------------------------------------------------

@dataclass
class Stage:
    """A FROM and the instructions up to the next FROM; name is the AS name (lower case) or None."""

    index: int
    from_: From
    commands: list[Instruction] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        return self.from_.name

    @property
    def base(self) -> str:
        return self.from_.base

    @property
    def platform(self) -> str | None:
        return self.from_.platform


@dataclass
class Dockerfile:
    stages: list[Stage]
    global_args: list[Arg]
    result: Result
    filename: str = "Dockerfile"

    @property
    def escape_token(self) -> str:
        return self.result.escape_token

    def stage(self, ref: str | int) -> Stage:
        """A stage by AS name (case-insensitive) or by index; KeyError if there is none."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            i = int(ref)
            if 0 <= i < len(self.stages):
                return self.stages[i]
            raise KeyError(ref)
        for s in self.stages:
            if s.name == ref.lower():
                return s
        raise KeyError(ref)

    @property
    def target(self) -> Stage:
        """The stage built when no --target is given: the last one."""
        return self.stages[-1]

    def meta_args(self, build_args: Mapping[str, str] | None = None,
                  builtin: Mapping[str, str] | None = None) -> dict[str, str]:
        """The global ARGs' values, as FROM lines see them.

        In order, each default is expanded with the values before it (and the builtin ones,
        such as BUILDPLATFORM, which the builder supplies); a build argument of the same name
        replaces it. An ARG declared without a default and not given stays unset.
        """
        build_args = build_args or {}
        values = dict(builtin or {})
        lex = Lex(self.escape_token)
        for arg in self.global_args:
            for d in arg.args:
                if d.key in build_args:
                    values[d.key] = build_args[d.key]
                elif d.default is not None:
                    try:
                        values[d.key] = lex.process_word(d.default, values)
                    except ShellError as e:
                        raise DockerfileError(str(e), arg.line, arg.end_line, self.filename) from None
        return values

    def resolve_from(self, stage: Stage, meta: Mapping[str, str]) -> tuple[str, str | None]:
        """(base, platform) of a stage's FROM with the meta args expanded."""
        lex = Lex(self.escape_token)
        f = stage.from_
        try:
            base = lex.process_word(f.base, meta)
            platform = lex.process_word(f.platform, meta) if f.platform is not None else None
        except ShellError as e:
            raise DockerfileError(str(e), f.line, f.end_line, self.filename) from None
        if base == "":
            raise DockerfileError(f"base name ({f.base}) should not be blank", f.line, f.end_line, self.filename)
        return base, platform


def split_stages(result: Result, filename: str = "Dockerfile") -> Dockerfile:
    """Typed instructions grouped by stage; ARGs before the first FROM are global."""
    stages: list[Stage] = []
    global_args: list[Arg] = []
    names: set[str] = set()
    for node in result.children:
        inst = parse_instruction(node, filename)
        if isinstance(inst, From):
            if inst.name is not None:
                if inst.name in names:
                    raise DockerfileError(f'duplicate stage name "{inst.name}"', inst.line, inst.end_line,
                                          filename)
                names.add(inst.name)
            stages.append(Stage(index=len(stages), from_=inst))
        elif not stages:
            if not isinstance(inst, Arg):
                raise DockerfileError("no build stage in current context", inst.line, inst.end_line, filename)
            global_args.append(inst)
        else:
            stages[-1].commands.append(inst)
    if not stages:
        raise DockerfileError("no build stage in current context", result.ast.end_line, None, filename)
    return Dockerfile(stages=stages, global_args=global_args, result=result, filename=filename)


def load(source: str | bytes, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text into stages of typed instructions."""
    return split_stages(parse(source, filename=filename), filename)


def load_file(path: str | Path) -> Dockerfile:
    return load(Path(path).read_bytes(), filename=str(path))
