"""`record`: the part of `@dataclasses.dataclass` that pallet's hot-path types use.

Why not dataclasses: `import dataclasses` imports inspect, ast, dis, tokenize and
friends — about 30 ms here, more than the rest of `pallet run`'s Python — and every
`@dataclass` compiles its generated methods when the module is imported. A record's
methods are generic instead (they look the field names up when called), so defining
one costs nothing at import and nothing is compiled.

Supported: annotated fields in order, defaults, `field(default_factory=...)`,
`frozen=True` (assignment raises `FrozenInstanceError`, hash from the fields),
`__post_init__`, `__repr__` and `__eq__` by field values, fields inherited from a base
record. `slots=` is accepted and ignored (records keep a `__dict__`).
"""

from __future__ import annotations

__all__ = ["FrozenInstanceError", "field", "fields", "record", "replace"]

_MISSING = object()


class FrozenInstanceError(AttributeError):
    pass


class _Field:
    __slots__ = ("default", "factory")

    def __init__(self, default: object, factory: object) -> None:
        self.default = default
        self.factory = factory


def field(*, default: object = _MISSING, default_factory: object = _MISSING):
    """Like dataclasses.field, for `default_factory` (or a plain default)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory)


def fields(obj_or_cls) -> tuple[str, ...]:
    """The record's field names, in order."""
    return obj_or_cls.__record_fields__


def replace(obj, **changes):
    """A copy of a record with some fields changed (dataclasses.replace)."""
    kw = {name: obj.__dict__[name] for name in obj.__record_fields__}
    kw.update(changes)
    return type(obj)(**kw)


def record(cls=None, /, *, frozen: bool = False, slots: bool = False):
    """Class decorator: `@record`, `@record(frozen=True)`."""

    def wrap(cls):
        return _build(cls, frozen)

    return wrap if cls is None else wrap(cls)


def _build(cls, frozen: bool):
    names: list[str] = []
    defaults: dict[str, object] = {}
    factories: dict[str, object] = {}
    for base in reversed(cls.__mro__[1:]):
        for name in getattr(base, "__record_fields__", ()):
            if name not in names:
                names.append(name)
        defaults.update(getattr(base, "__record_defaults__", {}))
        factories.update(getattr(base, "__record_factories__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if "ClassVar" in str(annotation):
            continue
        if name not in names:
            names.append(name)
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Field):
            if value.factory is not _MISSING:
                factories[name] = value.factory
            elif value.default is not _MISSING:
                defaults[name] = value.default
            delattr(cls, name)
        elif value is not _MISSING:
            defaults[name] = value
    seen_default = False
    for name in names:
        has = name in defaults or name in factories
        if seen_default and not has:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        seen_default = seen_default or has
    names_t = tuple(names)
    cls.__record_fields__ = names_t
    cls.__record_defaults__ = defaults
    cls.__record_factories__ = factories
    cls.__init__ = _make_init(cls.__qualname__, names_t, defaults, factories,
                              hasattr(cls, "__post_init__"))
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq
        if frozen:
            if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
                cls.__hash__ = _hash
        elif "__hash__" not in cls.__dict__:
            cls.__hash__ = None
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
    return cls


def _make_init(qualname: str, names: tuple[str, ...], defaults: dict, factories: dict, post_init: bool):
    count = len(names)

    def __init__(self, *args, **kwargs) -> None:
        if len(args) > count:
            raise TypeError(f"{qualname}() takes {count} positional arguments but {len(args)} were given")
        d = self.__dict__
        for i, name in enumerate(names):
            if i < len(args):
                if name in kwargs:
                    raise TypeError(f"{qualname}() got multiple values for argument {name!r}")
                d[name] = args[i]
            elif name in kwargs:
                d[name] = kwargs.pop(name)
            elif name in defaults:
                d[name] = defaults[name]
            elif name in factories:
                d[name] = factories[name]()
            else:
                raise TypeError(f"{qualname}() missing required argument: {name!r}")
        if kwargs:
            raise TypeError(f"{qualname}() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = f"{qualname}.__init__"
    return __init__


def _values(obj) -> tuple:
    d = obj.__dict__
    return tuple(d[name] for name in obj.__record_fields__)


def _repr(self) -> str:
    d = self.__dict__
    inner = ", ".join(f"{name}={d[name]!r}" for name in self.__record_fields__)
    return f"{type(self).__qualname__}({inner})"


def _eq(self, other) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self) -> int:
    return hash(_values(self))


def _frozen_setattr(self, name: str, value) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
