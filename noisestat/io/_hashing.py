"""The hashes kept in the provenance: of an input file's bytes, of an array's shape, dtype and bytes."""

from __future__ import annotations

import hashlib
import os

import numpy as np

__all__ = ["file_sha256", "array_sha256"]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's shape, dtype and bytes, in hex."""
    digest = hashlib.sha256(f"{array.shape}{array.dtype.str}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
