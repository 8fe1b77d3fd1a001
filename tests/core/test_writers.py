"""The one CSV writer and the one PNG writer every module uses (pftlab.core.io)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pftlab.core.io import csv_text, write_csv, write_png


def test_dict_rows_take_the_first_rows_keys_as_header() -> None:
    rows = [{"a": 1, "b": 0.1, "c": "x,y"}, {"a": 2, "c": 'say "hi"'}]
    assert csv_text(rows) == 'a,b,c\n1,0.1,"x,y"\n2,,"say ""hi"""\n'
    with pytest.raises(ValueError, match="outside the header"):
        csv_text([{"a": 1}, {"a": 2, "z": 3}])


def test_list_rows_under_a_header_and_float_formats(tmp_path: Path) -> None:
    write_csv(tmp_path / "m.csv", [["client0", 12.5, 1 / 3]], header=["model \\ test", "c0", "c1"])
    assert (tmp_path / "m.csv").read_bytes() == b"model \\ test,c0,c1\nclient0,12.5,0.3333333333333333\n"
    assert csv_text([{"x": 0.1, "n": 3, "s": "t"}], float_format=".17g") == "x,n,s\n0.10000000000000001,3,t\n"
    assert csv_text([], header=["only"]) == "only\n"
    with pytest.raises(ValueError, match="neither"):
        csv_text([])


def test_png_writer_closes_the_figure_and_core_io_never_imports_matplotlib(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    write_png(tmp_path / "a.png", fig)
    assert not plt.get_fignums(), "the written figure is closed"
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    write_png(tmp_path / "b.png", fig)
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == (tmp_path / "b.png").read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data
    probe = "import sys, pftlab.core.io; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], timeout=120).returncode == 0
