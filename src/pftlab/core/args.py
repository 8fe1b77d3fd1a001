"""What every pftlab command line shares: a parser whose mistakes are one-line UserErrors, and the checks
of --seeds and --out that the commands (and the library calls behind them) make before any work."""

from __future__ import annotations

import argparse
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
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise UserError(f"{flag} {str(out)!r}: {str(p)!r} is a file, not a folder; give a folder path")
            break
    return out
