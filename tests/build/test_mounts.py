"""pallet.build.mounts: RUN --mount values and BuildKit's defaults."""

from __future__ import annotations

import pytest

from pallet.build.mounts import Mount, MountError, parse_mount


@pytest.mark.parametrize(("value", "mount"), [
    ("target=/src", Mount(type="bind", target="/src", readonly=True)),
    ("type=bind,source=.,target=/src,rw", Mount(type="bind", source=".", target="/src", readonly=False)),
    ("type=bind,from=build,src=/out,dst=/in,readonly=false",
     Mount(type="bind", from_="build", source="/out", target="/in", readonly=False)),
    ("type=cache,target=/root/.cache", Mount(type="cache", target="/root/.cache", cache_id="/root/.cache",
                                             cache_sharing="shared")),
    ("type=cache,id=pip,target=/c,sharing=locked,mode=0700,uid=1000,gid=1000",
     Mount(type="cache", target="/c", cache_id="pip", cache_sharing="locked", mode=0o700, uid=1000, gid=1000)),
    ("type=tmpfs,target=/tmp,size=64m", Mount(type="tmpfs", target="/tmp", size="64m")),
    ("type=secret,id=token", Mount(type="secret", target="/run/secrets/token", cache_id="token")),
    ("type=secret,id=aws,target=/root/.aws/credentials,required",
     Mount(type="secret", target="/root/.aws/credentials", cache_id="aws", required=True)),
    ("type=secret,id=tok,env=TOKEN", Mount(type="secret", cache_id="tok", env="TOKEN")),
    ("type=ssh", Mount(type="ssh", target="/run/buildkit/ssh_agent.0", cache_id="default")),
    ('type=bind,"target=/a,b"', Mount(type="bind", target="/a,b", readonly=True)),
])
def test_parse_mount(value: str, mount: Mount) -> None:
    assert parse_mount(value) == mount


def test_ssh_sockets_are_numbered() -> None:
    assert parse_mount("type=ssh", ssh_index=2).target == "/run/buildkit/ssh_agent.2"


@pytest.mark.parametrize(("value", "message"), [
    ("type=nfs,target=/x", "unsupported mount type 'nfs'"),
    ("type=bind", "mount target is required"),
    ("type=cache,target=/x,sharing=sometimes", "unsupported sharing value 'sometimes'"),
    ("type=bind,target=/x,sharing=locked", "sharing is only supported for cache mounts"),
    ("type=cache,target=/x,uid=me", "invalid value for uid: me"),
    ("type=bind,target=/x,colour=blue", "unexpected key 'colour' in 'colour=blue'"),
    ("type=bind,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=secret", "one of source, target required"),
])
def test_mount_errors(value: str, message: str) -> None:
    with pytest.raises(MountError) as e:
        parse_mount(value)
    assert str(e.value) == message
