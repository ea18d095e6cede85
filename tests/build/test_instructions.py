"""pallet.build.instructions: typed records, stages and global ARGs (the project's own cases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.build.dockerfile import DockerfileError
from pallet.build.instructions import (
    Add,
    Arg,
    ArgDef,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    SourceContent,
    StopSignal,
    User,
    Volume,
    Workdir,
    load,
    load_file,
)
from pallet.build.mounts import Mount

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE
FROM golang:${GO_VERSION} AS Build
WORKDIR /src
COPY --link go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache/go-build \\
    --mount=type=bind,source=.,target=/src \\
    go build -o /out/app .

FROM --platform=$BUILDPLATFORM alpine:3.19
ARG VERSION
COPY --from=build --chown=app:app --chmod=755 /out/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
"""


def test_stages_and_global_args() -> None:
    df = load(MULTI_STAGE)
    assert [a.args for a in df.global_args] == [[ArgDef("GO_VERSION", "1.22")], [ArgDef("BASE", None)]]
    assert len(df.stages) == 2
    build, final = df.stages
    assert (build.index, build.name, build.base, build.platform) == (0, "build", "golang:${GO_VERSION}", None)
    assert (final.index, final.name, final.base, final.platform) == (1, None, "alpine:3.19", "$BUILDPLATFORM")
    assert [type(c).__name__ for c in build.commands] == ["Workdir", "Copy", "Run"]
    assert [type(c).__name__ for c in final.commands] == ["Arg", "Copy", "Entrypoint"]
    assert df.stage("BUILD") is build and df.stage(1) is final and df.stage("1") is final
    assert df.target is final
    with pytest.raises(KeyError):
        df.stage("nope")
    assert build.from_.line == 4


def test_run_record() -> None:
    run = load(MULTI_STAGE).stages[0].commands[2]
    assert isinstance(run, Run)
    assert run.cmd == ["go build -o /out/app ."]
    assert run.prepend_shell
    assert run.mounts == [
        Mount(type="cache", target="/root/.cache/go-build", cache_id="/root/.cache/go-build",
              cache_sharing="shared"),
        Mount(type="bind", source=".", target="/src", readonly=True),
    ]
    assert (run.line, run.end_line) == (7, 9)


def test_copy_record() -> None:
    copy = load(MULTI_STAGE).stages[1].commands[1]
    assert copy == Copy(line=13, end_line=13, original=copy.original, srcs=["/out/app"],
                        dest="/usr/local/bin/app", from_="build", chown="app:app", chmod="755")
    link = load(MULTI_STAGE).stages[0].commands[1]
    assert isinstance(link, Copy) and link.link and link.srcs == ["go.mod", "go.sum"] and link.dest == "./"


def test_every_record_type() -> None:
    text = """\
FROM a
ENV A=1 B="x y"
ENV OLD some value
LABEL k=v
MAINTAINER me
RUN ["echo", "hi"]
CMD echo hi
ENTRYPOINT ["/init"]
SHELL ["/bin/sh", "-ec"]
ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tgz /y/
EXPOSE 80 53/udp
VOLUME /data /logs
USER 1000:1000
WORKDIR /w
ONBUILD RUN make all
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=2.5s --start-period=1m --retries=3 CMD curl -f localhost
"""
    c = load(text).stages[0].commands
    assert isinstance(c[0], Env) and c[0].pairs == [("A", "1"), ("B", '"x y"')] and not c[0].legacy
    assert isinstance(c[1], Env) and c[1].pairs == [("OLD", "some value")] and c[1].legacy
    assert isinstance(c[2], Label) and c[2].pairs == [("k", "v")]
    assert isinstance(c[3], Maintainer) and c[3].maintainer == "me"
    assert isinstance(c[4], Run) and (c[4].cmd, c[4].prepend_shell) == (["echo", "hi"], False)
    assert isinstance(c[5], Cmd) and (c[5].cmd, c[5].prepend_shell) == (["echo hi"], True)
    assert isinstance(c[6], Entrypoint) and c[6].cmd == ["/init"]
    assert isinstance(c[7], Shell) and c[7].shell == ["/bin/sh", "-ec"]
    assert isinstance(c[8], Add) and (c[8].checksum, c[8].keep_git_dir, c[8].srcs, c[8].dest) == (
        "sha256:abc", True, ["https://x/y.tgz"], "/y/")
    assert isinstance(c[9], Expose) and c[9].ports == ["80", "53/udp"]
    assert isinstance(c[10], Volume) and c[10].volumes == ["/data", "/logs"]
    assert isinstance(c[11], User) and c[11].user == "1000:1000"
    assert isinstance(c[12], Workdir) and c[12].path == "/w"
    assert isinstance(c[13], Onbuild) and c[13].expression == "RUN make all"
    assert isinstance(c[14], StopSignal) and c[14].signal == "SIGINT"
    h = c[15]
    assert isinstance(h, Healthcheck)
    assert (h.test, h.interval, h.timeout, h.start_period, h.retries) == (
        ["CMD-SHELL", "curl -f localhost"], 30.0, 2.5, 60.0, 3)


def test_healthcheck_forms() -> None:
    c = load('FROM a\nHEALTHCHECK NONE\nHEALTHCHECK CMD ["true"]\n').stages[0].commands
    assert isinstance(c[0], Healthcheck) and c[0].test == ["NONE"]
    assert isinstance(c[1], Healthcheck) and c[1].test == ["CMD", "true"]


def test_arg_defaults() -> None:
    arg = load('FROM a\nARG A B=2 C= D="x y"\n').stages[0].commands[0]
    assert isinstance(arg, Arg)
    assert arg.args == [ArgDef("A", None), ArgDef("B", "2"), ArgDef("C", ""), ArgDef("D", '"x y"')]


def test_heredoc_sources_and_run_files() -> None:
    text = "FROM a\nCOPY <<EOF <<-'TABS' plain.txt /dst/\nhello $X\nEOF\n\tindented\n\tTABS\nRUN <<EOF\necho hi\nEOF\n"
    copy, run = load(text).stages[0].commands
    assert isinstance(copy, Copy)
    assert copy.srcs == ["plain.txt"] and copy.dest == "/dst/"
    assert copy.contents == [SourceContent("EOF", "hello $X\n", True), SourceContent("TABS", "indented\n", False)]
    assert isinstance(run, Run) and run.cmd == ["<<EOF"]
    assert [(f.name, f.data, f.expand) for f in run.heredocs] == [("EOF", "echo hi\n", True)]


@pytest.mark.parametrize(("text", "message"), [
    ("RUN x\nFROM a\n", "Dockerfile:1: no build stage in current context"),
    ("ARG A\n", "Dockerfile:1: no build stage in current context"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", "Dockerfile:1: invalid name for build stage: '1x', name can't start with a number or contain symbols"),
    ("FROM a AS x\nFROM b AS X\n", 'Dockerfile:2: duplicate stage name "x"'),
    ("FROM a\nCOPY onlyone\n", "Dockerfile:2: COPY requires at least two arguments"),
    ("FROM a\nCOPY a <<EOF\nx\nEOF\n", "Dockerfile:2: COPY cannot accept a heredoc as a destination"),
    ("FROM a\nCOPY --frm=x a b\n", "Dockerfile:2: unknown flag: frm"),
    ("FROM a\nCOPY --link=maybe a b\n", "Dockerfile:2: expecting boolean value for flag link, not: maybe"),
    ("FROM a\nCOPY --from=x --from=y a b\n", "Dockerfile:2: duplicate flag specified: from"),
    ("FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", "Dockerfile:2: USER requires exactly one argument"),
    ("FROM a\nSHELL sh -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"),
    ('FROM a\nVOLUME [""]\n', "Dockerfile:2: VOLUME specified can not be an empty string"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK TEST x\n", 'Dockerfile:2: Unknown type "TEST" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK --interval=1us CMD x\n", 'Dockerfile:2: Interval "interval" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "Dockerfile:2: --retries cannot be negative (-1)"),
    ("FROM a\nRUN --mount=type=nfs,target=/x true\n", "Dockerfile:2: unsupported mount type 'nfs'"),
    ("FROM a\nRUN --network=bridge true\n", "Dockerfile:2: unsupported network mode 'bridge'"),
    ("FROM a\nENV --x=1 A=1\n", "Dockerfile:2: unknown flag: x"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as e:
        load(text)
    assert str(e.value) == message


def test_load_file(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text("FROM scratch\nCOPY a /\n")
    df = load_file(f)
    assert df.stages[0].base == "scratch" and df.escape_token == "\\"


def test_meta_args_and_from_resolution() -> None:
    text = ("ARG REG=docker.io\nARG IMAGE=${REG}/library/alpine\nARG TAG\nARG PLAT\n"
            "FROM ${IMAGE}:${TAG:-3.19} AS one\nFROM --platform=${PLAT:-$BUILDPLATFORM} one\n")
    df = load(text)
    meta = df.meta_args(builtin={"BUILDPLATFORM": "linux/amd64"})
    assert meta == {"BUILDPLATFORM": "linux/amd64", "REG": "docker.io", "IMAGE": "docker.io/library/alpine"}
    assert df.resolve_from(df.stages[0], meta) == ("docker.io/library/alpine:3.19", None)
    assert df.resolve_from(df.stages[1], meta) == ("one", "linux/amd64")

    meta = df.meta_args({"REG": "quay.io", "TAG": "edge", "PLAT": "linux/arm64"})
    assert meta == {"REG": "quay.io", "IMAGE": "quay.io/library/alpine", "TAG": "edge", "PLAT": "linux/arm64"}
    assert df.resolve_from(df.stages[0], meta) == ("quay.io/library/alpine:edge", None)
    assert df.resolve_from(df.stages[1], meta) == ("one", "linux/arm64")


def test_blank_base_name() -> None:
    df = load("ARG BASE\nFROM $BASE\n")
    with pytest.raises(DockerfileError) as e:
        df.resolve_from(df.stages[0], df.meta_args())
    assert str(e.value) == "Dockerfile:2: base name ($BASE) should not be blank"


def test_meta_arg_errors_name_the_line() -> None:
    df = load("ARG A=${B:?required}\nFROM x\n")
    with pytest.raises(DockerfileError) as e:
        df.meta_args()
    assert str(e.value).startswith("Dockerfile:1: failed to process")
    assert "B: required" in str(e.value)
    assert df.meta_args({"A": "given"}) == {"A": "given"}
