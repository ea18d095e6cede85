"""The storage interface the registry server talks to.

Content is addressed by `Digest`; a blob is stored once and *linked* into each
repository that may read it. Manifests are blobs too, kept as the exact bytes
that were pushed, with their media type beside them. An object-store driver
implements the same methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pallet.oci import Digest


@dataclass(frozen=True, slots=True)
class UploadInfo:
    id: str
    name: str
    size: int
    started: float


class UploadWriter(ABC):
    """Appends bytes to an upload session; `close()` makes the new size visible."""

    size: int

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


class Storage(ABC):
    # ---- blobs ---------------------------------------------------------------------------
    @abstractmethod
    def blob_size(self, digest: Digest) -> int | None:
        """Size of a stored blob (any repository), None if absent."""

    @abstractmethod
    def blob_path(self, digest: Digest) -> Path | None:
        """A local file holding the blob, for zero-copy serving; None if absent or not local."""

    @abstractmethod
    def read_blob(self, digest: Digest) -> bytes | None: ...

    @abstractmethod
    def repo_has_blob(self, name: str, digest: Digest) -> bool:
        """Whether repository `name` may read blob `digest` (linked, or a manifest of it)."""

    @abstractmethod
    def link_blob(self, name: str, digest: Digest) -> None: ...

    @abstractmethod
    def unlink_blob(self, name: str, digest: Digest) -> bool: ...

    @abstractmethod
    def touch_blob(self, name: str, digest: Digest) -> None:
        """Mark a blob as recently used so a concurrent gc keeps it for its grace period."""

    @abstractmethod
    def put_blob(self, name: str, digest: Digest, data: bytes) -> None:
        """Store small content whose digest was already verified, and link it."""

    # ---- uploads -------------------------------------------------------------------------
    @abstractmethod
    def new_upload(self, name: str) -> UploadInfo: ...

    @abstractmethod
    def upload_info(self, name: str, upload_id: str) -> UploadInfo | None: ...

    @abstractmethod
    def upload_writer(self, name: str, upload_id: str) -> UploadWriter: ...

    @abstractmethod
    def commit_upload(self, name: str, upload_id: str, digest: Digest) -> int:
        """Verify the session's bytes hash to `digest`, store and link the blob, end the session.

        Raises DigestMismatch (and ends the session, storing nothing) when they do not.
        Returns the blob size.
        """

    @abstractmethod
    def cancel_upload(self, name: str, upload_id: str) -> bool: ...

    @abstractmethod
    def purge_uploads(self, older_than: float) -> int: ...

    # ---- manifests, tags, referrers ------------------------------------------------------
    @abstractmethod
    def get_manifest(self, name: str, digest: Digest) -> tuple[bytes, str] | None:
        """(exact bytes, media type) of a manifest in the repository."""

    @abstractmethod
    def manifest_media_type(self, name: str, digest: Digest) -> str | None:
        """Media type of a manifest in the repository, None if it is not there."""

    @abstractmethod
    def put_manifest(self, name: str, digest: Digest, raw: bytes, media_type: str, *,
                     tag: str | None = None, subject: Digest | None = None,
                     referrer: dict[str, Any] | None = None) -> None: ...

    @abstractmethod
    def delete_manifest(self, name: str, digest: Digest) -> bool: ...

    @abstractmethod
    def resolve_tag(self, name: str, tag: str) -> Digest | None: ...

    @abstractmethod
    def delete_tag(self, name: str, tag: str) -> bool: ...

    @abstractmethod
    def list_tags(self, name: str) -> list[str] | None:
        """Sorted tags, None when the repository does not exist."""

    @abstractmethod
    def list_repositories(self) -> list[str]: ...

    @abstractmethod
    def referrers(self, name: str, subject: Digest) -> list[dict[str, Any]]: ...

    # ---- for gc --------------------------------------------------------------------------
    @abstractmethod
    def list_manifests(self, name: str) -> list[Digest]: ...

    @abstractmethod
    def list_tag_targets(self, name: str) -> dict[str, Digest]: ...

    @abstractmethod
    def list_repo_blobs(self, name: str) -> list[tuple[Digest, float]]:
        """(digest, link mtime) of every blob linked into the repository."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[Digest, float]]:
        """(digest, mtime) of every stored blob."""

    @abstractmethod
    def delete_blob(self, digest: Digest) -> None: ...

    @abstractmethod
    def manifest_mtime(self, name: str, digest: Digest) -> float | None: ...
