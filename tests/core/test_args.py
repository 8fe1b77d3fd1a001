"""What every pftlab command line shares (pftlab.core.args): one-line usage errors, --seeds and --out checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pftlab.core.args import Parser, check_out_dir, check_seeds
from pftlab.core.errors import UserError


def test_parser_mistakes_are_user_errors() -> None:
    parser = Parser(prog="pftlab x")
    parser.add_argument("--n", type=int)
    with pytest.raises(UserError, match=r"invalid int value.*; see 'pftlab x --help'"):
        parser.parse_args(["--n", "x"])


@pytest.mark.parametrize("seeds", [[], [1, 1], [-1], [2**62 + 1]])
def test_bad_seeds_are_refused(seeds: list[int]) -> None:
    with pytest.raises(UserError, match="distinct integers"):
        check_seeds(seeds)


def test_good_seeds_and_no_seeds_pass() -> None:
    check_seeds(None)
    check_seeds([0, 3, 2**62])


def test_out_dir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert check_out_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    for bad in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(UserError, match="is a file, not a folder"):
            check_out_dir(bad)
    with pytest.raises(UserError, match="NUL"):
        check_out_dir(Path("a\0b"))
