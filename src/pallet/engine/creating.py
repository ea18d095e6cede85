"""Creating a container: the options checked, the image resolved (or pulled), the row inserted, the
snapshot, /etc files and volumes set up; and the bundle (config.json) its runtime starts."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pallet import jsonfast
from pallet.engine import defaults
from pallet.engine.events import container_event
from pallet.engine.model import Container
from pallet.engine.names import validate_name
from pallet.engine.options import CreateOptions
from pallet.engine.signals import parse_signal
from pallet.errors import PalletError
from pallet.fsutil import rmtree


class Creating:
    """Engine methods (a mixin of `core.Engine`)."""

    build_config = staticmethod(defaults.build_config)

    def create(self, opts: CreateOptions) -> Container:
        """Check the options, resolve (or pull) the image, insert the container's row and set it up
        (`set_up`: snapshot, files, volumes). `c.extra["rootfs"]` says where its rootfs is mounted (for
        the monitor `pallet run` forked beforehand: it need not look the snapshot up again)."""
        rec, config, host, net_endpoints = self.plan(opts)
        cid = os.urandom(32).hex()
        name = validate_name(opts.name) if opts.name else None
        c = Container(cid, name or "", rec.id, opts.config.Image, time.time(), host["Runtime"],
                      {"Config": config, "HostConfig": host}, "created")
        if net_endpoints:
            c.config["NetworkingConfig"] = {"EndpointsConfig": net_endpoints}
        # the directory first: a row always has one, so that `rm` can lock and remove a container whose
        # create was killed half-way (only an invisible empty directory can be left without a row)
        self.dir(cid).mkdir(parents=True)
        try:
            self._insert(c, explicit_name=name is not None)
        except BaseException:
            rmtree(self.dir(cid))
            raise
        c.extra["rootfs"] = self.set_up(c, rec)
        container_event(self, c, "create")
        return c

    def plan(self, opts: CreateOptions, resolve=None) -> tuple:
        """`create`'s checks, in docker's order, and what they make, before anything is written:
        (image record, Config, HostConfig, EndpointsConfig). `resolve(opts)` finds the image (default:
        `resolve_image`, which pulls by `opts.pull`). Bad input raises; nothing is created."""
        from pallet.engine.runtimes import default_runtime

        proc, net = opts.host_options, opts.networking
        proc.Runtime = proc.Runtime or default_runtime()
        self.runtime(proc.Runtime)   # fails early for an unknown runtime
        if net.plain():
            net_mode, net_endpoints = "none", {}   # (the hot path: nothing to check)
        else:
            from pallet.engine import networking

            net_mode, net_endpoints = networking.plan(self, net)
            if opts.config.ExposedPorts and net_mode.startswith("container:"):
                raise PalletError("conflicting options: port exposing and the container type network mode")
        if opts.config.StopSignal:
            parse_signal(opts.config.StopSignal)
        if proc.Init:
            from pallet.engine.spec import require_init_binary

            require_init_binary()
        rec = (resolve or self.resolve_image)(opts)
        image_config = self.store.config(rec)
        if opts.platform:
            from pallet.oci.documents import Platform

            want = Platform.parse(opts.platform)
            if (want.os, want.architecture) != (image_config.os, image_config.architecture):
                raise PalletError(f"image {opts.config.Image} is {image_config.platform}, not {opts.platform}")
        config, host = self.build_config(opts, image_config)
        host["NetworkMode"] = net_mode
        if net.PortBindings or opts.config.ExposedPorts:
            from pallet.engine import ports

            exposed = dict(config.get("ExposedPorts") or {})
            exposed.update(ports.parse_expose(opts.config.ExposedPorts))
            if net.PortBindings and net_mode != "host":   # (host: docker's warning, the ports are discarded)
                host["PortBindings"] = ports.check(net.PortBindings)
                exposed.update({k: {} for k in host["PortBindings"]})
            config["ExposedPorts"] = exposed
        from pallet.engine.spec import command

        if not command(config):
            raise PalletError("no command specified: the image has no Entrypoint or Cmd; give one after the image")
        return rec, config, host, net_endpoints

    def set_up(self, c: Container, rec) -> str:
        """The second half of `create`: the container's snapshot, its /etc files and its volumes. On
        failure nothing of the container is left, its row included. Returns the (mounted) rootfs."""
        try:
            rootfs = self._setup_files(c, rec)
            if c.HostConfig.get("Binds") or c.HostConfig.get("Mounts") or c.HostConfig.get("Tmpfs") or \
                    c.Config.get("Volumes") or c.HostConfig.get("VolumesFrom"):
                from pallet.engine import volumes

                volumes.setup(self, c, rootfs)
        except BaseException:
            self._destroy(c, quiet=True)
            raise
        return rootfs

    def _setup_files(self, c: Container, rec) -> str:
        """The container's snapshot (mounted) and /etc files; the rootfs path."""
        from pallet.engine import snapshots
        from pallet.engine.spec import etc_hosts, resolv_conf
        from pallet.engine.users import resolve_user

        d = self.dir(c.id)   # (made by `create` before the row)
        rootfs = snapshots.create(self, c, rec)
        user = resolve_user(rootfs, c.Config.get("User"))
        wd = c.Config.get("WorkingDir") or ""
        if wd and not wd.startswith("/"):
            raise PalletError(f"the working directory {wd!r} is invalid: it must be an absolute path")
        if wd:
            snapshots.mkdir_in_root(rootfs, wd)
        network = c.HostConfig["NetworkMode"]
        hostname = c.Config.get("Hostname") or (os.uname().nodename if network == "host" else c.short_id)
        c.Config["Hostname"] = hostname
        c.config["User"] = {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids,
                            "home": user.home}
        (d / "hostname").write_text(hostname + "\n")
        extra = c.HostConfig.get("ExtraHosts") or []
        if network not in ("none", "host") or any(h.endswith(":host-gateway") for h in extra):
            from pallet.engine.networking import hosts_text

            (d / "hosts").write_text(hosts_text(self, c))
        else:
            (d / "hosts").write_text(etc_hosts(hostname, network, extra))
        hc = c.HostConfig
        if network not in ("none", "host") and not network.startswith("container:"):
            from pallet.engine.networking import resolv_text

            (d / "resolv.conf").write_text(resolv_text(self, c))    # (a user network's DNS server)
        else:
            (d / "resolv.conf").write_text(resolv_conf(network, hc.get("Dns"), hc.get("DnsSearch"),
                                                       hc.get("DnsOptions")))
        self._update(c.id, config=jsonfast.dumps(c.config))
        return rootfs

    def prepare_bundle(self, c: Container, rootfs: str | None = None) -> Path:
        """Mount the snapshot unless `rootfs` says where it is mounted, and write config.json; returns
        the bundle directory."""
        from pallet.engine.spec import build_spec
        from pallet.engine.users import ExecUser

        if rootfs is None:
            from pallet.engine import snapshots

            rootfs = snapshots.mount(self, c)
        u = c.config.get("User") or {}
        user = ExecUser(u.get("uid", 0), u.get("gid", 0), u.get("additionalGids") or [], u.get("home") or "/")
        netns = None
        if (c.HostConfig.get("NetworkMode") or "").startswith("container:"):
            from pallet.engine.networking import check_container_mode

            netns = check_container_mode(self, c.HostConfig["NetworkMode"])
        spec = build_spec(cid=c.id, config=c.Config, host_config=c.HostConfig, rootfs=rootfs,
                          files_dir=str(self.dir(c.id)), user=user, hostname=c.Config["Hostname"],
                          cgroups_path=f"pallet/{c.id}", netns_path=netns)
        from pallet.engine.limits import apply_host_config

        apply_host_config(spec, c)
        from pallet.fsutil import atomic_write

        atomic_write(self.dir(c.id) / "config.json", jsonfast.dumps(spec).encode(), fsync=False)
        return self.dir(c.id)
