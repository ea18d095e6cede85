"""Registry storage: the `Storage` interface and its drivers (filesystem first)."""

from pallet.registry.server.storage.base import Storage, UploadInfo
from pallet.registry.server.storage.fs import FilesystemStorage

__all__ = ["FilesystemStorage", "Storage", "UploadInfo"]
