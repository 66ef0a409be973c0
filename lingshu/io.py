"""Small file helpers shared by writers, reports and the CLI."""

from __future__ import annotations

import glob
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger("lingshu")


@contextmanager
def atomic_open(path: str | Path) -> Iterator[IO[str]]:
    """Open `path` for writing text so that readers never see a half-written file.

    Writes to a temporary file `.NAME.PID.XXXX.tmp` in the same folder and renames it over
    `path` on success; on any error (SIGTERM too, under the `lingshu` command, which turns it
    into SystemExit) the temporary file is removed and `path` is left as it was. Temporary files
    a killed writer (SIGKILL) left for `path` are removed the next time it is written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    # the writer's pid is in the name, so a later run can tell a dead writer's leftovers from a live one's
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove `.NAME.PID.*.tmp` files of `path` whose writer is no longer running; returns them."""
    path = Path(path)
    gone = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return gone
    for tmp in candidates:
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                tmp.unlink()
                gone.append(tmp)
            except OSError:
                pass
    if gone:
        log.warning("removed %d temporary file(s) an interrupted run left for %s", len(gone), path)
    return gone


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when `a` and `b` name one file (the same path, a link, or a hard link to it)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwriting_input(output: str | Path, inputs) -> None:
    """ValueError when `output` is one of `inputs`: writing it would replace what is being read."""
    for i in inputs:
        if same_file(output, i):
            raise ValueError(f"the output {output} is the input {i}: writing it would replace the input; "
                             "give another output file")
