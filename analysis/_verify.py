"""Verifying a physsgd result group with h5py alone (the recipe of runs/README.md, "HDF5 layout").

A group written by physsgd >= 0.2 carries ``sha256`` (a checksum of its datasets and of its
``params_json`` attribute) and ``complete`` (written last). ``verify_group`` recomputes the
checksum: "ok", "damaged" (with the reason) or "legacy" (no marker: written by physsgd 0.1 or by
another program; readable, not verifiable). Kept independent of physsgd: analysis serves anyone's
files, and only files that say they come from physsgd (``physsgd_version``) are expected to carry
a checksum.
"""
from __future__ import annotations

import hashlib

import numpy as np


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, np.bytes_)) else str(v)


def checksum(group) -> str:
    import h5py
    h = hashlib.sha256()
    for name in sorted(group):
        if not isinstance(group[name], h5py.Dataset):
            continue
        a = np.asarray(group[name][()])
        if a.dtype.kind in "biufc" and a.dtype.byteorder not in ("|", "<"):
            a = a.astype(a.dtype.newbyteorder("<"))
        a = np.ascontiguousarray(a)
        h.update(f"{name}\0{a.dtype.str}\0{','.join(map(str, a.shape))}\0".encode())
        h.update(a.tobytes())
    h.update(b"params_json\0" + _text(group.attrs.get("params_json", "")).encode())
    return h.hexdigest()


def verify_group(group) -> tuple:
    """("ok" | "legacy" | "damaged", reason)."""
    try:
        if "complete" not in group.attrs:
            return "legacy", "no checksum (written by an earlier physsgd)"
        if checksum(group) != _text(group.attrs.get("sha256", "")):
            return "damaged", "checksum mismatch: the data changed after the file was written"
        return "ok", ""
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        return "damaged", f"unreadable: {type(e).__name__}: {e}"
