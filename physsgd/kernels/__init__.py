"""Numba kernels. Imports nothing from the rest of physsgd: pure functions over arrays."""
import hashlib
from pathlib import Path


def _source_digest() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py")))).hexdigest()


SOURCE_DIGEST = _source_digest()    # recorded in every sweep task file: which kernels made it


def _cache_dirs() -> list:
    """Where numba caches these kernels: beside the sources (__pycache__), or under
    NUMBA_CACHE_DIR in the subdirectory numba derives from the source directory."""
    here = Path(__file__).parent
    dirs = [here / "__pycache__"]
    try:
        from numba.core import config
        from numba.core.caching import _CacheLocator
        if config.CACHE_DIR:
            sub = _CacheLocator.get_suitable_cache_subpath(str(here / "engine.py"))
            dirs.append(Path(config.CACHE_DIR) / sub)
    except (ImportError, AttributeError):     # another numba layout: the in-tree cache only
        pass
    return dirs


def _drop_stale_cache():
    """numba keys a cached kernel on its own file only (engine.py): edit a function it calls in
    another kernel module and the old machine code is reused silently. So every cache directory
    of these kernels (in-tree, or under NUMBA_CACHE_DIR) is stamped with a hash of every kernel
    source and cleared when that hash changes."""
    digest = SOURCE_DIGEST
    for cache in _cache_dirs():
        stamp = cache / "kernels.sha256"
        try:
            if stamp.exists() and stamp.read_text() == digest:
                continue
            for stale in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
                stale.unlink()
            cache.mkdir(parents=True, exist_ok=True)
            stamp.write_text(digest)
        except OSError:     # read-only install: numba then falls back to its own cache directory
            pass


_drop_stale_cache()
