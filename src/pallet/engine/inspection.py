"""docker's inspect JSON of a container (State, Config, HostConfig, Mounts, NetworkSettings, GraphDriver)."""

from __future__ import annotations

from pallet.engine.model import Container


class Inspection:
    """Engine methods (a mixin of `core.Engine`). What inspect reads beyond the row (the snapshot, the
    networks, the health state, the mounts) is imported when called: not on `run`'s path."""

    def inspect(self, c: Container) -> dict:
        from pallet.engine import networking, snapshots
        from pallet.engine.model import rfc3339

        status = "removing" if c.status == "removing" else c.status
        state = {
            "Status": status,
            "Running": c.status == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": c.oom_killed,
            "Dead": False,
            "Pid": c.pid or 0 if c.status == "running" else 0,
            "ExitCode": c.exit_code or 0,
            "Error": c.error or "",
            "StartedAt": rfc3339(c.started_at),
            "FinishedAt": rfc3339(c.finished_at),
        }
        from pallet.engine.health import extend_state
        from pallet.engine.volumes import inspect_mounts

        extend_state(self, c, state)
        cfg = dict(c.Config)
        try:
            gd = snapshots.graph_driver(self, c)
        except Exception:  # noqa: BLE001
            gd = {"Name": "", "Data": {}}
        return {
            "Id": c.id,
            "Created": rfc3339(c.created),
            "Path": (c.Config.get("Entrypoint") or c.Config.get("Cmd") or [""])[0],
            "Args": ((c.Config.get("Entrypoint") or []) + (c.Config.get("Cmd") or []))[1:],
            "State": state,
            "Image": c.image_id,
            "ResolvConfPath": str(self.dir(c.id) / "resolv.conf"),
            "HostnamePath": str(self.dir(c.id) / "hostname"),
            "HostsPath": str(self.dir(c.id) / "hosts"),
            "LogPath": str(self.log_path(c.id)),
            "Name": "/" + c.name,
            "RestartCount": c.restart_count,
            "Driver": gd.get("Name", ""),
            "Platform": "linux",
            "HostConfig": dict(c.HostConfig),
            "GraphDriver": gd,
            "Mounts": inspect_mounts(c),
            "Config": cfg,
            "NetworkSettings": networking.settings(self, c),
        }
