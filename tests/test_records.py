"""pallet.records: the dataclass subset the hot-path types use, without importing dataclasses."""

import subprocess
import sys

import pytest

from pallet.records import FrozenInstanceError, field, fields, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record(frozen=True, slots=True)
class Key:
    algorithm: str
    hex: str


@record
class Point3(Point):
    z: int = 0


def test_init_defaults_factories_and_errors():
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    assert Point(1).tags is not Point(1).tags
    assert Point(1, 2, ["a"]) == Point(x=1, y=2, tags=["a"])
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        Point(1, w=2)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="takes 3 positional arguments"):
        Point(1, 2, [], 4)


def test_repr_eq_hash_and_mutability():
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    assert Point(1) != Point(2)
    assert Point(1) != (1, 0, [])
    with pytest.raises(TypeError):
        hash(Point(1))  # mutable records are unhashable, as with @dataclass(eq=True)
    p = Point(1)
    p.y = 5
    assert p.y == 5


def test_frozen():
    k = Key("sha256", "ab")
    assert k == Key("sha256", "ab") and hash(k) == hash(Key("sha256", "ab"))
    assert {k: 1}[Key("sha256", "ab")] == 1
    with pytest.raises(FrozenInstanceError):
        k.hex = "cd"
    with pytest.raises(AttributeError):
        del k.hex


def test_inheritance_fields_and_replace():
    p = Point3(1, 2, ["t"], 3)
    assert fields(p) == ("x", "y", "tags", "z")
    assert replace(p, z=9) == Point3(1, 2, ["t"], 9)
    assert replace(Key("sha256", "ab"), hex="cd") == Key("sha256", "cd")


def test_post_init_and_default_order():
    @record
    class C:
        a: int
        b: int = 1

        def __post_init__(self) -> None:
            self.c = self.a + self.b

    assert C(2).c == 3
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @record
        class Bad:
            a: int = 0
            b: int


def test_importing_records_does_not_import_dataclasses():
    code = "import sys, pallet.records; print('dataclasses' in sys.modules, 'inspect' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
