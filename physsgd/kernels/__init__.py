"""Numba kernels. Imports nothing from the rest of physsgd: pure functions over arrays."""
import hashlib
from pathlib import Path


def _source_digest() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()


SOURCE_DIGEST = _source_digest()    # recorded in every sweep task file: which kernels made it


def _drop_stale_cache():
    """numba keys a cached kernel on its own file only (engine.py): edit a function it calls in
    another kernel module and the old machine code is reused silently. So the cache is stamped
    with a hash of every kernel source and cleared when that hash changes."""
    digest = SOURCE_DIGEST
    cache = Path(__file__).parent / "__pycache__"
    stamp = cache / "kernels.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return
        for stale in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            stale.unlink()
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:     # read-only install: numba then falls back to its own cache directory
        pass


_drop_stale_cache()
