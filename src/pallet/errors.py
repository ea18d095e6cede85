"""The error hierarchy: every failure a user can cause is one sentence and an exit code.

Docker's exit codes: 125 when the engine itself fails (bad flag value, unknown
image, malformed reference), 126 when the command cannot be invoked, 127 when it
is not found.
"""

from __future__ import annotations


class PalletError(Exception):
    """An error with a message a human can act on and the exit code the CLI returns."""

    exit_code = 125

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidField(PalletError):
    """Bad input in one field of an engine record, named as docker's Engine API names it (NanoCpus,
    PidsLimit, ...). `template` may say `{name}` where the field is named: a caller with names of its
    own for the fields (the CLI's flags) gives the same sentence with `named(flag)`."""

    def __init__(self, field: str, template: str, **values) -> None:
        self.field, self.template, self.values = field, template, values
        super().__init__(template.format(name=field, **values))

    def named(self, name: str) -> str:
        return self.template.format(name=name, **self.values)


class InvalidReference(PalletError):
    """A string that is not a valid image reference."""


class InvalidDigest(PalletError):
    """A digest string that is malformed or uses an unsupported algorithm."""


class DigestMismatch(PalletError):
    """Content whose bytes do not hash to the digest it was announced under."""


class InvalidDocument(PalletError):
    """A manifest, index, config or other JSON document that breaks its spec."""


class NotFound(PalletError):
    """An image, blob, container or other named object that does not exist."""


class Conflict(PalletError):
    """An operation that would break something in use (a tag, a running container)."""


class InvalidArchive(PalletError):
    """An archive (docker-archive, oci-archive, layer tar) that is unreadable or hostile."""


class UnsafePath(InvalidArchive):
    """A tar entry or archive path that would reach outside its root."""


class RegistryError(PalletError):
    """A registry answered with an error or could not be reached."""


class RuntimeFailure(PalletError):
    """The OCI runtime failed to create, start or manage a container."""


class CommandNotInvokable(PalletError):
    exit_code = 126


class CommandNotFound(PalletError):
    exit_code = 127


def classify(message: str, *, what: str = "container") -> PalletError:
    """docker's mapping of an exec failure to 127 (not found) / 126 (cannot invoke) / 125."""
    m = message.lower()
    if "executable file not found" in m or "no such file or directory" in m:
        return CommandNotFound(message)
    if "permission denied" in m or "is a directory" in m or "exec format error" in m:
        return CommandNotInvokable(message)
    return RuntimeFailure(message)
