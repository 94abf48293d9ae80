"""Writing files so that they appear only complete, and full disks that say so.

HDF5 is never asked to write to disk here: callers build a file image in memory and
``write_atomic`` writes its bytes with plain ``os.write`` (so a full disk is an ``OSError`` at
the call that failed, not an error HDF5 swallows and a segfault at exit), syncs them, lets the
caller verify the written file, and only then renames it into place.
"""
from __future__ import annotations

import errno
import os


class DiskFullError(OSError):
    """Not enough space to write a file: names the directory, the space needed and the space free."""

    def __init__(self, directory: str, needed: int, free: int | None, what: str = "a file"):
        self.directory, self.needed, self.free = directory, needed, free
        free_txt = f", {human_bytes(free)} free" if free is not None else ""
        super().__init__(errno.ENOSPC, f"no space left in {directory}: {what} needs "
                         f"{human_bytes(needed)}{free_txt}")

    def __str__(self):
        return self.strerror


def human_bytes(n) -> str:
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def as_disk_full(e, directory, needed, what):
    """``e`` as a DiskFullError if it is a full disk or quota (errno ENOSPC / EDQUOT), else None."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(e, DiskFullError):
        return DiskFullError(directory, needed, free_bytes(directory), what)
    return None


def free_bytes(directory) -> int | None:
    """Bytes available to this user in ``directory`` (None when the file system does not say)."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def fsync_dir(directory) -> None:
    """Make a rename durable (best effort: not every file system supports fsync on directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(final: str, data: bytes, tmp: str, verify=None, what: str = "a file") -> str:
    """Write ``data`` to ``tmp``, fsync, call ``verify(tmp)`` (raises if the file is bad), rename
    to ``final``. Any failure removes ``tmp`` and leaves ``final`` untouched; a full disk raises
    DiskFullError (before anything is written when the free space is known to be too small)."""
    directory = os.path.dirname(os.path.abspath(final))
    free = free_bytes(directory)
    if free is not None and free < len(data):
        raise DiskFullError(directory, len(data), free, what)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise DiskFullError(directory, len(data), free_bytes(directory), what) from None
        raise
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if verify is not None:
            verify(tmp)
        os.replace(tmp, final)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        full = as_disk_full(e, directory, len(data), what)
        if full is not None:
            raise full from None
        raise
    fsync_dir(directory)
    return final


class RecordingFile:
    """A binary file for ``h5py.File(fileobj)`` that remembers the first OSError of a write.

    h5py turns a failing write of a Python file object into its own error (or none at all, at
    close); the recorded error is what the caller raises, whatever h5py did with it. Used where
    the file is too large to build in memory (merged files)."""

    def __init__(self, path):
        self._f = open(path, "w+b")
        self.error = None

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            if self.error is None:
                self.error = e
            raise

    def write(self, b):
        return self._guard(self._f.write, b)

    def flush(self):
        return self._guard(self._f.flush)

    def truncate(self, size=None):
        return self._guard(self._f.truncate, size)

    def read(self, *a):
        return self._f.read(*a)

    def readinto(self, b):
        return self._f.readinto(b)

    def seek(self, *a):
        return self._f.seek(*a)

    def tell(self):
        return self._f.tell()

    def fileno(self):
        return self._f.fileno()

    def close(self):
        try:
            if not self._f.closed:
                self._guard(self._f.flush)
                self._guard(os.fsync, self._f.fileno())
        finally:
            self._f.close()
