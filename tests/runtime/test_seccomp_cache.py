"""The runtime's cache of libseccomp-compiled BPF programs (pallet.linux.seccomp.compile_filter_cached)."""

from __future__ import annotations

import os

import pytest
from tests.runtime.conftest import getpriority_filter_in_child

from pallet.linux import seccomp as S

pytestmark = pytest.mark.root

PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
           "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                         "args": [{"index": 0, "value": os.PRIO_PGRP, "op": "SCMP_CMP_EQ"}]},
                        {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}


@pytest.mark.skipif(os.uname().machine not in ("x86_64", "aarch64"), reason="no seccomp(2) number known")
def test_second_compile_loads_the_exported_program(tmp_path):
    tmp_path = tmp_path / "cache"   # created on first use
    first = S.compile_filter_cached(PROFILE, str(tmp_path))
    assert isinstance(first, S.Filter)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".bpf" and files[0].stat().st_size % 8 == 0
    assert getpriority_filter_in_child(first) == 0
    second = S.compile_filter_cached(PROFILE, str(tmp_path))
    assert isinstance(second, S.BpfFilter)
    assert getpriority_filter_in_child(second) == 0


def test_profiles_and_flags_are_keys(tmp_path):
    S.compile_filter_cached(PROFILE, str(tmp_path))
    other = dict(PROFILE, flags=["SECCOMP_FILTER_FLAG_LOG"])
    f = S.compile_filter_cached(other, str(tmp_path))
    assert isinstance(f, S.Filter)
    assert len(list(tmp_path.iterdir())) == 2
    g = S.compile_filter_cached(other, str(tmp_path))
    assert isinstance(g, S.BpfFilter) and g.flags == 2
    assert getpriority_filter_in_child(g) == 0


def test_a_damaged_cache_file_is_recompiled(tmp_path):
    S.compile_filter_cached(PROFILE, str(tmp_path))
    (path,) = tmp_path.iterdir()
    good = path.read_bytes()
    path.write_bytes(good[:-3])
    f = S.compile_filter_cached(PROFILE, str(tmp_path))
    assert isinstance(f, S.Filter) and path.read_bytes() == good
    f.release()


def test_bad_profiles_are_not_cached(tmp_path):
    with pytest.raises(ValueError, match="unknown syscall"):
        S.compile_filter_cached({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]},
                                str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_no_cache_root_compiles(tmp_path):
    f = S.compile_filter_cached(PROFILE, None)
    assert isinstance(f, S.Filter)
    f.release()
