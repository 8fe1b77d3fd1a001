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


def test_the_writability_probe_creates_nothing_and_names_the_os_reason(tmp_path: Path) -> None:
    from pftlab.core.args import check_writable

    assert check_writable(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == [], "the folders it made to probe are removed again"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "f").write_text("x")
    for bad, why in (
        (tmp_path / ("n" * 300), r"File name too long \(ENAMETOOLONG\)"),
        (tmp_path / "loop" / "x", "symbolic link loop"),
        (tmp_path / "dangling", "does not exist"),
        (tmp_path / "f" / "x", "ENOTDIR"),
    ):
        with pytest.raises(UserError, match=rf"--out .* cannot be written: .*{why}") as err:
            check_writable(bad, "--out")
        assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "f", "loop"]


def test_check_outputs_probes_the_cache_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pftlab.core.args import check_outputs

    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "f" / "cache"))
    with pytest.raises(UserError, match=r"cache folder .* cannot be written"):
        check_outputs(tmp_path / "out")
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    assert check_outputs(tmp_path / "out") == tmp_path / "out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
