"""Restart policies (carried out by the monitor, docker's backoff) and health checks."""

from __future__ import annotations

import json

import pytest

from engine.engine_support import IMAGE, build_image, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _state(env, cid) -> dict:
    return json.loads(env("inspect", cid, check=True).stdout)[0]


def test_on_failure_restarts_with_growing_delays_and_stops_at_n(pallet_env, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    cid = pallet_env("run", "-d", "--restart", "on-failure:3", "-v", f"{log}:/log", IMAGE, "sh", "-c",
                     "cut -d' ' -f1 /proc/uptime >> /log/t; exit 3", check=True).stdout.strip()
    assert wait_for(lambda: (lambda s: s["State"]["Status"] == "exited" and s["RestartCount"] == 3)(
        _state(pallet_env, cid)), timeout=60)
    times = [float(x) for x in (log / "t").read_text().split()]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for i, gap in enumerate(gaps):          # at least the backoff: 100 ms, 200 ms, 400 ms
        assert gap >= 0.1 * 2 ** i - 0.02, gaps
    s = _state(pallet_env, cid)
    assert s["State"]["ExitCode"] == 3 and s["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                                              "MaximumRetryCount": 3}
    # success does not restart under on-failure
    cid2 = pallet_env("run", "-d", "--restart", "on-failure", IMAGE, "true", check=True).stdout.strip()
    assert pallet_env("wait", cid2, check=True).stdout.strip() == "0"
    assert _state(pallet_env, cid2)["RestartCount"] == 0


def test_update_restart_policy_of_running_container(pallet_env):
    cid = pallet_env("run", "-d", IMAGE, "sh", "-c", "sleep 2; exit 1", check=True).stdout.strip()
    pallet_env("update", "--restart", "on-failure:2", cid, check=True)
    assert wait_for(lambda: (lambda s: s["State"]["Status"] == "exited" and s["RestartCount"] == 2)(
        _state(pallet_env, cid)), timeout=90)


def test_always_until_stopped(pallet_env):
    cid = pallet_env("run", "-d", "--restart", "always", IMAGE, "sh", "-c", "sleep 0.2", check=True).stdout.strip()
    assert wait_for(lambda: _state(pallet_env, cid)["RestartCount"] >= 2, timeout=60)
    assert wait_for(lambda: "Restarting (0)" in pallet_env("ps", "-a", check=True).stdout, timeout=30)
    pallet_env("stop", "-t", "1", cid, check=True)
    n = _state(pallet_env, cid)["RestartCount"]
    s = wait_for(lambda: (lambda s: s if s["State"]["Status"] == "exited" else None)(_state(pallet_env, cid)),
                 timeout=30)
    assert s and s["RestartCount"] <= n + 1
    import time

    time.sleep(1.5)
    s2 = _state(pallet_env, cid)
    assert s2["State"]["Status"] == "exited" and s2["RestartCount"] == s["RestartCount"]
    cid = pallet_env("run", "-d", "--restart", "always", IMAGE, "sh", "-c", "sleep 0.1", check=True).stdout.strip()
    assert wait_for(lambda: _state(pallet_env, cid)["RestartCount"] >= 2, timeout=60)
    pallet_env("rm", "-f", cid, check=True)
    time.sleep(1)
    assert cid not in pallet_env.ids()
    assert not any(cid in line for line in open("/proc/self/mounts"))
    cp = pallet_env("run", "--rm", "--restart", "always", IMAGE, "true")
    assert cp.returncode == 125 and "--restart and --rm" in cp.stderr


def test_health_starting_healthy_unhealthy(pallet_env):
    cid = pallet_env("run", "-d", "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s",
                     "--health-retries", "2", "--health-start-period", "120s", IMAGE, "sleep", "300",
                     check=True).stdout.strip()

    def health():
        return _state(pallet_env, cid)["State"]["Health"]

    assert health()["Status"] == "starting"
    assert wait_for(lambda: len(health()["Log"]) >= 2, timeout=60)
    assert health()["Status"] == "starting"           # failures in the start period do not count
    assert "(health: starting)" in pallet_env("ps", check=True).stdout
    pallet_env("exec", cid, "touch", "/tmp/ok", check=True)
    assert wait_for(lambda: health()["Status"] == "healthy", timeout=60)
    assert "(healthy)" in pallet_env("ps", check=True).stdout
    assert pallet_env("ps", "-q", "--no-trunc", "--filter", "health=healthy", check=True).stdout.split() == [cid]
    h = pallet_env("healthcheck", "run", cid)
    assert h.returncode == 0 and h.stdout.strip() == "healthy"
    pallet_env("exec", cid, "rm", "/tmp/ok", check=True)
    assert wait_for(lambda: health()["Status"] == "unhealthy", timeout=60)
    h = health()
    assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1 and len(h["Log"]) <= 5
    assert pallet_env("healthcheck", "run", cid).returncode == 1


def test_image_healthcheck_and_overrides(pallet_env, image_rootfs):
    build_image(pallet_env.root, image_rootfs, "localhost/bbhealth:latest",
                {"Cmd": ["sleep", "300"], "Env": ["PATH=/bin:/sbin"],
                 "Healthcheck": {"Test": ["CMD", "true"], "Interval": 3600 * 10 ** 9, "Retries": 5}})
    cid = pallet_env("create", "--health-interval", "1s", "localhost/bbhealth", check=True).stdout.strip()
    hc = _state(pallet_env, cid)["Config"]["Healthcheck"]
    assert hc == {"Test": ["CMD", "true"], "Interval": 10 ** 9, "Retries": 5}
    pallet_env("start", cid, check=True)
    assert wait_for(lambda: _state(pallet_env, cid)["State"]["Health"]["Status"] == "healthy", timeout=60)
    cid2 = pallet_env("create", "--no-healthcheck", "localhost/bbhealth", check=True).stdout.strip()
    assert _state(pallet_env, cid2)["Config"]["Healthcheck"] == {"Test": ["NONE"], "Interval": 3600 * 10 ** 9,
                                                                   "Retries": 5}
    assert "Health" not in _state(pallet_env, cid2)["State"]
