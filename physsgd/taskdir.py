"""A sweep's task directory: one verified HDF5 file per finished task, claims, temp files, merge.

    DIR/<key>.h5                          a finished task (``physsgd.h5layout``), checksummed
    DIR/.<key>.<host>.<pid>.tmp           being written (renamed into place once verified)
    DIR/.claims/<key>                     the task is being computed by the run named inside
    DIR/damaged/<key>.<time>.h5 (+ .txt)  a file that failed verification, moved aside, with why

Writes: a task file is built in memory, written with ``os.write``, fsynced, re-opened and
verified, and only then renamed to ``<key>.h5``; any error (a full disk included) removes the
temp file and leaves no ``<key>.h5``. Reads: ``scan`` verifies every ``<key>.h5`` (checksum and
completion marker) and moves damaged ones to ``damaged/`` so that the next run recomputes them.

Claims make concurrent runs on one directory share the work: a run creates ``.claims/<key>``
with O_CREAT | O_EXCL (atomic, also on NFS v3+) before it starts a task, and removes it when the
task ends. A claim is stale, and taken over, when its run is dead: same host and a dead PID (or
a PID reused by another process), or another host's claim not refreshed for STALE_FOREIGN_CLAIM
seconds (live runs touch their claims every CLAIM_HEARTBEAT seconds).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field

import h5py

from . import _fileio, h5layout

KEY_RE = re.compile(r"^[0-9a-f]{16}$")
TMP_RE = re.compile(r"^\.(?P<key>[0-9a-f]{16})\.(?P<host>.+)\.(?P<pid>\d+)\.tmp$")
MERGE_TMP_RE = re.compile(r"^\.(?P<name>.+)\.merge-(?P<pid>\d+)@(?P<host>.+)\.tmp$")
CLAIMS, DAMAGED = ".claims", "damaged"
# A temp file lives only for the moment it takes to write a finished task; one from another host
# (whose PID we cannot check) older than this is certainly abandoned.
STALE_FOREIGN_TMP = 3600.0
CLAIM_HEARTBEAT = 60.0
STALE_FOREIGN_CLAIM = 600.0


class EmptyInputError(ValueError):
    """Nothing to work on (no task files where some were expected)."""


def task_path(out_dir, key: str) -> str:
    return os.path.join(out_dir, f"{key}.h5")


def task_files(out_dir) -> dict:
    """key -> path of every ``<key>.h5`` in ``out_dir`` (sorted by key; not verified: see ``scan``)."""
    out = {}
    for p in sorted(glob.glob(os.path.join(glob.escape(str(out_dir)), "*.h5"))):
        key = os.path.basename(p)[:-3]
        if KEY_RE.match(key):
            out[key] = p
    return out


def temp_path(out_dir, key: str) -> str:
    return os.path.join(out_dir, f".{key}.{socket.gethostname()}.{os.getpid()}.tmp")


# --------------------------------------------------------------------------------------------
# Writing and verifying task files

def write_task(out_dir, key: str, result, attrs: dict) -> str:
    """Write one finished task as ``out_dir/<key>.h5``: in memory, then os.write + fsync, verified,
    renamed. Raises DiskFullError (naming the directory and the space needed) or OSError; either
    way no ``<key>.h5`` and no temp file are left."""
    data = h5layout.result_image(result, attrs)
    final = task_path(out_dir, key)
    return _fileio.write_atomic(final, data, temp_path(out_dir, key), verify=_verify_written,
                                what=f"task file {key}.h5")


def _verify_written(path):
    state, reason = verify_task_file(path)
    if state != h5layout.OK:
        raise OSError(f"{path}: the file read back differs from what was written ({reason})")


def verify_task_file(path) -> tuple:
    """(state, reason) of a task file: "ok", "legacy" (no checksum: written by an earlier
    physsgd) or "damaged" (why: empty, unreadable, checksum mismatch, misnamed, ...)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return h5layout.DAMAGED, f"cannot read: {e.strerror or e}"
    if size == 0:
        return h5layout.DAMAGED, "empty file (0 bytes)"
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        return h5layout.DAMAGED, f"not a readable HDF5 file ({_first_line(e)})"
    try:
        state, reason = h5layout.verify(f)
        if state == h5layout.OK and "key" in f.attrs:
            key = h5layout.text(f.attrs["key"])
            name = os.path.basename(path)
            stem = name[:-3] if name.endswith(".h5") else None
            if stem and KEY_RE.match(stem) and key != stem:
                return h5layout.DAMAGED, f"misnamed: it holds task {key}"
            digest = hashlib.sha256(h5layout.text(f.attrs["params_json"]).encode()).hexdigest()[:16]
            if digest != key:
                return h5layout.DAMAGED, "its parameters do not hash to its key"
        return state, reason
    finally:
        f.close()


def _first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


@dataclass
class Damaged:
    path: str                 # where it was found (a file, or file:/tasks/<key> in a merged file)
    reason: str
    moved_to: str | None = None

    def __str__(self):
        where = f"; moved to {self.moved_to}" if self.moved_to else ""
        return f"{self.path}: {self.reason}{where}"


@dataclass
class Scan:
    ok: dict = field(default_factory=dict)        # key -> path, verified
    legacy: dict = field(default_factory=dict)    # key -> path, readable but without a checksum
    damaged: list = field(default_factory=list)   # Damaged

    @property
    def finished(self) -> dict:
        return {**self.ok, **self.legacy}


def scan(out_dir, quarantine: bool = True) -> Scan:
    """Verify every task file of ``out_dir``; damaged ones are moved to ``out_dir/damaged/`` (with
    a ``.txt`` saying why) when ``quarantine``, so a resumed run recomputes them."""
    result = Scan()
    for key, path in task_files(out_dir).items():
        state, reason = verify_task_file(path)
        if state == h5layout.OK:
            result.ok[key] = path
        elif state == h5layout.LEGACY:
            result.legacy[key] = path
        else:
            moved = move_aside(path, reason) if quarantine else None
            if quarantine and moved is None and not os.path.exists(path):
                continue                      # another process moved it meanwhile
            result.damaged.append(Damaged(path, reason, moved))
    return result


def move_aside(path, reason) -> str | None:
    """Move a damaged file to ``<dir>/damaged/`` (never delete results); returns its new path."""
    directory = os.path.dirname(os.path.abspath(path))
    target_dir = os.path.join(directory, DAMAGED)
    base = os.path.basename(path)
    stem = base[:-3] if base.endswith(".h5") else base
    try:
        os.makedirs(target_dir, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = os.path.join(target_dir, f"{stem}.{stamp}.h5")
        n = 1
        while os.path.exists(target):
            target = os.path.join(target_dir, f"{stem}.{stamp}.{n}.h5")
            n += 1
        os.rename(path, target)
    except FileNotFoundError:
        return None
    except OSError as e:
        warnings.warn(f"cannot move damaged file {path} aside ({e.strerror or e}); remove it by hand",
                      stacklevel=2)
        return None
    try:
        with open(target[:-3] + ".txt", "w") as f:
            f.write(f"{path}\n{reason}\nmoved aside by {socket.gethostname()} pid {os.getpid()} "
                    f"at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
    except OSError:
        pass
    return target


def task_info(path) -> dict:
    """Attributes of a task file without reading its arrays: status, params, summary."""
    with h5py.File(path, "r") as f:
        return h5layout.group_info(f)


# --------------------------------------------------------------------------------------------
# Temp files

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        return True
    # a killed writer whose parent died too may linger as a zombie (a container's PID 1 need not
    # reap orphans); it writes nothing more, so its files are stale
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _process_start(pid: int):
    """The start time of a process (clock ticks since boot, Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def clean_stale_temps(out_dir) -> list:
    """Remove temp files (of tasks and of merges) left by killed writers: same host and dead PID,
    or another host's and old. Live writers' temp files (concurrent runs) are left alone."""
    removed = []
    host = socket.gethostname()
    try:
        names = os.listdir(out_dir)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for name in names:
        m = TMP_RE.match(name) or MERGE_TMP_RE.match(name)
        if not m:
            continue
        path = os.path.join(out_dir, name)
        if m["host"] == host:
            stale = not _pid_alive(int(m["pid"]))
        else:
            try:
                stale = time.time() - os.path.getmtime(path) > STALE_FOREIGN_TMP
            except OSError:
                continue
        if stale:
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def remove_temps_of(out_dir, pids) -> list:
    """Remove the task temp files written on this host by the given (now dead) processes."""
    host, pids, removed = socket.gethostname(), {int(p) for p in pids}, []
    try:
        names = os.listdir(out_dir)
    except OSError:
        return removed
    for name in names:
        m = TMP_RE.match(name)
        if m and m["host"] == host and int(m["pid"]) in pids:
            try:
                os.remove(os.path.join(out_dir, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed


def temp_files(out_dir) -> list:
    try:
        return sorted(n for n in os.listdir(out_dir) if TMP_RE.match(n))
    except (FileNotFoundError, NotADirectoryError):
        return []


# --------------------------------------------------------------------------------------------
# Claims

_ACTIVE_RUNS: set = set()          # run ids of the Claims objects alive in this process


def _read_claim(path):
    try:
        with open(path) as f:
            info = json.loads(f.read() or "null")
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def _holder(info) -> str:
    if not info:
        return "another run"
    return f"pid {info.get('pid')} on {info.get('host')}"


def _claim_stale(info, path) -> bool:
    try:
        age = time.time() - os.path.getmtime(path)
    except OSError:
        return False                    # gone: not ours to judge; the caller retries
    if info is None:                    # being written right now, or garbage left by a crash
        return age > CLAIM_HEARTBEAT
    if info.get("host") != socket.gethostname():
        return age > STALE_FOREIGN_CLAIM
    pid = info.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return True
    start = info.get("start")
    if start is not None and _process_start(pid) not in (None, start):
        return True                     # the PID belongs to another process now
    if pid == os.getpid():
        return info.get("run") not in _ACTIVE_RUNS
    return False


def live_claims(out_dir) -> dict:
    """key -> holder ("pid P on HOST") of the claims of live runs in ``out_dir``."""
    out = {}
    for path in glob.glob(os.path.join(glob.escape(str(out_dir)), CLAIMS, "*")):
        key = os.path.basename(path)
        if KEY_RE.match(key):
            info = _read_claim(path)
            if not _claim_stale(info, path):
                out[key] = _holder(info)
    return out


class Claims:
    """The claims of one run on one directory (use as a context manager, or call close())."""

    def __init__(self, out_dir):
        self.dir = os.path.join(out_dir, CLAIMS)
        os.makedirs(self.dir, exist_ok=True)
        self.run = uuid.uuid4().hex
        self.info = {"host": socket.gethostname(), "pid": os.getpid(),
                     "start": _process_start(os.getpid()), "run": self.run}
        self.mine: set = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = None
        _ACTIVE_RUNS.add(self.run)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _path(self, key):
        return os.path.join(self.dir, key)

    def acquire(self, key) -> tuple:
        """(True, "") if this run now holds ``key``; (False, holder) if a live run holds it."""
        path = self._path(key)
        for _ in range(3):
            if self._create(path):
                with self._lock:
                    self.mine.add(key)
                self._start_heartbeat()
                return True, ""
            info = _read_claim(path)
            if not _claim_stale(info, path):
                if os.path.exists(path):
                    return False, _holder(info)
                continue                  # released meanwhile: try again
            if not self._take_over(path, info):
                return False, _holder(info)
        return False, _holder(_read_claim(path))

    def _create(self, path) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        data = json.dumps({**self.info, "time": time.time()}).encode()
        try:
            os.write(fd, data)
        except OSError as e:
            os.close(fd)
            try:
                os.remove(path)
            except OSError:
                pass
            full = _fileio.as_disk_full(e, self.dir, len(data), "a claim file")
            if full is not None:
                raise full from None
            raise
        os.close(fd)
        return True

    def _take_over(self, path, seen) -> bool:
        """Remove a stale claim, guarded by a take-over lock so two runs cannot both remove it
        (the second would otherwise remove the first one's fresh claim). False: another run is
        taking it over right now."""
        lock = path + ".takeover"
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
        except FileExistsError:
            try:
                if time.time() - os.path.getmtime(lock) > CLAIM_HEARTBEAT:
                    os.remove(lock)         # its owner died mid take-over
            except OSError:
                pass
            return False
        try:
            if _read_claim(path) == seen:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
            return True                   # the caller's next _create decides who gets it
        finally:
            try:
                os.remove(lock)
            except OSError:
                pass

    def release(self, key) -> None:
        with self._lock:
            if key not in self.mine:
                return
            self.mine.discard(key)
        path = self._path(key)
        info = _read_claim(path)
        if info is not None and info.get("run") == self.run:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def _start_heartbeat(self):
        if self._beat is None:
            self._beat = threading.Thread(target=self._heartbeat, name="physsgd-claims", daemon=True)
            self._beat.start()

    def _heartbeat(self):
        while not self._stop.wait(CLAIM_HEARTBEAT):
            with self._lock:
                keys = list(self.mine)
            for key in keys:
                try:
                    os.utime(self._path(key))
                except OSError:
                    pass

    def close(self):
        self._stop.set()
        for key in list(self.mine):
            self.release(key)
        _ACTIVE_RUNS.discard(self.run)


# --------------------------------------------------------------------------------------------
# Merge

@dataclass
class MergeReport:
    path: str
    n_tasks: int
    damaged: list = field(default_factory=list)     # Damaged: skipped, never merged
    legacy: list = field(default_factory=list)      # paths merged without verification

    @property
    def ok(self) -> bool:
        return not self.damaged


def merge_tmp_path(out_path) -> str:
    out_dir = os.path.dirname(os.path.abspath(out_path))
    return os.path.join(out_dir, f".{os.path.basename(out_path)}.merge-{os.getpid()}@"
                                 f"{socket.gethostname()}.tmp")


def collect(sources) -> tuple:
    """Verified result groups of the sources: ({key: (file, group path)}, damaged, legacy).
    Damaged task files of sweep directories are moved aside; groups of merged files and files
    given by name are reported, never modified."""
    groups, damaged, legacy = {}, [], []
    for src in sources:
        src = os.fspath(src)
        if os.path.isdir(src):
            s = scan(src, quarantine=True)
            for key, p in s.ok.items():
                groups.setdefault(key, (p, "/"))
            for key, p in s.legacy.items():
                if key not in groups:
                    groups[key] = (p, "/")
                    legacy.append(p)
            damaged += s.damaged
            continue
        try:
            f = h5py.File(src, "r")
        except (OSError, ValueError) as e:
            damaged.append(Damaged(src, f"not a readable HDF5 file ({_first_line(e)})"))
            continue
        with f:
            if "tasks" in f:
                for key in f["tasks"]:
                    state, reason = h5layout.verify(f["tasks"][key])
                    where = f"{src}:/tasks/{key}"
                    if state == h5layout.DAMAGED:
                        damaged.append(Damaged(where, reason))
                    elif key not in groups:
                        groups[key] = (src, f"/tasks/{key}")
                        if state == h5layout.LEGACY:
                            legacy.append(where)
                continue
        state, reason = verify_task_file(src)
        if state == h5layout.DAMAGED:
            damaged.append(Damaged(src, reason))
            continue
        base = os.path.basename(src)
        key = base[:-3] if base.endswith(".h5") else base
        if key not in groups:
            groups[key] = (src, "/")
            if state == h5layout.LEGACY:
                legacy.append(src)
    return groups, damaged, legacy


def merge(sources, out_path) -> MergeReport:
    """Merge verified task files (from sweep directories, task files or merged files) into one
    file: ``/tasks/<key>`` groups (copies of each task's datasets and attributes, checksums
    included) and ``/index``. Damaged inputs are skipped and listed in the report (sweep
    directories' damaged files are moved aside); files without a checksum (earlier physsgd) are
    merged and listed as legacy. A key met twice is taken once. The file is written under a temp
    name, verified, and renamed; a full disk raises DiskFullError and leaves nothing.
    Raises EmptyInputError when no task is found."""
    sources = [os.fspath(s) for s in sources]
    groups, damaged, legacy = collect(sources)
    if not groups:
        what = f"no task files in {', '.join(sources)}"
        if damaged:
            what += f" (all {len(damaged)} found are damaged: {damaged[0]})"
        raise EmptyInputError(what)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    clean_stale_temps(out_dir)
    files = {p for p, _ in groups.values()}
    needed = int(sum(os.path.getsize(p) for p in files) * 1.05) + 65536
    free = _fileio.free_bytes(out_dir)
    if free is not None and free < needed:
        raise _fileio.DiskFullError(out_dir, needed, free, f"merging {len(groups)} tasks")
    tmp = merge_tmp_path(out_path)
    infos, digests = {}, set()
    rf = None
    try:
        rf = _fileio.RecordingFile(tmp)
        try:
            with h5py.File(rf, "w") as out:
                tasks = out.create_group("tasks")
                for key in sorted(groups):
                    path, gpath = groups[key]
                    with h5py.File(path, "r") as f:
                        src = f[gpath]
                        dst = tasks.create_group(key)
                        for name in src:
                            src.copy(src[name], dst, name=name)
                        for a, val in src.attrs.items():
                            dst.attrs[a] = val
                        infos[key] = h5layout.group_info(src)
                        d = src.attrs.get("kernels_sha256")
                        if d is not None:
                            digests.add(h5layout.text(d))
                out.create_dataset("index", data=h5layout.index_table(infos))
                from ._version import __version__
                out.attrs["physsgd_version"] = __version__
                out.attrs["n_tasks"] = len(infos)
                out.attrs["layout"] = "physsgd merged results: /tasks/<key> task groups + /index table"
                if len(digests) > 1:
                    out.attrs["mixed_kernel_versions"] = True
                h5layout.seal(out)
        finally:
            rf.close()
        if rf.error is not None:
            raise rf.error
        _verify_merged(tmp, len(infos))
        os.replace(tmp, out_path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        err = rf.error if rf is not None and rf.error is not None else e
        full = _fileio.as_disk_full(err, out_dir, needed, f"merging {len(groups)} tasks")
        if full is not None:
            raise full from None
        raise
    _fileio.fsync_dir(out_dir)
    if len(digests) > 1:
        # task keys hash the parameters, not the code: a sweep resumed across a kernel change
        # mixes results of two simulators, which is worth a loud warning
        warnings.warn(f"merged tasks simulated by {len(digests)} different kernel versions "
                      "(attribute kernels_sha256); re-run into a fresh directory for results from "
                      "one code version", stacklevel=2)
    return MergeReport(os.fspath(out_path), len(infos), damaged, legacy)


def _verify_merged(path, n):
    with h5py.File(path, "r") as f:
        state, reason = h5layout.verify(f)
        if state != h5layout.OK or len(f["tasks"]) != n:
            raise OSError(f"{path}: the merged file read back is not what was written ({reason})")
        for key in f["tasks"]:
            state, reason = h5layout.verify(f["tasks"][key])
            if state == h5layout.DAMAGED:
                raise OSError(f"{path}: task {key} read back damaged ({reason})")


def read_index(path):
    """The ``/index`` table of a merged file (a numpy structured array, string columns as str)."""
    with h5py.File(path, "r") as f:
        if "index" not in f:
            raise ValueError(f"{path}: not a merged physsgd file (no /index table)")
        return h5layout.decode_index(f["index"][()])
