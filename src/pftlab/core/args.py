"""What every pftlab command line shares: a parser whose mistakes are one-line UserErrors, and the checks
of --seeds, --out and the cache folder that the commands (and the library calls behind them) make before any work."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pftlab.core.errors import UserError

MAX_SEED = 2**62


class Parser(argparse.ArgumentParser):
    """argparse whose usage mistakes raise UserError (one line, exit code 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message}; see '{self.prog} --help'")


def check_seeds(seeds: Sequence[int] | None, flag: str = "--seeds") -> None:
    """None (not given), or at least one seed, all distinct, each in [0, 2^62]."""
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or any(not 0 <= s <= MAX_SEED for s in seeds)):
        raise UserError(f"{flag} must be distinct integers in [0, 2^62], got {list(seeds)}")


def check_out_dir(out: Path, flag: str = "--out") -> Path:
    """`out`, if it is a folder or can be created as one (no file in the way); else a UserError naming the file."""
    out = Path(out)
    if "\0" in str(out):
        raise UserError(f"{flag} {str(out)!r} contains a NUL character; give a folder path")
    with contextlib.suppress(OSError):  # a name too long, say: check_writable says which and why
        for p in (out, *out.parents):
            if p.exists():
                if not p.is_dir():
                    raise UserError(f"{flag} {str(out)!r}: {str(p)!r} is a file, not a folder; give a folder path")
                break
    return check_writable(out, flag)


def _why(err: OSError) -> str:
    """The OS's reason in words, with the errno's name: 'File name too long (ENAMETOOLONG)'."""
    name = errno.errorcode.get(err.errno or 0, "")
    text = err.strerror or type(err).__name__
    return f"{text} ({name})" if name else text


def check_writable(path: Path, what: str = "--out") -> Path:
    """`path`, once shown to be a folder this process can create files in; else a UserError naming why.

    The folder (and any missing parent) is created, a temporary file is created and removed in it, and then
    every folder this made is removed again: the probe leaves nothing behind, so `--check` may call it. Any
    OSError (read-only or full file system, no permission, a name too long, a symbolic link loop or to
    nowhere, a file in the way) becomes one line naming the path, the OS's reason and what is needed.
    """
    path = Path(path)
    if "\0" in str(path):
        raise UserError(f"{what} {str(path)!r} contains a NUL character; give a folder path")
    made: list[Path] = []
    try:
        for attempt in range(5):
            try:
                _probe(path, made)
                break
            except FileNotFoundError:  # a folder on the way vanished: another process's probe removed it
                if attempt == 4:
                    raise
    except OSError as err:
        where = f" at {err.filename!r}" if err.filename and str(err.filename) != str(path) else ""
        raise UserError(
            f"{what} {str(path)!r} cannot be written: {_why(err)}{where}; "
            "give a folder you can create and write files in (a writable file system with free space, "
            "each name at most 255 bytes, no file or broken link in the way)"
        ) from None
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):  # someone else wrote into it meanwhile: theirs to keep
                p.rmdir()
    return path


class _Blocked(OSError):
    """Something in the way of a folder; never retried (unlike a folder that vanished meanwhile)."""


def _probe(path: Path, made: list[Path]) -> None:
    """Create the missing folders of `path` (recorded in `made`), then a temporary file in it, and remove it."""
    for p in (*reversed(path.parents), path):
        if p.is_dir():
            continue
        if p.is_symlink():  # a link to nowhere, or to itself: mkdir would fail with a bare EEXIST
            if _loops(p):
                raise _Blocked(errno.ELOOP, "a symbolic link loop (a link that leads back to itself)", str(p))
            raise _Blocked(errno.ENOENT, "a symbolic link to something that does not exist", str(p))
        if os.path.lexists(p):
            raise _Blocked(errno.ENOTDIR, "a file, not a folder", str(p))
        try:
            os.mkdir(p)
        except FileExistsError:
            if p.is_dir():  # another process made it meanwhile: fine, and not ours to remove
                continue
            raise
        made.append(p)
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".pftlab-probe-", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


def _loops(link: Path) -> bool:
    try:
        link.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symlink loop as RuntimeError
        return True
    except OSError as err:
        return err.errno == errno.ELOOP
    return False


def check_cache_writable() -> Path:
    """The cache folder (`$PFTLAB_CACHE`, else the user cache), probed like an output folder."""
    from pftlab.core.io import cache_dir

    return check_writable(cache_dir(), "the cache folder ($PFTLAB_CACHE)")


def check_outputs(out: Path, flag: str = "--out") -> Path:
    """Everything a command that computes will write to: the output folder `out` and the cache folder.

    Call it at the start of any command or library entry point that writes, before any work is done.
    """
    out = check_out_dir(out, flag)
    check_cache_writable()
    return out
