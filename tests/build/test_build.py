"""Real builds with `pallet build` on a local busybox image: COPY, RUN, metadata, the step cache,
multi-stage graphs, bad input. Every test checks that nothing is left behind (mounts, snapshots,
runtime state, temp files) and its fixture cleans up also when it fails."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from engine.engine_support import Env, build_image

pytestmark = pytest.mark.root

BASE = "localhost/busybox:latest"


@pytest.fixture
def env(tmp_path: Path, busybox_rootfs: Path):
    if os.geteuid() != 0:
        pytest.skip("builds need root (mounts, namespaces)")
    root, run = tmp_path / "root", tmp_path / "run"
    build_image(root, busybox_rootfs)
    e = Env(root, run, tmp_path)
    try:
        yield e
    finally:
        _kill_build_containers(run)
        e.cleanup()


def _kill_build_containers(run: Path) -> None:
    state = run / "build" / "runtime"
    if not state.is_dir():
        return
    for d in state.iterdir():
        try:
            pid = json.loads((d / "state.json").read_text())["pid"]
            os.kill(pid, 9)
        except (OSError, ValueError, KeyError):
            pass


def _cgroups_named(cid: str) -> list[str]:
    """The cgroup directories of a RUN container, in every hierarchy (v1, v2, hybrid)."""
    import glob

    return glob.glob(f"/sys/fs/cgroup/*/{cid}") + glob.glob(f"/sys/fs/cgroup/*/*/{cid}") + \
        glob.glob(f"/sys/fs/cgroup/{cid}")


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)
    return ctx


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def assert_nothing_left(env: Env) -> None:
    # (containers of `pallet run --rm` may still be going away: only the build's own things count)
    assert [m for m in _mounts_under(env.root) if "/containers/build-" in m or "/layers/mnt/" in m] == []
    snaps = env.root / "layers" / "containers"
    assert not snaps.is_dir() or [p.name for p in snaps.iterdir() if p.name.startswith("build-")] == []
    assert [p for p in (env.root / "tmp").iterdir() if p.name.startswith("build-")] == []
    state = env.runroot / "build" / "runtime"
    assert not state.is_dir() or list(state.iterdir()) == []
    work = env.runroot / "build"
    assert not work.is_dir() or set(p.name for p in work.iterdir()) <= {"runtime", "leases", "owners"}
    for marks in ("leases", "owners"):
        assert not (work / marks).is_dir() or list((work / marks).iterdir()) == []


def build(env: Env, ctx: Path, *args: str, check: bool = True):
    cp = env("build", "--progress", "plain", *args, str(ctx), timeout=120)
    if check and cp.returncode != 0:
        raise AssertionError(f"build failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
    return cp


def steps(stderr: str) -> dict[str, str]:
    """Step title -> CACHED / DONE / ERROR, from the plain progress lines."""
    titles: dict[str, str] = {}
    out: dict[str, str] = {}
    for line in stderr.splitlines():
        m = re.match(r"#(\d+) (\[.*)$", line)
        if m:
            titles[m.group(1)] = m.group(2)
            continue
        m = re.match(r"#(\d+) (CACHED|DONE|ERROR)", line)
        if m and m.group(1) in titles:
            out[titles[m.group(1)]] = m.group(2)
    return out


def inspect(env: Env, ref: str) -> dict:
    cp = env("image", "inspect", ref, check=True)
    return json.loads(cp.stdout)[0]


def config_doc(env: Env, ref: str) -> dict:
    from pallet.store import Store

    store = Store(env.root)
    try:
        rec = store.resolve_image(ref)
        return json.loads(store.config(rec).raw)
    finally:
        store.db.close()


DOCKERFILE = """\
FROM localhost/busybox
ARG GREETING=hello
ENV APP=/app NAME=world
WORKDIR $APP
COPY greet.sh ./
COPY data/ data/
RUN chmod +x greet.sh && echo "$GREETING" > greeting.txt && ls data > listing.txt
LABEL org.example.name="demo" version=1
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD test -f /app/greeting.txt
ONBUILD RUN echo child
USER app
ENTRYPOINT ["/app/greet.sh"]
CMD ["arg1"]
"""

FILES = {"greet.sh": '#!/bin/sh\necho "$(cat /app/greeting.txt) $NAME $*"; cat /app/listing.txt\n',
         "data/one.txt": "1\n", "data/two.txt": "2\n"}


def test_build_copy_run_metadata_and_run_it(env: Env, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, DOCKERFILE, FILES)
    cp = build(env, ctx, "-t", "localhost/demo:1", "--label", "extra=yes", "--iidfile", str(tmp_path / "iid"))
    image_id = (tmp_path / "iid").read_text()
    assert image_id.startswith("sha256:") and image_id in cp.stdout
    st = steps(cp.stderr)
    assert st["[3/5] COPY greet.sh ./"] == "DONE"
    assert all(v == "DONE" for v in st.values()), st

    run = env("run", "--rm", "localhost/demo:1", check=True)
    assert run.stdout == "hello world arg1\none.txt\ntwo.txt\n"

    doc = config_doc(env, "localhost/demo:1")
    cfg = doc["config"]
    assert cfg["Env"][-2:] == ["APP=/app", "NAME=world"]
    assert cfg["WorkingDir"] == "/app"
    assert cfg["User"] == "app"
    assert cfg["Entrypoint"] == ["/app/greet.sh"] and cfg["Cmd"] == ["arg1"]
    assert cfg["Labels"] == {"org.example.name": "demo", "version": "1", "extra": "yes"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGTERM"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /app/greeting.txt"], "Interval": 30 * 10**9,
                                  "Timeout": 5 * 10**9, "Retries": 3}
    assert cfg["OnBuild"] == ["RUN echo child"]
    # history: one entry per step after the base's; layers only for the steps that changed files
    hist = doc["history"][1:]
    layered = [h["created_by"] for h in hist if not h.get("empty_layer")]
    assert layered == ["WORKDIR /app", "COPY greet.sh /app/ # buildkit", "COPY data/ /app/data/ # buildkit",
                       'RUN |1 GREETING=hello /bin/sh -c chmod +x greet.sh && echo "$GREETING" > greeting.txt '
                       '&& ls data > listing.txt # buildkit']
    assert len(doc["rootfs"]["diff_ids"]) == 1 + len(layered)
    assert any(h["created_by"] == "ENV APP=/app NAME=world" and h["empty_layer"] for h in hist)
    assert_nothing_left(env)


def test_second_build_is_all_cached_and_gives_the_same_image(env: Env, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, DOCKERFILE, FILES)
    first = build(env, ctx, "-q", "-t", "localhost/demo:1").stdout.strip()
    cp = build(env, ctx, "-t", "localhost/demo:2")
    st = steps(cp.stderr)
    fs = {k: v for k, v in st.items() if "FROM" not in k}
    assert fs and all(v == "CACHED" for v in fs.values()), st
    assert first in cp.stdout
    assert inspect(env, "localhost/demo:2")["Id"] == first
    # --no-cache runs everything again
    st = steps(build(env, ctx, "--no-cache").stderr)
    assert all(v == "DONE" for v in st.values()), st
    assert_nothing_left(env)


def test_changing_one_file_reruns_only_steps_after_its_copy(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.out\n"
          "COPY b.txt /b.txt\nRUN cat /a.out /b.txt > /ab.out\nCMD [\"cat\", \"/ab.out\"]\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "A\n", "b.txt": "B\n", "unrelated.txt": "x\n"})
    build(env, ctx, "-t", "localhost/ab")
    (ctx / "unrelated.txt").write_text("changed\n")
    st = steps(build(env, ctx, "-t", "localhost/ab").stderr)
    assert all(v == "CACHED" for k, v in st.items() if "FROM" not in k), st
    (ctx / "b.txt").write_text("B2\n")
    st = steps(build(env, ctx, "-t", "localhost/ab").stderr)
    assert st["[2/5] COPY a.txt /a.txt"] == "CACHED"
    assert st["[3/5] RUN cat /a.txt > /a.out"] == "CACHED"
    assert st["[4/5] COPY b.txt /b.txt"] == "DONE"
    assert st["[5/5] RUN cat /a.out /b.txt > /ab.out"] == "DONE"
    assert env("run", "--rm", "localhost/ab", check=True).stdout == "A\nB2\n"
    assert_nothing_left(env)


def test_changed_build_arg_misses_at_first_use_not_at_declaration(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox\nRUN echo before > /before\nARG V=1\nCOPY a.txt /a.txt\n"
          "RUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "A\n"})
    build(env, ctx, "-t", "localhost/arg")
    cp = build(env, ctx, "-t", "localhost/arg", "--build-arg", "V=2")
    st = steps(cp.stderr)
    assert st["[2/4] RUN echo before > /before"] == "CACHED"
    assert st["[3/4] COPY a.txt /a.txt"] == "CACHED"
    assert st["[4/4] RUN echo $V > /v"] == "DONE"
    assert env("run", "--rm", "localhost/arg", check=True).stdout == "2\n"
    cp = build(env, ctx, "-t", "localhost/arg", "--build-arg", "V=2", "--build-arg", "NOPE=1")
    assert "WARNING: one or more build-args [NOPE] were not consumed" in cp.stderr
    hist = config_doc(env, "localhost/arg")["history"]
    assert hist[-2]["created_by"] == "RUN |1 V=2 /bin/sh -c echo $V > /v # buildkit"
    assert_nothing_left(env)


def test_multi_stage_copy_from_and_unused_stage_skipped(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox AS build\nWORKDIR /src\nCOPY a.txt .\nRUN tr a-z A-Z < a.txt > up.txt\n"
          "FROM localhost/busybox AS broken\nRUN exit 7\n"
          "FROM localhost/busybox\nCOPY --from=build /src/up.txt /up.txt\nCOPY --from=0 /src/a.txt /a.txt\n"
          "CMD [\"cat\", \"/up.txt\", \"/a.txt\"]\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "shout\n"})
    cp = build(env, ctx, "-t", "localhost/ms")
    assert "RUN exit 7" not in cp.stderr
    assert env("run", "--rm", "localhost/ms", check=True).stdout == "SHOUT\nshout\n"
    # --target builds a stage and what it needs
    cp = build(env, ctx, "-t", "localhost/ms-build", "--target", "build")
    assert env("run", "--rm", "localhost/ms-build", "cat", "/src/up.txt", check=True).stdout == "SHOUT\n"
    assert_nothing_left(env)


def test_independent_stages_run_at_the_same_time(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox AS one\nRUN sleep 1 && echo 1 > /one\n"
          "FROM localhost/busybox AS two\nRUN sleep 1 && echo 2 > /two\n"
          "FROM localhost/busybox\nCOPY --from=one /one /one\nCOPY --from=two /two /two\n")
    ctx = _ctx(tmp_path, df)
    cp = build(env, ctx)
    lines = cp.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"#\d+ \[(one|two) 2/2\] RUN", line)]
    nums = [lines[i].split()[0] for i in starts]
    dones = [i for i, line in enumerate(lines) if any(line == f"{n} DONE" or line.startswith(f"{n} DONE ")
                                                      for n in nums)]
    assert len(starts) == 2 and len(dones) == 2
    assert max(starts) < min(dones), cp.stderr   # both started before either finished
    assert_nothing_left(env)


def test_dockerignore_and_symlink_out_of_context(env: Env, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("host secret\n")
    df = "FROM localhost/busybox\nCOPY . /ctx/\nCMD [\"find\", \"/ctx\"]\n"
    ctx = _ctx(tmp_path, df, {"keep.txt": "k\n", "skip.log": "s\n", "sub/keep2.txt": "k2\n",
                              ".dockerignore": "*.log\n"})
    os.symlink(str(secret), ctx / "link-out")
    build(env, ctx, "-t", "localhost/ig")
    out = env("run", "--rm", "localhost/ig", check=True).stdout.split()
    assert "/ctx/keep.txt" in out and "/ctx/sub/keep2.txt" in out
    assert "/ctx/skip.log" not in out
    cat = env("run", "--rm", "localhost/ig", "cat", "/ctx/link-out")
    assert "host secret" not in cat.stdout
    # a symlink source that leaves the context selects nothing
    (ctx / "Dockerfile").write_text("FROM localhost/busybox\nCOPY link-out /x\n")
    cp = build(env, ctx, check=False)
    assert cp.returncode == 1
    assert "not found" in cp.stderr
    assert_nothing_left(env)


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM localhost/busybox\nRUN true\nFORM x\n",
     "Error: Dockerfile:3: unknown instruction: FORM (did you mean FROM?)"),
    ("FROM localhost/busybox\nCOPY missing.txt /\n",
     'Error: Dockerfile:2: failed to compute cache key: "/missing.txt": not found'),
    ("FROM localhost/busybox\nCOPY --from=nostage /x /x\n",
     "Error: Dockerfile:2: COPY --from=nostage: no build stage and no image named 'nostage'"),
    ("FROM $UNDEFINED\n",
     "Error: Dockerfile:1: base name ($UNDEFINED) should not be blank"),
    ("FROM localhost/busybox AS a\nCOPY --from=b /x /x\nFROM localhost/busybox AS b\nCOPY --from=a /y /y\n",
     "Error: circular dependency detected on stage: b"),
    ("FROM localhost/busybox AS a\nCOPY --from=a /x /x\n",
     "Error: circular dependency detected on stage: a"),
    ("FROM localhost/busybox\nRUN --mount=type=ssh true\n",
     "Error: Dockerfile:2: RUN --mount=type=ssh is not supported by pallet build yet"),
    ("FROM localhost/busybox\nCOPY --chmod=u+x missing-too /\n",
     'Error: Dockerfile:2: failed to compute cache key: "/missing-too": not found'),
])
def test_bad_input_is_one_line_exit_1_nothing_created(env: Env, tmp_path: Path, dockerfile: str,
                                                     message: str) -> None:
    ctx = _ctx(tmp_path, dockerfile)
    before = env("images", "-q", "--no-trunc", check=True).stdout
    cp = build(env, ctx, "-t", "localhost/bad", check=False)
    assert cp.returncode == 1, cp.stderr
    assert cp.stderr.splitlines()[-1] == message
    assert [line for line in cp.stderr.splitlines() if line.startswith("Error:")] == [message]
    assert env("images", "-q", "--no-trunc", check=True).stdout == before
    assert_nothing_left(env)


def test_failing_run_reports_step_command_exit_code_and_output(env: Env, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM localhost/busybox\nCOPY a.txt /a\nRUN echo first; echo second >&2; exit 3\n",
               {"a.txt": "a\n"})
    cp = build(env, ctx, "-t", "localhost/fail", check=False)
    assert cp.returncode == 1
    err = cp.stderr
    assert " > [3/3] RUN echo first; echo second >&2; exit 3:" in err
    assert "   first\n   second\n" in err
    assert err.splitlines()[-1] == ('Error: Dockerfile:3: process "/bin/sh -c echo first; echo second >&2; '
                                    'exit 3" did not complete successfully: exit code: 3')
    assert env("image", "inspect", "localhost/fail").returncode != 0
    assert_nothing_left(env)
    # the finished steps are reused by the next build
    (ctx / "Dockerfile").write_text("FROM localhost/busybox\nCOPY a.txt /a\nRUN cat /a\n")
    st = steps(build(env, ctx).stderr)
    assert st["[2/3] COPY a.txt /a"] == "CACHED"


def test_dockerfile_from_stdin_and_builder_prune(env: Env, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "")
    (ctx / "f.txt").write_text("f\n")
    cp = env("build", "-f", "-", "-t", "localhost/stdin", str(ctx),
             input="FROM localhost/busybox\nCOPY f.txt /f\nCMD [\"cat\", \"/f\"]\n", timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert env("run", "--rm", "localhost/stdin", check=True).stdout == "f\n"
    pr = env("builder", "prune", "-f", check=True)
    assert pr.stdout.startswith("Deleted ")
    assert_nothing_left(env)


def test_a_failing_stage_stops_the_stage_beside_it(env: Env, tmp_path: Path) -> None:
    import time

    df = ("FROM localhost/busybox AS slow\nRUN sleep 30\n"
          "FROM localhost/busybox AS bad\nRUN sleep 0.5; exit 5\n"
          "FROM localhost/busybox\nCOPY --from=slow /etc/passwd /a\nCOPY --from=bad /etc/passwd /b\n")
    ctx = _ctx(tmp_path, df)
    t0 = time.monotonic()
    cp = build(env, ctx, check=False)
    assert time.monotonic() - t0 < 20
    assert cp.returncode == 1
    assert cp.stderr.splitlines()[-1] == ('Error: Dockerfile:4: process "/bin/sh -c sleep 0.5; exit 5" did not '
                                          'complete successfully: exit code: 5')
    assert_nothing_left(env)


def test_ctrl_c_kills_the_running_step_and_leaves_nothing(env: Env, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nRUN echo started; sleep 60\n")
    p = subprocess.Popen(env.argv("build", "--progress", "plain", str(ctx)), env=env.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while not re.search(r"^#\d+ \d+\.\d+ started$", seen, re.M) and time.monotonic() < deadline:
            seen += p.stderr.readline()   # the RUN's own output line (its title has the word too)
        assert "started" in seen
        p.send_signal(signal.SIGINT)
        p.wait(timeout=20)
        assert p.returncode == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert_nothing_left(env)
    out = subprocess.run(["pgrep", "-f", "sleep 60"], capture_output=True, text=True).stdout.split()
    assert [pid for pid in out if Path(f"/proc/{pid}/root").resolve() != Path("/")] == []


def test_run_mounts_cache_tmpfs_secret_bind(env: Env, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    df = ("FROM localhost/busybox AS src\nRUN mkdir /data && echo fromstage > /data/f\n"
          "FROM localhost/busybox\n"
          "RUN --mount=type=cache,target=/root/.cache echo run >> /root/.cache/log && wc -l < /root/.cache/log > /count\n"
          "RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/x && ls /scratch > /tmpfs-list\n"
          "RUN --mount=type=secret,id=tok,required=true stat -c '%a %u' /run/secrets/tok > /secret-mode && "
          "wc -c < /run/secrets/tok > /secret-size\n"
          "RUN --mount=type=bind,source=sub,target=/ctxsub cat /ctxsub/s.txt > /fromctx\n"
          "RUN --mount=type=bind,from=src,source=/data,target=/d cat /d/f > /fromstage\n"
          "RUN --mount=type=secret,id=tok,env=TOKEN echo ${#TOKEN} > /envlen; ls /run/secrets 2>&1 | wc -l > /nofile\n")
    ctx = _ctx(tmp_path, df, {"sub/s.txt": "ctx\n", "sub/ignored.txt": "no\n", ".dockerignore": "sub/ignored.txt\n"})
    build(env, ctx, "-t", "localhost/mounts", "--secret", f"id=tok,src={secret}")
    out = env("run", "--rm", "localhost/mounts", "sh", "-c",
              "cat /count /tmpfs-list /secret-mode /secret-size /fromctx /fromstage; "
              "ls -a /root /run; ls /scratch /run/secrets /ctxsub /d 2>&1 | wc -l", check=True).stdout
    assert out.split("\n")[:6] == ["1", "x", "400 0", "7", "ctx", "fromstage"]
    assert ".cache" not in out
    assert env("run", "--rm", "localhost/mounts", "cat", "/envlen", check=True).stdout == "7\n"
    assert "s3cret" not in json.dumps(config_doc(env, "localhost/mounts"))
    # the cache mount outlives the build; the secret's content is in no layer and no cache key
    build(env, ctx, "-t", "localhost/mounts", "--no-cache", "--secret", f"id=tok,src={secret}")
    assert env("run", "--rm", "localhost/mounts", "cat", "/count", check=True).stdout == "2\n"
    for blob in (env.root / "blobs" / "sha256").iterdir():
        import gzip

        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert b"s3cret" not in data
    # a secret from an environment variable
    cp = env("build", "--progress", "plain", "--no-cache", "--secret", "id=tok,env=MY_TOKEN", "-t", "localhost/mounts",
             str(ctx), env={"MY_TOKEN": "from-the-env"}, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert env("run", "--rm", "localhost/mounts", "cat", "/secret-size", check=True).stdout == "12\n"
    # a required secret not given fails at its step
    cp = build(env, ctx, "--no-cache", check=False)
    assert cp.returncode == 1 and cp.stderr.splitlines()[-1] == "Error: Dockerfile:6: secret tok not found"
    assert_nothing_left(env)


def test_add_unpacks_local_archives_and_refuses_a_hostile_one(env: Env, tmp_path: Path) -> None:
    import io
    import subprocess
    import tarfile

    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "t.txt").write_text("t\n")
    ctx = _ctx(tmp_path, "FROM localhost/busybox\nADD a.tgz /x/\nADD a.txz /y\nADD a.bz2 /w\nADD plain.txt /z.txt\n"
                         "ADD --unpack=false a.tgz /kept/\n", {"plain.txt": "p\n"})
    for flag, name in (("-z", "a.tgz"), ("-J", "a.txz"), ("-j", "a.bz2")):
        subprocess.run(["tar", "-C", str(src), flag, "-cf", str(ctx / name), "inner"], check=True)
    build(env, ctx, "-t", "localhost/add")
    out = env("run", "--rm", "localhost/add", "find", "/x", "/y", "/w", "/z.txt", "/kept", check=True).stdout.split()
    assert out == ["/x", "/x/inner", "/x/inner/t.txt", "/y", "/y/inner", "/y/inner/t.txt", "/w", "/w/inner",
                   "/w/inner/t.txt", "/z.txt", "/kept", "/kept/a.tgz"]
    with tarfile.open(ctx / "evil.tar", "w") as t:
        ti = tarfile.TarInfo("../../etc/evil")
        ti.size = 1
        t.addfile(ti, io.BytesIO(b"x"))
    (ctx / "Dockerfile").write_text("FROM localhost/busybox\nADD evil.tar /x/\n")
    cp = build(env, ctx, check=False)
    assert cp.returncode == 1
    assert cp.stderr.splitlines()[-1].startswith("Error: Dockerfile:2: ADD evil.tar: tar entry '../../etc/evil' "
                                                 "points outside")
    assert_nothing_left(env)


def test_copy_parents_and_exclude(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox\nCOPY --parents p/q/one.txt /par/\nCOPY --parents ./p/./q /piv/\n"
          "COPY --exclude=**/*.log p/ /ex/\n")
    ctx = _ctx(tmp_path, df, {"p/q/one.txt": "1\n", "p/q/two.log": "2\n"})
    build(env, ctx, "-t", "localhost/par")
    out = env("run", "--rm", "localhost/par", "find", "/par", "/piv", "/ex", check=True).stdout.split()
    assert sorted(out) == sorted(["/par", "/par/p", "/par/p/q", "/par/p/q/one.txt", "/piv", "/piv/q",
                                  "/piv/q/one.txt", "/piv/q/two.log", "/ex", "/ex/q", "/ex/q/one.txt"])
    assert_nothing_left(env)


def test_context_tar_on_stdin_and_dockerfile_as_context(env: Env, tmp_path: Path) -> None:
    import subprocess

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nCOPY h.txt /h\nCMD [\"cat\", \"/h\"]\n", {"h.txt": "hi\n"})
    tar = subprocess.run(["tar", "-C", str(ctx), "-cf", "-", "."], check=True, capture_output=True).stdout
    cp = subprocess.run(env.argv("build", "-q", "-t", "localhost/tarctx", "-"), input=tar, env=env.env,
                        capture_output=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert env("run", "--rm", "localhost/tarctx", check=True).stdout == "hi\n"
    cp = env("build", "-q", "-t", "localhost/noctx", "-", input="FROM localhost/busybox\nCMD [\"echo\", \"none\"]\n",
             timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert env("run", "--rm", "localhost/noctx", check=True).stdout == "none\n"
    assert_nothing_left(env)


def test_onbuild_triggers_run_in_the_child_build_and_user_applies_to_run(env: Env, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM localhost/busybox\nONBUILD COPY a.txt /from-trigger\nONBUILD RUN id -u > /trigger-uid\n",
               {"a.txt": "A\n"})
    build(env, ctx, "-t", "localhost/parent")
    (ctx / "Dockerfile").write_text("FROM localhost/parent\nUSER app\nRUN id -u > /tmp/uid\n"
                                    "CMD [\"cat\", \"/from-trigger\", \"/trigger-uid\", \"/tmp/uid\"]\n")
    build(env, ctx, "-t", "localhost/child")
    assert env("run", "--rm", "localhost/child", check=True).stdout == "A\n0\n1000\n"
    doc = config_doc(env, "localhost/child")
    assert not doc["config"].get("OnBuild")      # triggers are not inherited
    assert_nothing_left(env)


def test_source_date_epoch_gives_the_same_digest_at_different_times(env: Env, tmp_path: Path) -> None:
    import time

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nWORKDIR /app\nCOPY . .\nRUN date > /stamp-dir-only && rm /stamp-dir-only "
                         "&& echo built > /app/out && mkdir -p /var/x\nLABEL a=b\n", {"a.txt": "a\n", "d/b.txt": "b\n"})
    epoch = {"SOURCE_DATE_EPOCH": "1700000000"}
    ts = env("build", "-q", "--no-cache", "--timestamp", "1700000000", str(ctx), check=True, timeout=120).stdout
    first = env("build", "-q", "--no-cache", str(ctx), env=epoch, timeout=120)
    assert first.returncode == 0, first.stderr
    time.sleep(1.2)
    (ctx / "a.txt").touch()
    second = env("build", "-q", "--no-cache", str(ctx), env=epoch, timeout=120)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout == ts
    doc = config_doc(env, first.stdout.strip())
    assert doc["created"] == "2023-11-14T22:13:20Z"
    assert {h["created"] for h in doc["history"][1:]} == {"2023-11-14T22:13:20Z"}
    # without it, two builds differ (the times are real)
    a = env("build", "-q", "--no-cache", str(ctx), check=True, timeout=120).stdout
    time.sleep(1.1)
    b = env("build", "-q", "--no-cache", str(ctx), check=True, timeout=120).stdout
    assert a != b
    assert_nothing_left(env)


def test_add_url_mode_600_mtime_from_last_modified_and_checksum(env: Env, tmp_path: Path) -> None:
    import hashlib
    import http.server
    import threading

    body = b"remote content\n"

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path != "/files/remote.txt":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/files"
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        ctx = _ctx(tmp_path, f"FROM localhost/busybox\nADD {base}/remote.txt /dl/\n"
                             f"ADD --checksum={digest} {base}/remote.txt /named.txt\n")
        build(env, ctx, "-t", "localhost/url")
        out = env("run", "--rm", "localhost/url", "stat", "-c", "%a %Y %s %n", "/dl/remote.txt", "/named.txt",
                  check=True).stdout
        assert out == f"600 1700000000 {len(body)} /dl/remote.txt\n600 1700000000 {len(body)} /named.txt\n"
        st = steps(build(env, ctx, "-t", "localhost/url").stderr)
        assert all(v == "CACHED" for k, v in st.items() if "FROM" not in k), st
        (ctx / "Dockerfile").write_text(f"FROM localhost/busybox\nADD --checksum=sha256:{'0' * 64} {base}/remote.txt /x\n")
        cp = build(env, ctx, check=False)
        assert cp.returncode == 1 and "digest mismatch" in cp.stderr.splitlines()[-1]
        (ctx / "Dockerfile").write_text(f"FROM localhost/busybox\nADD {base}/missing.txt /x\n")
        cp = build(env, ctx, check=False)
        assert cp.returncode == 1 and cp.stderr.splitlines()[-1].startswith("Error: Dockerfile:2: ")
    finally:
        srv.shutdown()
        srv.server_close()
    assert_nothing_left(env)


def test_add_host_build_context_and_platform(env: Env, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.txt").write_text("other\n")
    df = ("FROM localhost/busybox\nRUN grep myhost /etc/hosts > /hosts-line\nCOPY --from=extra o.txt /o.txt\n"
          "COPY --from=img /bin/busybox /bb\n")
    ctx = _ctx(tmp_path, df)
    build(env, ctx, "-t", "localhost/named", "--network", "none", "--add-host", "myhost:10.1.2.3",
          "--build-context", f"extra={other}", "--build-context", "img=docker-image://localhost/busybox",
          "--platform", "linux/" + ("amd64" if os.uname().machine == "x86_64" else "arm64"))
    out = env("run", "--rm", "localhost/named", "sh", "-c", "cat /hosts-line /o.txt; test -x /bb && echo bb",
              check=True).stdout
    assert out == "10.1.2.3\tmyhost\nother\nbb\n"
    cp = build(env, ctx, "--platform", "linux/s390x", check=False)
    assert cp.returncode == 125 and cp.stderr.splitlines() == [
        "Error: pallet build runs on this host's platform only: --platform linux/s390x is not "
        + "linux/" + ("amd64" if os.uname().machine == "x86_64" else "arm64")]
    cp = build(env, ctx, "--platform", "linux/amd64,linux/arm64", check=False)
    assert cp.returncode == 125 and cp.stderr.splitlines() == [
        "Error: building for several platforms (linux/amd64,linux/arm64) is not supported: give one --platform"]
    assert_nothing_left(env)


def test_output_local_and_tar_and_builder_du(env: Env, tmp_path: Path) -> None:
    import tarfile

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nRUN --mount=type=cache,target=/c echo x > /c/x && "
                         "echo out > /result.txt\n")
    before = env("images", "-q", "--no-trunc", check=True).stdout
    build(env, ctx, "-o", f"type=local,dest={tmp_path / 'out'}")
    assert (tmp_path / "out" / "result.txt").read_text() == "out\n"
    assert (tmp_path / "out" / "bin" / "busybox").is_file()
    build(env, ctx, "-o", f"type=tar,dest={tmp_path / 'out.tar'}")
    with tarfile.open(tmp_path / "out.tar") as t:
        assert t.extractfile("result.txt").read() == b"out\n"
    assert env("images", "-q", "--no-trunc", check=True).stdout == before   # no image for -o local/tar
    du = env("builder", "du", check=True).stdout
    assert du.splitlines()[0].split() == ["TYPE", "COUNT", "SIZE"] and "cache mounts" in du
    env("builder", "prune", "-a", "-f", check=True)
    assert not (env.root / "buildcache" / "mounts").exists()
    assert_nothing_left(env)


def test_heredocs_in_run_and_copy(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox\nRUN cat <<EOF > /x\nhello $HOME\nEOF\n"
          "RUN <<EOT\n#!/bin/sh\necho script $0 > /s\nEOT\n"
          "RUN <<-A cat > /a; cat <<B > /b\n\tone\nA\ntwo\nB\n"
          "RUN <<X\necho plain > /p\nX\n"
          "COPY <<F /f.txt\ncontent\nF\n")
    ctx = _ctx(tmp_path, df)
    build(env, ctx, "-t", "localhost/heredoc")
    out = env("run", "--rm", "localhost/heredoc", "sh", "-c", "cat /x /s /a /b /p /f.txt; ls -d /dev/pipes 2>&1; true",
              check=True).stdout
    assert out.splitlines()[:6] == ["hello /root", "script /dev/pipes/EOT", "one", "two", "plain", "content"]
    assert "No such file" in out.splitlines()[6]
    assert_nothing_left(env)


def test_copy_chmod_octal_and_symbolic_and_chown_names(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox\nCOPY --chmod=640 a.txt /octal\nCOPY --chmod=u+x,go-w a.txt /sym\n"
          "COPY --chmod=a=rX d /dir\nCOPY --chown=app:staff a.txt /owned\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "a\n", "d/f.txt": "f\n"})
    (ctx / "a.txt").chmod(0o664)
    (ctx / "d" / "f.txt").chmod(0o644)
    build(env, ctx, "-t", "localhost/chmod")
    out = env("run", "--rm", "localhost/chmod", "stat", "-c", "%a %u:%g %n", "/octal", "/sym", "/dir/f.txt",
              "/owned", check=True).stdout.splitlines()
    assert out == ["640 0:0 /octal", "744 0:0 /sym", "444 0:0 /dir/f.txt", "664 1000:50 /owned"]
    (ctx / "Dockerfile").write_text("FROM localhost/busybox\nCOPY --chmod=u+q a.txt /x\n")
    cp = build(env, ctx, check=False)
    assert cp.returncode == 1 and cp.stderr.splitlines()[-1] == "Error: Dockerfile:2: invalid chmod parameter 'u+q'"
    assert_nothing_left(env)


def test_cache_to_and_from_a_local_directory(env: Env, tmp_path: Path, busybox_rootfs: Path) -> None:
    ctx = _ctx(tmp_path, "FROM localhost/busybox\nCOPY a.txt /a\nRUN cat /a > /b\nCMD [\"cat\", \"/b\"]\n",
               {"a.txt": "A\n"})
    cache = tmp_path / "exported-cache"
    first = build(env, ctx, "-q", "--cache-to", f"type=local,dest={cache}").stdout.strip()
    assert (cache / "entries").is_dir() and list((cache / "blobs" / "sha256").iterdir())
    # another store with the same base image: every step comes from the exported cache
    other = Env(tmp_path / "root2", tmp_path / "run2", tmp_path)
    build_image(other.root, busybox_rootfs)
    try:
        cp = build(other, ctx, "--cache-from", f"type=local,src={cache}", "-t", "localhost/fromcache")
        st = steps(cp.stderr)
        assert all(v == "CACHED" for k, v in st.items() if "FROM" not in k), st
        assert first in cp.stdout
        assert other("run", "--rm", "localhost/fromcache", check=True).stdout == "A\n"
        cp = build(other, ctx, "--cache-from", "type=s3,bucket=x", check=False)
        assert cp.returncode == 125 and cp.stderr.splitlines() == [
            "Error: cache type 's3' is not supported (local, registry)"]
        assert_nothing_left(other)
    finally:
        _kill_build_containers(other.runroot)
        other.cleanup()
    assert_nothing_left(env)


def test_format_docker_gives_docker_media_types(env: Env, tmp_path: Path) -> None:
    from pallet.store import Store

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nCOPY a.txt /a\nHEALTHCHECK CMD true\n", {"a.txt": "a\n"})
    build(env, ctx, "-t", "localhost/fmt:docker", "--format", "docker")
    (ctx / "a.txt").write_text("b\n")
    build(env, ctx, "-t", "localhost/fmt:oci")
    store = Store(env.root)
    try:
        oci = store.manifest(store.resolve_image("localhost/fmt:oci"))
        dock = store.manifest(store.resolve_image("localhost/fmt:docker"))
        assert oci.media_type == "application/vnd.oci.image.manifest.v1+json"
        assert dock.media_type == "application/vnd.docker.distribution.manifest.v2+json"
        assert dock.config.media_type == "application/vnd.docker.container.image.v1+json"
        assert {x.media_type for x in dock.layers} <= {"application/vnd.docker.image.rootfs.diff.tar",
                                                       "application/vnd.docker.image.rootfs.diff.tar.gzip"}
        assert json.loads(store.config(store.resolve_image("localhost/fmt:docker")).raw)["config"]["Healthcheck"]
    finally:
        store.db.close()
    assert env("run", "--rm", "localhost/fmt:docker", "cat", "/a", check=True).stdout == "a\n"
    assert_nothing_left(env)


def test_squash_merges_the_new_layers_into_one(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox\nCOPY a.txt /keep/a.txt\nRUN echo tmp > /gone.txt && echo 1 > /keep/n\n"
          "RUN rm /gone.txt /etc/group && echo 2 > /keep/n && mkdir -p /d/sub && echo x > /d/sub/x\n"
          "RUN rm -rf /d && mkdir /d && echo y > /d/y\nCMD [\"sh\"]\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "a\n"})
    build(env, ctx, "-t", "localhost/plain")
    build(env, ctx, "-t", "localhost/squashed", "--squash")
    plain, squashed = config_doc(env, "localhost/plain"), config_doc(env, "localhost/squashed")
    assert len(plain["rootfs"]["diff_ids"]) == 5 and len(squashed["rootfs"]["diff_ids"]) == 2
    assert plain["rootfs"]["diff_ids"][0] == squashed["rootfs"]["diff_ids"][0]
    assert sum(1 for h in squashed["history"] if not h.get("empty_layer")) == 2
    script = "find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort; cat /keep/n"
    a = env("run", "--rm", "localhost/plain", "sh", "-c", script, check=True).stdout
    b = env("run", "--rm", "localhost/squashed", "sh", "-c", script, check=True).stdout
    assert a == b and "/etc/group" not in a and "/gone.txt" not in a and "/d/y" in a and "/d/sub" not in a
    assert_nothing_left(env)


def test_tty_progress_is_a_live_view(env: Env, tmp_path: Path) -> None:
    import shlex
    import shutil
    import subprocess

    if shutil.which("script") is None:
        pytest.skip("needs script(1) for a terminal")
    ctx = _ctx(tmp_path, "FROM localhost/busybox\nCOPY a.txt /a\nRUN echo line-of-output; sleep 0.3\n",
               {"a.txt": "a\n"})
    cmd = shlex.join(env.argv("build", "-t", "localhost/tty", str(ctx)))
    cp = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=env.env, capture_output=True, text=True,
                        timeout=120)
    assert cp.returncode == 0, cp.stdout
    assert "[+] Building" in cp.stdout and "\x1b[2K => [2/3] COPY a.txt /a" in cp.stdout
    assert " => => # line-of-output" in cp.stdout
    assert "Successfully built sha256:" in cp.stdout
    assert_nothing_left(env)


def test_a_base_image_missing_from_the_store_is_pulled(env: Env, tmp_path: Path, busybox_rootfs: Path) -> None:
    from helpers.registry_server import RegistryProcess

    reg = RegistryProcess(tmp_path / "reg", [], tmp_path / "reg.log").start()
    other = Env(tmp_path / "root2", tmp_path / "run2", tmp_path)
    try:
        ref = f"{reg.addr}/library/busybox:latest"
        env("tag", "localhost/busybox:latest", ref, check=True)
        env("push", ref, check=True, timeout=120)
        ctx = _ctx(tmp_path, f"FROM {ref}\nRUN echo pulled > /p\nCMD [\"cat\", \"/p\"]\n")
        cp = build(other, ctx, "-t", "localhost/pulled")
        assert f"[internal] pull {ref}" in cp.stderr
        assert other("run", "--rm", "localhost/pulled", check=True).stdout == "pulled\n"
        assert "[internal] pull" not in build(other, ctx).stderr     # in the store now
        assert f"[internal] pull {ref}" in build(other, ctx, "--pull").stderr   # docker's flag: always
        cp = build(other, ctx, "--pull=never")
        assert "[internal] pull" not in cp.stderr
        (ctx / "Dockerfile").write_text(f"FROM {reg.addr}/library/nothing:here\n")
        cp = build(other, ctx, check=False)
        assert cp.returncode == 1
        assert cp.stderr.splitlines()[-1].startswith(f"Error: Dockerfile:1: failed to resolve source metadata for "
                                                     f"{reg.addr}/library/nothing:here: ")
        assert_nothing_left(other)
    finally:
        reg.stop()
        _kill_build_containers(other.runroot)
        other.cleanup()
    assert_nothing_left(env)


def test_add_a_git_repository_over_http(env: Env, tmp_path: Path) -> None:
    import functools
    import http.server
    import shutil
    import subprocess
    import threading

    if shutil.which("git") is None:
        pytest.skip("needs git")
    work = tmp_path / "work"
    work.mkdir()
    g = ["git", "-C", str(work), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README").write_text("v1\n")
    (work / "sub").mkdir()
    (work / "sub" / "s.txt").write_text("s\n")
    subprocess.run([*g, "add", "."], check=True)
    subprocess.run([*g, "commit", "-qm", "one"], check=True)
    subprocess.run([*g, "tag", "v1"], check=True)
    (work / "README").write_text("v2\n")
    subprocess.run([*g, "commit", "-qam", "two"], check=True)
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(served / "repo.git"), "update-server-info"], check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/repo.git"
        ctx = _ctx(tmp_path, f"FROM localhost/busybox\nADD {url} /head\nADD {url}#v1 /tagged\n"
                             f"ADD {url}#main:sub /subdir\nADD --keep-git-dir=true {url}#v1 /withgit\n")
        build(env, ctx, "-t", "localhost/git")
        out = env("run", "--rm", "localhost/git", "sh", "-c",
                  "cat /head/README /tagged/README /subdir/s.txt; ls -a /head | grep -c .git; test -d /withgit/.git "
                  "&& echo hasgit", check=True).stdout
        assert out == "v2\nv1\ns\n0\nhasgit\n"
        st = steps(build(env, ctx, "-t", "localhost/git").stderr)
        assert all(v == "CACHED" for k, v in st.items() if "FROM" not in k), st
        (ctx / "Dockerfile").write_text(f"FROM localhost/busybox\nADD {url}#nosuchref /x\n")
        cp = build(env, ctx, check=False)
        assert cp.returncode == 1 and cp.stderr.splitlines()[-1].startswith("Error: Dockerfile:2: failed to fetch ")
    finally:
        srv.shutdown()
        srv.server_close()
    assert_nothing_left(env)


def test_workspaces_of_a_killed_build_are_removed_by_the_next(env: Env, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nRUN echo started; sleep 2\n")
    p = subprocess.Popen(env.argv("build", "--progress", "plain", str(ctx)), env=env.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while not re.search(r"^#\d+ \d+\.\d+ started$", seen, re.M) and time.monotonic() < deadline:
            seen += p.stderr.readline()   # the RUN's own output line (its title has the word too)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    snaps = env.root / "layers" / "containers"
    assert [x.name for x in snaps.iterdir() if x.name.startswith("build-")]   # SIGKILL: nothing could clean up
    (cid,) = os.listdir(env.runroot / "build" / "owners")
    assert _cgroups_named(cid)           # its RUN goes on (sleep 2), in its own cgroups
    cp = env("builder", "prune", "-f", check=True)
    assert "Deleted 1 RUN containers of builds that were killed" in cp.stdout, cp.stdout
    assert "Removed 1 workspaces" in cp.stdout
    assert _cgroups_named(cid) == [] and os.listdir(env.runroot / "build" / "owners") == []
    assert not (env.runroot / "build" / "runtime" / cid).exists()
    assert [x.name for x in snaps.iterdir() if x.name.startswith("build-")] == []
    assert [m for m in _mounts_under(env.root) if "/containers/build-" in m] == []


def _solve_status(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_progress_rawjson_is_buildkits_solve_status_lines(env: Env, tmp_path: Path) -> None:
    import base64

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nRUN echo hi-from-run\nARG X\nRUN --mount=type=tmpfs,target=/t "
                         "echo $X\n")
    cp = env("build", "--progress", "rawjson", "--build-arg", "Y=1", "-t", "localhost/rawjson", str(ctx),
             timeout=120)
    assert cp.returncode == 0, cp.stderr
    lines = [line for line in cp.stderr.splitlines() if line]
    docs = [json.loads(line) for line in lines]   # every line is one SolveStatus
    vertexes: dict[str, list[dict]] = {}
    for d in docs:
        assert set(d) <= {"vertexes", "statuses", "logs", "warnings"} and d
        for v in d.get("vertexes", []):
            assert v["digest"].startswith("sha256:") and v["started"].endswith("Z")
            vertexes.setdefault(v["name"], []).append(v)
    run = vertexes["[2/3] RUN echo hi-from-run"]
    assert "completed" not in run[0] and run[-1]["completed"] >= run[-1]["started"] and not run[-1].get("cached")
    logs = [base64.b64decode(x["data"]) for d in docs for x in d.get("logs", []) if x.get("vertex") == run[0]["digest"]]
    assert b"hi-from-run\n" in logs
    export = vertexes["exporting to image"][0]["digest"]
    statuses = [x for d in docs for x in d.get("statuses", [])]
    assert [x["name"].split(" ")[:2] for x in statuses] == [["writing", "image"], ["naming", "to"]]
    assert all(x["vertex"] == export and x["completed"] for x in statuses)
    assert statuses[1]["id"] == "naming to localhost/rawjson:latest"
    warnings = [base64.b64decode(w["short"]).decode() for d in docs for w in d.get("warnings", [])]
    assert warnings == ["one or more build-args [Y] were not consumed"]
    cp = env("build", "--progress", "rawjson", str(ctx), timeout=120)
    assert cp.returncode == 0, cp.stderr
    again = {v["name"]: v for d in _solve_status(cp.stderr) for v in d.get("vertexes", []) if "completed" in v}
    assert again["[2/3] RUN echo hi-from-run"]["cached"] is True
    assert_nothing_left(env)


def test_copy_link_layer_does_not_depend_on_the_parent(env: Env, tmp_path: Path) -> None:
    df = ("FROM localhost/busybox AS base\nARG V\nRUN echo $V > /v && mkdir -p /app && chmod 700 /app\n"
          "FROM base\nCOPY --link a.txt /app/\nCOPY --link --chown=app:staff d /data/\nCOPY b.txt /app/\n"
          "ADD --link t.tar /unpacked/\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "A\n", "b.txt": "B\n", "d/x": "x\n", "t/in-tar.txt": "T\n"})
    import subprocess

    subprocess.run(["tar", "-C", str(ctx / "t"), "-cf", str(ctx / "t.tar"), "in-tar.txt"], check=True)
    build(env, ctx, "-t", "localhost/link:1", "--build-arg", "V=1")
    one = config_doc(env, "localhost/link:1")["rootfs"]["diff_ids"]
    out = env("run", "--rm", "localhost/link:1", "sh", "-c", "cat /v /app/a.txt /app/b.txt /unpacked/in-tar.txt; "
              "stat -c '%u:%g %n' /data/x", check=True).stdout
    assert out == "1\nA\nB\nT\n1000:50 /data/x\n"
    cp = build(env, ctx, "-t", "localhost/link:2", "--build-arg", "V=2")
    two = config_doc(env, "localhost/link:2")["rootfs"]["diff_ids"]
    st = steps(cp.stderr)
    assert st["[stage-1 2/5] COPY --link a.txt /app/"] == "CACHED", st
    assert st["[stage-1 3/5] COPY --link --chown=app:staff d /data/"] == "CACHED", st
    assert st["[stage-1 5/5] ADD --link t.tar /unpacked/"] == "CACHED", st
    assert st["[base 2/2] RUN echo $V > /v && mkdir -p /app && chmod 700 /app"] == "DONE", st
    # the base changed: the RUN's layer differs; both --link layers are the same blobs
    assert one[-5] != two[-5] and one[-4:-2] == two[-4:-2] and one[-1] == two[-1]
    out = env("run", "--rm", "localhost/link:2", "sh", "-c", "cat /v /app/a.txt /app/b.txt", check=True).stdout
    assert out == "2\nA\nB\n"
    # the --link layer holds only what it copied (no parent directory content)
    from pallet.store import Store

    store = Store(env.root)
    try:
        rec = store.resolve_image("localhost/link:2")
        layer = store.manifest(rec).layers[-4]
        import gzip
        import tarfile

        assert layer.digest == store.manifest(store.resolve_image("localhost/link:1")).layers[-4].digest
        with store.blobs.open(layer.digest) as f, tarfile.open(fileobj=gzip.GzipFile(fileobj=f)) as t:
            assert sorted(m.name.rstrip("/") for m in t) == ["app", "app/a.txt"]
    finally:
        store.db.close()
    assert_nothing_left(env)


def test_output_oci_and_docker_archives_read_by_skopeo(env: Env, tmp_path: Path) -> None:
    import subprocess

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nCOPY a.txt /a\nCMD [\"cat\", \"/a\"]\n", {"a.txt": "A\n"})
    before = env("images", "-q", "--no-trunc", check=True).stdout
    oci, dock = tmp_path / "img.oci.tar", tmp_path / "img.docker.tar"
    iid = build(env, ctx, "-t", "localhost/arch:1", "-o", f"type=oci,dest={oci}", "--iidfile",
                str(tmp_path / "iid")).stdout
    build(env, ctx, "-t", "localhost/arch:1", "-o", f"type=docker,dest={dock}")
    assert env("images", "-q", "--no-trunc", check=True).stdout == before   # the store keeps no new image
    image_id = (tmp_path / "iid").read_text()
    assert image_id in iid
    for transport, path in (("oci-archive", oci), ("docker-archive", dock)):
        cp = subprocess.run(["skopeo", "inspect", f"{transport}:{path}"], capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stderr
        info = json.loads(cp.stdout)
        assert len(info["Layers"]) == 2 and info["Os"] == "linux"
        cp = subprocess.run(["skopeo", "inspect", "--config", f"{transport}:{path}"], capture_output=True,
                            text=True, timeout=60)
        assert json.loads(cp.stdout)["config"]["Cmd"] == ["cat", "/a"]
    # umoci reads the OCI layout inside the archive
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-C", str(layout), "-xf", str(oci)], check=True)
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "localhost/arch:1"
    cp = subprocess.run(["umoci", "ls", "--layout", str(layout)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and cp.stdout.split() == ["localhost/arch:1"], cp.stderr
    cp = subprocess.run(["umoci", "stat", "--image", f"{layout}:localhost/arch:1", "--json"], capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0 and len(json.loads(cp.stdout)["history"]) >= 2, cp.stderr
    # the archive loads back and runs
    env("load", "-i", str(dock), check=True)
    assert env("run", "--rm", "localhost/arch:1", check=True).stdout == "A\n"
    cp = build(env, ctx, "-o", "type=oci", check=False)
    assert cp.returncode == 125 and cp.stderr.splitlines() == ["Error: -o type=oci needs dest="]
    cp = build(env, ctx, "-o", f"type=oci,dest={tmp_path / 'missing' / 'x.tar'}", check=False)
    assert cp.returncode == 125 and "must be a file in an existing directory" in cp.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".build-archive-")] == []
    assert_nothing_left(env)


def test_cache_to_and_from_a_registry(env: Env, tmp_path: Path, busybox_rootfs: Path) -> None:
    import subprocess

    from helpers.docker_registry import DockerRegistry

    df = ("FROM localhost/busybox AS builder\nCOPY a.txt /a\nRUN cat /a /a > /b\n"
          "FROM localhost/busybox\nCOPY --from=builder /b /b\nRUN cat /b > /c\nCMD [\"cat\", \"/c\"]\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "A\n"})
    with DockerRegistry(tmp_path / "reg") as reg:
        cmax, cmin = f"{reg.host}/cache/app:max", f"{reg.host}/cache/app:min"
        first = build(env, ctx, "-q", "--cache-to", f"type=registry,ref={cmax},mode=max").stdout.strip()
        build(env, ctx, "--cache-to", f"type=registry,ref={cmin}")   # mode=min, BuildKit's default
        # BuildKit's layout: an OCI manifest with the cacheconfig.v0 config, the layer blobs as layers
        cp = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{cmax}"],
                            capture_output=True, text=True, timeout=60)
        man = json.loads(cp.stdout)
        assert man["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert man["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"
        env("tag", first, "localhost/first", check=True)
        final = config_doc(env, "localhost/first")["rootfs"]["diff_ids"]
        max_diffs = [x["annotations"]["containerd.io/uncompressed"] for x in man["layers"]]
        min_layers = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                                f"docker://{cmin}"], capture_output=True, text=True).stdout)["layers"]
        # min: the final stage's layers; max: the builder stage's too (its COPY layer)
        assert sorted(x["annotations"]["containerd.io/uncompressed"] for x in min_layers) == sorted(set(final))
        assert set(final) < set(max_diffs) and len(max_diffs) == len(set(max_diffs))
        # a fresh store: every step of every stage from the registry
        other = Env(tmp_path / "root2", tmp_path / "run2", tmp_path)
        build_image(other.root, busybox_rootfs)
        try:
            cp = build(other, ctx, "--cache-from", f"type=registry,ref={cmax}", "-t", "localhost/fromreg")
            st = steps(cp.stderr)
            assert st and all(v == "CACHED" for k, v in st.items() if "FROM" not in k), st
            assert first in cp.stdout
            assert other("run", "--rm", "localhost/fromreg", check=True).stdout == "A\nA\n"
            # mode=min on a third store: the builder stage runs, the final stage's steps are hits
            third = Env(tmp_path / "root3", tmp_path / "run3", tmp_path)
            build_image(third.root, busybox_rootfs)
            try:
                cp = build(third, ctx, "--cache-from", cmin)   # a bare reference is a registry cache
                st = steps(cp.stderr)
                assert st["[builder 3/3] RUN cat /a /a > /b"] == "DONE", st
                assert st["[stage-1 2/3] COPY --from=builder /b /b"] == "CACHED", st
                assert st["[stage-1 3/3] RUN cat /b > /c"] == "CACHED", st
                assert first in cp.stdout
                assert_nothing_left(third)
            finally:
                _kill_build_containers(third.runroot)
                third.cleanup()
            # a cache that is not there yet: a warning, the build goes on
            cp = build(other, ctx, "--cache-from", f"type=registry,ref={reg.host}/cache/none:x", "--no-cache")
            assert f"WARNING: cache import: {reg.host}/cache/none:x: not found (building without it)" in cp.stderr
            cp = build(other, ctx, "--cache-to", "type=registry,ref=a//b", check=False)
            assert cp.returncode == 125 and cp.stderr.splitlines()[-1].startswith(
                "Error: invalid cache reference 'a//b': ")
            cp = build(other, ctx, "--cache-to", f"type=registry,ref={cmax},mode=all", check=False)
            assert cp.returncode == 125 and cp.stderr.splitlines() == ["Error: invalid cache mode 'all': min or max"]
            assert_nothing_left(other)
        finally:
            _kill_build_containers(other.runroot)
            other.cleanup()
    assert_nothing_left(env)


def _du(env: Env) -> dict:
    doc = json.loads(env("builder", "du", "--format", "json", check=True).stdout)
    return {r["type"]: (r["count"], r["size"]) for r in doc["rows"]} | {"total": doc["total"]}


def test_builder_prune_keep_storage_and_until_and_du(env: Env, tmp_path: Path) -> None:
    import time

    # two builds with ~1 MB layers of random data (incompressible), no image kept
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        ctx = _ctx(tmp_path / name, f"FROM localhost/busybox\nRUN head -c 1048576 /dev/urandom > /{name}\n")
        build(env, ctx, "-o", f"type=local,dest={tmp_path / name / 'out'}")
        if name == "old":
            for p in (env.root / "buildcache").glob("*.json"):
                if len(p.stem) == 64:
                    os.utime(p, (time.time() - 7200, time.time() - 7200))   # last used two hours ago
    du = _du(env)
    assert du["steps"][0] == 2 and du["layer blobs (cache only)"][0] == 2
    assert 2 << 20 <= du["layer blobs (cache only)"][1] < 3 << 20
    # -o type=local unpacked each RUN layer: 1 MB each on disk too
    assert du["unpacked layers (cache only)"][0] == 2 and du["unpacked layers (cache only)"][1] >= 2 << 20
    assert du["total"] == du["steps"][1] + du["layer blobs (cache only)"][1] + du["cache mounts"][1] \
        + du["unpacked layers (cache only)"][1]
    table = env("builder", "du", check=True).stdout.splitlines()
    assert table[0].split() == ["TYPE", "COUNT", "SIZE"] and table[-1].startswith("Total: ")
    # --filter until=1h: the step last used two hours ago goes, with its layer blob
    out = env("builder", "prune", "-f", "--filter", "until=1h", check=True).stdout.splitlines()
    assert out[0] == "Deleted 1 build cache entries" and out[1].startswith("Total reclaimed space: 2.1")
    du = _du(env)
    assert du["steps"][0] == 1 and du["layer blobs (cache only)"][0] == 1
    assert du["unpacked layers (cache only)"][0] == 1
    # the kept step is a hit
    assert steps(build(env, tmp_path / "new" / "ctx", "-o", f"type=local,dest={tmp_path / 'o2'}").stderr)[
        "[2/2] RUN head -c 1048576 /dev/urandom > /new"] == "CACHED"
    # --keep-storage above the usage keeps all; below it removes the step and its blob
    out = env("builder", "prune", "-f", "--keep-storage", "10m", check=True).stdout.splitlines()
    assert out[0] == "Deleted 0 build cache entries"
    out = env("builder", "prune", "-f", "--keep-storage", "512k", check=True).stdout.splitlines()
    assert out[0] == "Deleted 1 build cache entries"
    du = _du(env)
    assert du["steps"][0] == 0 and du["layer blobs (cache only)"] == (0, 0)
    assert du["unpacked layers (cache only)"] == (0, 0)
    for bad, msg in ((["--keep-storage", "lots"], "invalid --keep-storage 'lots'"),
                     (["--filter", "label=x"], "invalid filter 'label=x'")):
        cp = env("builder", "prune", "-f", *bad)
        assert cp.returncode == 125 and cp.stderr.startswith("Error: " + msg), cp.stderr
    assert_nothing_left(env)


def test_network_default_is_the_default_bridge_through_the_network_layer(env: Env, tmp_path: Path) -> None:
    from helpers.netns import netns

    df = ("FROM localhost/busybox\nRUN --network=default ip -4 -o addr show eth0 > /addr && cat /etc/hosts > /h\n"
          "RUN --network=none ip -o link > /links\nRUN ip -4 -o addr show eth0 > /addr2\n")
    ctx = _ctx(tmp_path, df)
    with netns("b") as ns:   # pallet's "host" for the test: the bridge and the veths live in it
        env.prefix = ["nsenter", f"--net={ns.path}", "--"]
        try:
            build(env, ctx, "-t", "localhost/bridged", "--network", "default")
            out = env("run", "--rm", "--network", "none", "localhost/bridged", "cat", "/addr", "/h", "/links",
                      "/addr2", check=True).stdout
            lines = out.splitlines()
            addr = re.match(r"2: eth0 +inet (172\.17\.0\.\d+)/16 ", lines[0])
            assert addr, out
            assert f"{addr.group(1)}\tbuildkitsandbox" in lines   # /etc/hosts names the RUN's address
            links = [ln for ln in lines if re.match(r"\d+: ", ln) and "inet" not in ln]
            assert [ln.split(":")[1].strip() for ln in links] == ["lo"]          # --network=none: loopback only,
            assert "<LOOPBACK,UP,LOWER_UP>" in links[0]                         # and up
            assert re.match(r"2: eth0 +inet 172\.17\.0\.\d+/16 ", lines[-1])   # the build's --network default
            (ctx / "Dockerfile").write_text("FROM localhost/busybox\nRUN --network=default ip -o addr; exit 3\n")
            cp = build(env, ctx, check=False)
            assert cp.returncode == 1 and "exit code: 3" in cp.stderr.splitlines()[-1]
            # the leases are given back and the veths gone (after the failing RUN too)
            (doc,) = json.loads(env("network", "inspect", "bridge", check=True).stdout)
            assert doc["Containers"] == {}
            assert [n for n in ns.links() if n.startswith("veth")] == []
        finally:
            env.prefix = []
    assert_nothing_left(env)


def test_the_lease_of_a_killed_build_is_given_back(env: Env, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from helpers.netns import netns

    ctx = _ctx(tmp_path, "FROM localhost/busybox\nRUN --network=default echo started; sleep 2\n")
    with netns("k") as ns:
        env.prefix = ["nsenter", f"--net={ns.path}", "--"]
        try:
            p = subprocess.Popen(env.argv("build", "--progress", "plain", str(ctx)), env=env.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 30
                seen = ""
                while not re.search(r"^#\d+ \d+\.\d+ started$", seen, re.M) and time.monotonic() < deadline:
                    seen += p.stderr.readline()
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=20)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            assert len(list((env.runroot / "build" / "leases").iterdir())) == 1   # SIGKILL: nothing detached
            cp = env("builder", "prune", "-f", check=True)
            assert "Deleted 1 RUN containers of builds that were killed" in cp.stdout, cp.stdout
            assert "Gave back 1 network leases of builds that were killed" in cp.stdout, cp.stdout
            assert list((env.runroot / "build" / "leases").iterdir()) == []
            (doc,) = json.loads(env("network", "inspect", "bridge", check=True).stdout)
            assert doc["Containers"] == {}
            assert [n for n in ns.links() if n.startswith("veth")] == []
            assert "Gave back" not in env("builder", "prune", "-f", check=True).stdout
        finally:
            env.prefix = []
