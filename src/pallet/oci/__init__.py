"""Pure OCI data: digests, media types, descriptors, manifests, indexes, image configs.

No I/O here. Documents keep the raw bytes they were decoded from: a digest is
always computed over those bytes, never over a re-serialization.
"""

from pallet.oci import mediatypes
from pallet.oci.digest import Digest, Hasher, sha256_digest
from pallet.oci.documents import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    parse_manifest_or_index,
)

__all__ = [
    "Descriptor",
    "Digest",
    "Hasher",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "canonical_json",
    "mediatypes",
    "parse_manifest_or_index",
    "sha256_digest",
]
