"""Safe file writing shared by every layer: atomic writes, safe file names, paths kept inside a folder.

Every file failwidgets writes (widget state, HTML snapshots, annotation files, CSV exports, cache
entries, benchmark results) goes through :func:`atomic_write` / :func:`atomic_open`: the content is
written to a temporary file in the target's folder, flushed and fsynced, then renamed over the target
with ``os.replace``. A reader therefore sees either the previous complete file or the new complete
file, never a truncated one, and a writer killed mid-write leaves the previous file intact. The
temporary file is removed when writing fails; temporaries left by writers that were killed (their
process is gone, or they are older than a day) are removed by the next write to the same file, as are
the ``tempfile.mkstemp`` orphans (``.<name>.XXXXXXXX.tmp``, older than an hour) of the earlier writer.

New files get the mode ``0666`` minus the user's umask (what ``open(path, "w")`` gives), not the
``0600`` of ``tempfile.mkstemp``, so files in a shared folder stay readable by the group.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
import unicodedata
import uuid
from pathlib import Path
from typing import IO, Iterator

__all__ = [
    "atomic_write",
    "atomic_open",
    "safe_filename",
    "path_inside",
    "clean_stale_temps",
    "current_umask",
    "default_file_mode",
    "fsync_dir",
    "TEMP_PREFIX",
]

#: temporary files are named ``.<target name>.<TEMP_MARK>.<pid>.<host>.<token>.tmp``
TEMP_PREFIX = "."
_TEMP_MARK = "fwtmp"
_TEMP_RE = re.compile(
    r"^\.(?P<target>.+)\." + _TEMP_MARK + r"\.(?P<pid>\d+)\.(?P<host>[0-9a-f]{8})\.[0-9a-f]{32}\.tmp$"
)
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
STALE_SECONDS = 24 * 3600  # a temp file older than this is stale even if its writer looks alive
# temporaries of the earlier annotation writer (``tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")``),
# which a killed save left behind; removed once older than an hour
_LEGACY_RE = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")
_LEGACY_SECONDS = 3600
_UMASK_LOCK = threading.Lock()
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


# -- modes ------------------------------------------------------------------------------------------------
def current_umask() -> int:
    """The process umask (read from ``/proc`` on Linux, else set-and-restore under a lock)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~current_umask()


# -- names and folders -----------------------------------------------------------------------------------
def safe_filename(name: object, *, default: str = "file", max_length: int = 120) -> str:
    """A file name made from a user string: one path component, no separators, no ``..``, no control chars.

    Letters (any script), digits, ``-``, ``_``, ``.`` and ``+`` are kept; every other character (path
    separators, spaces, markup, control characters) becomes ``_``; leading dots are dropped (no hidden
    files, no ``..``); Windows device names get a ``_`` prefix; the result is cut to ``max_length``
    characters. An empty result becomes ``default``.

    Parameters
    ----------
    name : object, converted with ``str``.
    default : str, used when nothing is left of ``name``.
    max_length : int, the longest name returned.

    Returns
    -------
    str, safe to join onto a folder.
    """
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"max_length: expected an integer >= 1, got {max_length!r}")
    text = unicodedata.normalize("NFKC", str(name))
    out = "".join(c if (c.isalnum() or c in "-_.+") and c.isprintable() else "_" for c in text)
    out = re.sub(r"\.{2,}", "_", out)  # no ".." anywhere
    out = re.sub(r"_{2,}", "_", out).lstrip(".").rstrip(". ")
    if out.split(".")[0].upper() in _RESERVED:
        out = "_" + out
    out = out[:max_length].rstrip(". ")
    if not out or set(out) <= {"_"}:
        out = default
    return out


def path_inside(folder: str | os.PathLike, name: str | os.PathLike, *, argument: str = "path") -> Path:
    """``folder / name``, checked to stay inside ``folder`` after resolving ``..`` and symbolic links.

    Raises
    ------
    ValueError
        The joined path leaves ``folder``; the message names ``argument``.
    """
    base = Path(folder).expanduser().resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{argument}: expected a file inside {base}, got {name!r} which resolves to {target}")
    if target == base:
        raise ValueError(f"{argument}: expected a file name inside {base}, got {name!r}")
    return target


# -- temp files -------------------------------------------------------------------------------------------
def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_TEMP_MARK}.{os.getpid()}.{_HOST}.{uuid.uuid4().hex}.tmp")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows; rely on age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike, target: str | None = None) -> int:
    """Remove temporary files of :func:`atomic_write` whose writer died (or older than a day).

    Parameters
    ----------
    folder : the folder to clean.
    target : only temporaries of this file name (default: all).

    Returns
    -------
    int, the number of files removed.
    """
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        m = _TEMP_RE.match(name)
        legacy = _LEGACY_RE.match(name) if m is None else None
        if legacy is not None and (target is None or legacy["target"] == target):
            p = Path(folder) / name
            try:
                if time.time() - p.stat().st_mtime > _LEGACY_SECONDS:
                    p.unlink()
                    removed += 1
            except OSError:
                pass
            continue
        if m is None or (target is not None and m["target"] != target):
            continue
        p = Path(folder) / name
        try:
            age = time.time() - p.stat().st_mtime
            dead = m["host"] == _HOST and not _pid_alive(int(m["pid"]))
            if dead or age > STALE_SECONDS:
                p.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in ``path`` durable (POSIX); a no-op where directories cannot be fsynced."""
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# -- writing ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike,
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    make_parents: bool = True,
) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on a clean exit it replaces ``path`` atomically.

    Parameters
    ----------
    path : the file to (over)write.
    mode : ``"w"`` (text) or ``"wb"`` (bytes).
    encoding, newline : as for ``open`` (text mode only).
    make_parents : create missing parent folders.

    Yields
    ------
    file object; everything written to it appears at ``path`` at once when the block ends. When the
    block raises, ``path`` is left as it was and the temporary file is removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike), got {type(path).__name__}")
    path = Path(path).expanduser()
    if path.name in ("", ".", ".."):
        raise ValueError(f"path: expected a file path, got {str(path)!r}")
    folder = path.parent
    if path.is_dir():
        raise IsADirectoryError(f"path: expected a file, {path} is a directory")
    if make_parents:
        for p in (folder, *folder.parents):
            if p.exists():
                if not p.is_dir():
                    raise NotADirectoryError(f"path: expected a folder at {p} to write {path.name} into, found a file")
                break
        folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(folder, path.name)
    tmp = _temp_path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask, as for open(path, "w")
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as fh:
            fd = -1
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write(
    path: str | os.PathLike,
    data: str | bytes,
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    make_parents: bool = True,
) -> Path:
    """Write ``data`` (str or bytes) to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected str or bytes, got {type(data).__name__}")
    mode = "w" if isinstance(data, str) else "wb"
    with atomic_open(path, mode, encoding=encoding, newline=newline, make_parents=make_parents) as fh:
        fh.write(data)
    return Path(path).expanduser()
