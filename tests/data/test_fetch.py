"""`pftlab data fetch` against a file server on 127.0.0.1 serving the offline data folder (no other address).

What must hold: a fetch into an empty folder gives files identical to the originals and a benchmark
that runs; an interrupted download resumes where it stopped; a truncated or altered file is
refused with one line and nothing that looks finished is left; a 404 and a stalled server end
in one line.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pftlab.cli import main
from pftlab.core.errors import CorruptFile, UserError
from pftlab.data import download as dl
from pftlab.data.benchmarks import build_federation
from pftlab.data.fetch import fetch, plan
from pftlab.data.sources import catalog, cifar10, cifar100, heart, heart_csv
from pftlab.data.sources.catalog import REMOTES
from pftlab.experiment.config import from_dict

Serve = Callable[[Path], AbstractContextManager[Any]]

DATA = Path(__file__).parents[2].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"offline datasets not found at {DATA}")
QMNIST = "qmnist/qmnist-train-labels.tsv.gz"  # 429,570 bytes: big enough for several chunks


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def accepted(path: str) -> dict[str, int]:
    return dict(REMOTES[path].accepted)


def test_fetch_into_an_empty_folder_gives_the_original_files_and_a_benchmark_that_runs(
    serve_files: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = tmp_path / "data"
    with serve_files(DATA) as server:
        done = fetch(["mnist-writers"], to, mirror=server.url)
    wanted = ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz", QMNIST]
    assert [r.path for r in done.remotes] == wanted and not done.manual
    for path in wanted:
        assert (to / path).read_bytes() == (DATA / path).read_bytes()
    assert sorted(p.relative_to(to).as_posix() for p in to.rglob("*") if p.is_file()) == sorted(wanted)
    monkeypatch.setenv("PFTLAB_DATA", str(to))
    fed = build_federation(from_dict({"data": {"benchmark": "mnist-writers", "size": "quick"}}).data, 0)
    assert fed.num_clients == 20 and all(len(c.train) > 0 for c in fed.clients)


def test_the_cli_fetches_through_a_mirror_and_says_what_must_be_got_by_hand(
    serve_files: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    to = tmp_path / "data"
    with serve_files(DATA) as server:
        monkeypatch.setenv("PFTLAB_MIRROR", server.url)
        code = main(["data", "fetch", "digits", "heart", "--to", str(to), "--no-progress"])
        assert {path for path, _ in server.requests} == {
            *(r.path for r in catalog.SOURCES["mnist"].files),
            "usps/usps.mat",
            *(r.path for r in catalog.SOURCES["heart"].files),
        }
    out = capsys.readouterr().out
    assert code == 1  # MNIST-M cannot be fetched: said, with where it goes
    assert "by hand  mnist_m_subset.tar.gz:" in out and "ok  usps/usps.mat" in out
    assert (to / "heart/processed.va.data").read_bytes() == (DATA / "heart/processed.va.data").read_bytes()
    assert f"set PFTLAB_DATA={to}" in out
    # again: every file verifies where it is, nothing is downloaded
    with serve_files(DATA) as server:
        assert main(["data", "fetch", "heart", "--to", str(to), "--mirror", server.url, "--no-progress"]) == 0
        assert server.requests == []


def test_an_interrupted_download_resumes_where_it_stopped(serve_files: Serve, tmp_path: Path) -> None:
    target = tmp_path / QMNIST
    with serve_files(DATA) as server:
        url = f"{server.url}/{QMNIST}"
        server.faults[QMNIST] = ("drop", 100_000)
        with pytest.raises(dl.DownloadError, match=r"ended after 100,000 of 429,570 bytes; run the same command"):
            dl.download(url, target, accepted(QMNIST))
        assert not target.exists() and dl.part_path(target).stat().st_size == 100_000
        dl.download(url, target, accepted(QMNIST))
        assert server.requests[-1] == (QMNIST, "bytes=100000-")
    assert target.read_bytes() == (DATA / QMNIST).read_bytes() and not dl.part_path(target).exists()


def test_a_server_that_ignores_the_range_restarts_from_zero(serve_files: Serve, tmp_path: Path) -> None:
    target = tmp_path / QMNIST
    dl.part_path(target).parent.mkdir(parents=True)
    dl.part_path(target).write_bytes(b"x" * 5000)  # not even a prefix of the file: the restart must replace it
    with serve_files(DATA) as server:
        server.faults[QMNIST] = ("ignore-range",)
        dl.download(f"{server.url}/{QMNIST}", target, accepted(QMNIST))
        assert server.requests == [(QMNIST, "bytes=5000-")]
    assert sha(target) == catalog.accepted_sha256(QMNIST)[0]


@pytest.mark.parametrize("how", ["truncated", "altered"])
def test_a_truncated_or_altered_file_is_refused_and_nothing_looks_finished(
    serve_files: Serve, tmp_path: Path, how: str
) -> None:
    served = tmp_path / "served"
    original = (DATA / QMNIST).read_bytes()
    bad = original[:-1000] if how == "truncated" else original[:5000] + bytes([original[5000] ^ 1]) + original[5001:]
    (served / "qmnist").mkdir(parents=True)
    (served / QMNIST).write_bytes(bad)
    to = tmp_path / "data"
    with serve_files(served) as server, pytest.raises(CorruptFile) as err:
        fetch(["qmnist"], to, mirror=server.url)
    message = str(err.value)
    assert "\n" not in message
    assert "nothing was kept" in message or "the download was deleted" in message
    if how == "altered":
        assert hashlib.sha256(bad).hexdigest() in message and catalog.accepted_sha256(QMNIST)[0] in message
    else:
        assert "428,570 bytes" in message
    assert not (to / QMNIST).exists() and not dl.part_path(to / QMNIST).exists()


def test_a_wrong_file_already_in_place_is_replaced_only_by_one_that_verifies(
    serve_files: Serve, tmp_path: Path
) -> None:
    target = tmp_path / QMNIST
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not qmnist")
    with serve_files(DATA) as server:
        server.faults[QMNIST] = ("404",)
        with pytest.raises(dl.DownloadError):
            dl.download(f"{server.url}/{QMNIST}", target, accepted(QMNIST))
        assert target.read_bytes() == b"not qmnist"  # the failed download did not touch it
        dl.download(f"{server.url}/{QMNIST}", target, accepted(QMNIST))
    assert target.read_bytes() == (DATA / QMNIST).read_bytes()


def test_a_404_ends_in_one_line(serve_files: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve_files(tmp_path / "nothing") as server:
        code = main(["data", "fetch", "qmnist", "--to", str(tmp_path / "d"), "--mirror", server.url, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == (
        f"pftlab: error: {server.url}/qmnist/qmnist-train-labels.tsv.gz: the server answered HTTP 404 (Not Found)"
    )


def test_a_stalled_server_ends_in_one_line_after_the_timeout(serve_files: Serve, tmp_path: Path) -> None:
    target = tmp_path / QMNIST
    with serve_files(DATA) as server:
        server.faults[QMNIST] = ("stall", 65_536)
        # the server holds the rest for 120 s; the client's 0.5 s read timeout must end it first,
        # or the download would complete and this raises nothing
        with pytest.raises(dl.DownloadError) as err:
            dl.download(f"{server.url}/{QMNIST}", target, accepted(QMNIST), timeout=0.5)
        server.release.set()
    assert str(err.value) == (
        f"{server.url}/{QMNIST}: 127.0.0.1:{server.url.rsplit(':', 1)[1]} sent nothing for 0.5 s after "
        "65,536 of 429,570 bytes; run the same command again to resume"
    )
    assert not target.exists() and dl.part_path(target).stat().st_size == 65_536


def test_the_first_location_that_fails_is_followed_by_the_next(
    serve_files: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_files(DATA) as server:
        remote = catalog.Remote(
            QMNIST, (f"{server.url}/missing/{QMNIST}", f"{server.url}/{QMNIST}"), REMOTES[QMNIST].accepted
        )
        monkeypatch.setitem(catalog.SOURCES, "qmnist", catalog.Source("qmnist", "", "", "", (remote,)))
        monkeypatch.setitem(REMOTES, QMNIST, remote)
        said: list[str] = []
        fetch(["qmnist"], tmp_path, say=said.append)
    assert len(said) == 1 and "HTTP 404" in said[0]
    assert sha(tmp_path / QMNIST) == catalog.accepted_sha256(QMNIST)[0]


def test_unknown_names_are_refused_before_any_download() -> None:
    with pytest.raises(UserError, match=r"unknown dataset 'mnits'; fetch knows mnist, fashion-mnist, "):
        plan(["mnist", "mnits"])
    with pytest.raises(UserError, match=r"benchmark 'digits-quick' reads no dataset files"):
        plan(["digits-quick"])


def test_official_heart_files_are_what_the_catalog_pins_and_decode_as_the_offline_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UCI's files write `?` where the offline copy has `NaN`: rebuilt so, they are the official bytes."""
    official = tmp_path / "official"
    (official / "heart").mkdir(parents=True)
    for remote in catalog.SOURCES["heart"].files:
        text = (DATA / remote.path).read_bytes().replace(b"NaN", b"?")
        (official / remote.path).write_bytes(text)
        assert (hashlib.sha256(text).hexdigest(), len(text)) == remote.accepted[0]
    offline = heart()
    monkeypatch.setenv("PFTLAB_DATA", str(official))
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))  # decoded afresh from the official files
    got = heart()
    assert heart_csv.HOSPITALS and got.keys() == offline.keys()
    for name in got:
        np.testing.assert_array_equal(got[name].x, offline[name].x)
        np.testing.assert_array_equal(got[name].y, offline[name].y)


# the official IDX files' sha256 after gunzip (the offline copies are recompressed / re-headed)
RAW_IDX = {
    "mnist/train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "mnist/train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "mnist/t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "mnist/t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


@pytest.mark.parametrize("path", sorted(RAW_IDX))
def test_offline_idx_copies_hold_the_official_bytes(path: str) -> None:
    assert hashlib.sha256(gzip.decompress((DATA / path).read_bytes())).hexdigest() == RAW_IDX[path]


def test_cifar_binary_archives_are_read_in_their_official_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_cifar: Callable[..., dict[str, np.ndarray]]
) -> None:
    made = tiny_cifar(tmp_path, monkeypatch, n=12)
    images, labels, fine, coarse = made["images"], made["labels"], made["fine"], made["coarse"]
    monkeypatch.setenv("PFTLAB_DATA", str(tmp_path))
    train, test = cifar10("train"), cifar10("test")
    assert train.meta["source"] == "cifar-10-binary.tar.gz" and train.meta["classes"][9] == "truck"
    np.testing.assert_array_equal(train.x, images[:10].astype(np.float32) / 255)
    np.testing.assert_array_equal(train.y, labels[:10])
    np.testing.assert_array_equal(test.y, labels[10:])
    c100, c20 = cifar100("train"), cifar100("test", coarse=True)
    assert c100.num_classes == 100 and c20.num_classes == 20 and c100.meta["classes"][7] == "fine7"
    np.testing.assert_array_equal(c100.x, images[:9].astype(np.float32) / 255)
    np.testing.assert_array_equal(c100.y, fine[:9])
    np.testing.assert_array_equal(c20.y, coarse[9:])


def test_data_list_says_what_fetch_would_get(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("mnist-writers"))
    assert "present" in row and "10.4 MB" in row
    digits = next(line for line in out.splitlines() if line.lstrip().startswith("digits "))
    assert "by hand" in digits
    cifar = next(line for line in out.splitlines() if line.lstrip().startswith("cifar100 "))
    assert "missing 1 of 1" in cifar and "168.5 MB" in cifar
