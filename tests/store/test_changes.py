"""`--change` instructions in Dockerfile syntax (docker import -c / podman import --change)."""

from __future__ import annotations

import pytest

from pallet.store.changes import InvalidChange, apply_changes, split_words


def cfg(*changes: str) -> dict:
    return apply_changes({}, list(changes))


@pytest.mark.parametrize("change,expected", [
    ('CMD ["sh"]', {"Cmd": ["sh"]}),
    ('CMD ["sh", "-c", "echo hi"]', {"Cmd": ["sh", "-c", "echo hi"]}),
    ("CMD echo hi there", {"Cmd": ["/bin/sh", "-c", "echo hi there"]}),
    ("CMD [not json", {"Cmd": ["/bin/sh", "-c", "[not json"]}),
    ("CMD=/bin/sh", {"Cmd": ["/bin/sh", "-c", "/bin/sh"]}),
    ('ENTRYPOINT ["/init"]', {"Entrypoint": ["/init"]}),
    ("cmd sh", {"Cmd": ["/bin/sh", "-c", "sh"]}),
    ("ENV A=1", {"Env": ["A=1"]}),
    ('ENV A=1 B="two words" C=\'x y\' D=a\\ b', {"Env": ["A=1", "B=two words", "C=x y", "D=a b"]}),
    ("ENV PATH /usr/bin:/bin", {"Env": ["PATH=/usr/bin:/bin"]}),
    ("ENV MSG hello   world", {"Env": ["MSG=hello world"]}),
    ("WORKDIR /app", {"WorkingDir": "/app"}),
    ("USER nobody", {"User": "nobody"}),
    ("EXPOSE 80", {"ExposedPorts": {"80/tcp": {}}}),
    ("EXPOSE 53/udp 8000-8001", {"ExposedPorts": {"53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}}),
    ('LABEL a=1 "b c"="d e"', {"Labels": {"a": "1", "b c": "d e"}}),
    ('VOLUME ["/data", "/logs"]', {"Volumes": {"/data": {}, "/logs": {}}}),
    ("VOLUME /data /logs", {"Volumes": {"/data": {}, "/logs": {}}}),
    ("STOPSIGNAL SIGTERM", {"StopSignal": "SIGTERM"}),
])
def test_changes(change, expected):
    assert cfg(change) == expected


def test_changes_accumulate_and_override():
    c = cfg("ENV A=1 B=2", "ENV A=3", "WORKDIR /a", "WORKDIR b/../c", "LABEL x=1", "LABEL y=2", "CMD a", 'CMD ["b"]')
    assert c == {"Env": ["B=2", "A=3"], "WorkingDir": "/a/c", "Labels": {"x": "1", "y": "2"}, "Cmd": ["b"]}


@pytest.mark.parametrize("change,msg", [
    ("RUN echo", "not a supported"),
    ("FROM busybox", "not a supported"),
    ("CMD", "INSTRUCTION VALUE"),
    ("", "INSTRUCTION VALUE"),
    ("EXPOSE 0", "invalid port"),
    ("EXPOSE 70000", "invalid port"),
    ("EXPOSE 80/icmp", "invalid port"),
    ("LABEL justakey", "KEY=VALUE"),
    ("ENV ONLYKEY", "two arguments"),
    ('ENV A="open', "unterminated"),
    ("USER a b", "exactly one"),
])
def test_bad_changes(change, msg):
    with pytest.raises(InvalidChange, match=msg):
        cfg(change)


def test_split_words():
    assert split_words(r'a "b c" d\ e \'f\'', "x") == ["a", "b c", "d e", "'f'"]
    assert split_words("", "x") == []
