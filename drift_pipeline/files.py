"""Owner-only folders and files: the home folder, the SQLite database and every local object are private.

Traffic, quarantine, reports and keys hold tenant data, so nothing drift-pipeline creates on a local disk
may be readable by other users, whatever the process's umask: folders are created ``0700`` and files
``0600`` at creation (``os.mkdir``/``os.open`` with a mode, then ``chmod`` to the exact mode, because a
umask only ever removes bits and a loose umask must not matter). Folders that already existed (``/tmp``,
a user's project) are left alone.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dirs(folder: str | os.PathLike[str]) -> Path:
    """Create `folder` and every missing parent as ``0700`` (existing ones are not touched)."""
    path = Path(folder)
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for level in reversed(missing):
        try:
            os.mkdir(level, DIR_MODE)
        except FileExistsError:  # created meanwhile by another process: theirs is private too
            continue
        os.chmod(level, DIR_MODE)
    return path


def create_private(path: str | os.PathLike[str]) -> bool:
    """Create an empty ``0600`` file at `path` unless one exists; True when it was created here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return True


def tighten(path: str | os.PathLike[str]) -> None:
    """Drop group/other bits from an existing path we own (made before this rule); best effort: on a
    read-only home, or for someone else's file, it stays as it is and reading still works."""
    try:
        st = os.stat(path)
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, st.st_mode & 0o700)
    except OSError:
        pass


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `path` as ``0600`` so that readers see either nothing or all of it (temp name + rename).

    An existing path that is not a regular file (``/dev/stdout``, a pipe, a device) is written in place:
    renaming over it would replace the device itself.
    """
    target = Path(path)
    if target.exists() and not target.is_file():
        with open(target, "wb") as fh:
            fh.write(data)
        return
    folder = private_dirs(target.parent)
    tmp = folder / f".tmp-{uuid.uuid4().hex}-{target.name}"
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
