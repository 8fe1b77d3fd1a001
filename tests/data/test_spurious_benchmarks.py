"""celeba and chexpert on tiny stand-ins in the datasets' own layout, made here under a tmp data root.

CelebA: a real zip of JPEGs (img_align_celeba/000001.jpg, ...) and a list_attr_celeba.txt in the
published format (all 40 attribute names), with the pinned checksums patched to the stand-in's.
CheXpert: CheXpert-v1.0-small/train.csv with the real header, and the JPEGs it names. Every image
is one solid colour (unique to its row) in its centre square, black above and below it, so a
client's pixels say which row they came from and whether the crop kept only the centre.

What must hold: each client agrees attribute with label in exactly round(rho * n) samples (counted
from the attribute file / csv for the rows the client got), with balanced labels; clients are
disjoint; a seed gives the same clients; both run end to end through the CLI and `data show` draws
them; bad input (unknown attribute, missing file, column or image, a request the data cannot fill)
is one line, refused before any image is decoded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pftlab.cli import main
from pftlab.core.errors import CorruptFile, UserError
from pftlab.data.benchmarks import build_federation, celeba, chexpert
from pftlab.data.dataset import FederatedData
from pftlab.data.sources import catalog, files
from pftlab.experiment.config import DataConfig, from_dict

QUICKSTART = str(Path(__file__).parents[2] / "configs" / "quickstart.toml")
RHOS = [1.0, 0.75, 0.0, 0.35]  # 20, 15, 0 and 7 of 20 samples agree
N = 20  # samples per client
BLOND, MALE = celeba.ATTRIBUTES.index("Blond_Hair"), celeba.ATTRIBUTES.index("Male")


def colour(k: int) -> tuple[int, int, int]:
    """Row k's colour: any two of the stand-in's rows differ by more than 4 in red or green."""
    return (5 * k) % 256, (11 * k) % 256, 128


def jpeg(width: int, height: int, fill: tuple[int, ...], mode: str = "RGB") -> bytes:
    """A solid `fill` square in the centre of a taller image, black above and below.

    Sides in whole 8-pixel JPEG blocks and no chroma subsampling, so no colour bleeds across the square's edges.
    """
    im = Image.new(mode, (width, height), 0)
    top = (height - width) // 2
    im.paste(Image.new(mode, (width, width), fill if mode == "RGB" else fill[0]), (0, top))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, subsampling=0)
    return buf.getvalue()


@dataclass
class CelebA:
    root: Path
    attrs: np.ndarray  # (rows, 40) of 1 / -1, as written

    def pin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Pin the stand-in files' checksums where the catalog pins the real ones."""
        for rel in (celeba.ZIP, celeba.ATTRIBUTES_FILE):
            data = (self.root / rel).read_bytes()
            monkeypatch.setitem(catalog.KNOWN, rel, (hashlib.sha256(data).hexdigest(), len(data)))


def write_celeba(root: Path, rows: int = 160, members: int | None = None) -> CelebA:
    """A CelebA stand-in: 40 rows in each (Blond_Hair, Male) group, other attributes random; `members` images zipped."""
    rng = np.random.default_rng(0)
    attrs = rng.choice(np.array([-1, 1], dtype=np.int8), size=(rows, 40))
    k = np.arange(rows)
    attrs[:, BLOND] = np.where(k % 2 == 1, 1, -1)
    attrs[:, MALE] = np.where((k // 2) % 2 == 1, 1, -1)
    folder = root / "celeba"
    folder.mkdir(parents=True)
    lines = [str(rows), " ".join(celeba.ATTRIBUTES) + " "]
    lines += [f"{i + 1:06d}.jpg" + "".join(f" {v:2d}" for v in attrs[i]) for i in range(rows)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as z:
        z.writestr("img_align_celeba/", b"")
        for i in range(rows if members is None else members):
            z.writestr(f"img_align_celeba/{i + 1:06d}.jpg", jpeg(16, 32, colour(i)))
    return CelebA(root, attrs)


HEADER_LINE = (  # CheXpert-v1.0-small/train.csv's first line
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,"
    "Support Devices"
)
HEADER = HEADER_LINE.split(",")


def chexpert_rows(rows: int = 320) -> list[dict[str, str]]:
    """Rows in every (label, attribute) group, plus the ones a benchmark drops: lateral, sex unknown, uncertain."""
    out = []
    for k in range(rows):
        lateral = k % 16 == 15
        row = dict.fromkeys(HEADER, "")
        row["Path"] = (
            f"CheXpert-v1.0-small/train/patient{k + 1:05d}/study1/view1_{'lateral' if lateral else 'frontal'}.jpg"
        )
        row["Sex"] = "Unknown" if k % 16 == 14 else ("Male" if (k // 2) % 2 else "Female")
        row["Age"] = str(20 + k % 60)
        row["Frontal/Lateral"] = "Lateral" if lateral else "Frontal"
        row["AP/PA"] = "" if lateral else ("LL" if k % 16 == 12 else ("AP" if k % 3 else "PA"))
        row["Pleural Effusion"] = "-1.0" if k % 16 == 13 else ("1.0" if k % 2 else ("" if k % 4 == 0 else "0.0"))
        row["Edema"] = "1.0" if k % 5 == 0 else ""
        out.append(row)
    return out


def write_chexpert(root: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    folder = root / "CheXpert-v1.0-small"
    folder.mkdir(parents=True)
    with (folder / "train.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    for k, row in enumerate(rows):
        path = root / row["Path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(24, 40, (colour(k)[0],), "L"))
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root and a cache of this test's own."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("PFTLAB_DATA", str(data))
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    return data


@pytest.fixture
def standin(root: Path, monkeypatch: pytest.MonkeyPatch) -> CelebA:
    made = write_celeba(root)
    made.pin(monkeypatch)
    return made


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the images either benchmark decodes."""
    count = [0]
    for module in (celeba, chexpert):
        real = module.decode_square

        def counting(*args: Any, _real: Callable[..., np.ndarray] = real, **kwargs: Any) -> np.ndarray:
            count[0] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "decode_square", counting)
    return count


def federation(benchmark: str, seed: int = 0, **keys: Any) -> FederatedData:
    keys = {"num_clients": 4, "samples_per_client": N, "correlations": RHOS, **keys}
    return build_federation(DataConfig(benchmark=benchmark, **keys), seed)


def pooled(fed: FederatedData, cid: int, attr: str) -> np.ndarray:
    """One client's samples in the order of its source_index (undoing the train / val / test split)."""
    entry, client = fed.partition[cid], fed.clients[cid]
    parts = [getattr(client, s) for s in ("train", "val", "test")]
    first = getattr(parts[0], attr) if attr != "spurious" else parts[0].meta["spurious"]
    out = np.empty((len(entry["source_index"]), *first.shape[1:]), dtype=first.dtype)
    for split, part in zip(("train", "val", "test"), parts, strict=True):
        out[entry[split]] = getattr(part, attr) if attr != "spurious" else part.meta["spurious"]
    return out


def check_spurious_shares(fed: FederatedData, label: np.ndarray, attribute: np.ndarray) -> None:
    """Labels and attributes of the rows each client got, as the files say: exact shares, balanced, disjoint."""
    seen: set[int] = set()
    for cid, rho in enumerate(RHOS):
        src = np.array(fed.partition[cid]["source_index"])
        y, a = label[src], attribute[src]
        assert np.array_equal(pooled(fed, cid, "y"), y), "a client's labels are its rows' labels"
        assert np.array_equal(pooled(fed, cid, "spurious"), a)
        assert len(src) == N and int(y.sum()) == N // 2, "labels balanced"
        assert int((y == a).sum()) == round(rho * N), (cid, int((y == a).sum()), rho)
        assert fed.clients[cid].domain == f"rho={rho:g}"
        assert not seen & set(src.tolist()), "clients are disjoint"
        seen |= set(src.tolist())
    assert fed.num_classes == 2


# ---------------------------------------------------------------- celeba


def test_celeba_clients_have_their_correlation_exactly(standin: CelebA) -> None:
    fed = federation("celeba")
    check_spurious_shares(fed, (standin.attrs[:, BLOND] > 0).astype(int), (standin.attrs[:, MALE] > 0).astype(int))
    assert fed.input_shape == (3, 32, 32)
    for cid in range(fed.num_clients):
        src = np.array(fed.partition[cid]["source_index"])
        x = pooled(fed, cid, "x") * 255
        want = np.array([colour(int(k)) for k in src], dtype=np.float32)[:, :, None, None]
        assert np.abs(x - want).max() <= 6, "each face is its row's image, centre-cropped (no black band)"


def test_celeba_other_attributes_and_the_same_seed_give_the_same_clients(standin: CelebA, decoded: list[int]) -> None:
    first = federation("celeba", seed=3)
    assert decoded[0] == 4 * N
    again = federation("celeba", seed=3)
    assert decoded[0] == 4 * N, "the same configuration reads its cache"
    assert again.partition_hash == first.partition_hash
    other = federation("celeba", seed=4)
    assert [e["source_index"] for e in other.partition] != [e["source_index"] for e in first.partition]
    smiling = federation("celeba", target="Smiling", spurious="Young", correlations=[0.6, 0.5])
    y = standin.attrs[:, celeba.ATTRIBUTES.index("Smiling")] > 0
    a = standin.attrs[:, celeba.ATTRIBUTES.index("Young")] > 0
    for cid, rho in enumerate([0.6, 0.5, 0.6, 0.5]):
        src = np.array(smiling.partition[cid]["source_index"])
        assert int((y[src] == a[src]).sum()) == round(rho * N) and int(y[src].sum()) == N // 2


def test_celeba_hashes_the_zip_only_when_its_cache_is_built(
    standin: CelebA, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real = files.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(files, "file_sha256", counting)
    federation("celeba")
    assert sorted(hashed) == ["img_align_celeba.zip", "list_attr_celeba.txt"]
    hashed.clear()
    (root / celeba.ZIP).rename(root / "moved.zip")  # a cache hit reads no source file
    federation("celeba")
    assert hashed == []
    (root / "moved.zip").rename(root / celeba.ZIP)
    federation("celeba", seed=1)
    assert "img_align_celeba.zip" in hashed


def test_celeba_runs_end_to_end_and_shows(
    standin: CelebA, tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = ['data={benchmark="celeba"}', *tiny, f"data.samples_per_client={N}", "data.correlations=[0.9, 0.1]"]
    out = tmp_path / "run"
    assert main(["run", QUICKSTART, "--out", str(out), "--no-progress", *(a for s in sets for a in ("--set", s))]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "celeba" and summary["num_clients"] == 4
    png = tmp_path / "celeba.png"
    show = ["data", "show", "celeba", "--size", "quick", "--set", f"data.samples_per_client={N}", "--out", str(png)]
    assert main(show) == 0
    assert "rho=0.9" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ({"target": "Blonde_Hair"}, "data.target: unknown CelebA attribute 'Blonde_Hair'; allowed: 5_o_Clock_Shadow, "),
        ({"spurious": "male"}, "data.spurious: unknown CelebA attribute 'male'; allowed: "),
        ({"spurious": "Blond_Hair"}, "data.target and data.spurious are both 'Blond_Hair'"),
        ({"correlations": [1.5]}, r"data.correlations: each correlation must lie in [0, 1]"),
    ],
)
def test_celeba_bad_keys_are_one_line_config_errors(keys: dict[str, object], says: str) -> None:
    with pytest.raises(UserError) as err:
        from_dict({"data": {"benchmark": "celeba", **keys}})
    assert says in str(err.value) and "\n" not in str(err.value)
    if "allowed" in says:
        assert ", ".join(celeba.ATTRIBUTES) in str(err.value)


def test_celeba_unknown_attribute_through_the_cli(standin: CelebA, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "show", "celeba", "--set", 'data.spurious="Blond"']) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown CelebA attribute 'Blond'" in err and "Wearing_Necktie" in err and "\n" not in err


@pytest.mark.parametrize("missing", [celeba.ATTRIBUTES_FILE, celeba.ZIP])
def test_celeba_missing_file_says_where_to_get_it(
    standin: CelebA, root: Path, missing: str, decoded: list[int]
) -> None:
    (root / missing).unlink()
    with pytest.raises(UserError) as err:
        federation("celeba")
    message = str(err.value)
    assert f"dataset file {missing} is missing" in message and "mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in message
    assert "\n" not in message and decoded[0] == 0


def test_celeba_altered_file_fails_its_pinned_checksum(standin: CelebA, root: Path, decoded: list[int]) -> None:
    with (root / celeba.ZIP).open("ab") as f:
        f.write(b"x")
    with pytest.raises(CorruptFile, match=r"celeba/img_align_celeba\.zip .* fails its checksum"):
        federation("celeba")
    assert decoded[0] == 0


def test_celeba_bad_data_is_refused_before_decoding(
    root: Path, monkeypatch: pytest.MonkeyPatch, decoded: list[int]
) -> None:
    write_celeba(root, members=10).pin(monkeypatch)  # the zip holds only the first 10 faces
    with pytest.raises(UserError, match=r"img_align_celeba\.zip has no member img_align_celeba/\d{6}\.jpg"):
        federation("celeba")
    with pytest.raises(UserError) as err:
        federation("celeba", samples_per_client=100)  # 200 blond faces wanted from 80
    assert "celeba: the clients need" in str(err.value) and "but the data has 40" in str(err.value)
    assert "lower data.samples_per_client" in str(err.value) and "\n" not in str(err.value)
    assert decoded[0] == 0


def test_celeba_rejects_a_file_not_in_its_format(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = write_celeba(root)
    attributes = root / celeba.ATTRIBUTES_FILE
    attributes.write_text(attributes.read_text().replace("Male", "Female", 1))
    made.pin(monkeypatch)
    with pytest.raises(UserError, match="second line must name the 40 attributes"):
        federation("celeba")


# ---------------------------------------------------------------- chexpert


def expected(rows: list[dict[str, str]], spurious: str, uncertain: str) -> tuple[np.ndarray, np.ndarray]:
    """Every csv row's label and attribute as the benchmark should read them (-1: dropped)."""
    ones = {"Sex": "Male", "AP/PA": "AP", "Frontal/Lateral": "Frontal"}[spurious]
    zeros = {"Sex": "Female", "AP/PA": "PA", "Frontal/Lateral": "Lateral"}[spurious]
    label = {"1.0": 1, "0.0": 0, "": 0, "-1.0": {"drop": -1, "positive": 1, "negative": 0}[uncertain]}
    y = np.array([label[r["Pleural Effusion"]] for r in rows])
    a = np.array([1 if r[spurious] == ones else (0 if r[spurious] == zeros else -1) for r in rows])
    return y, a


@pytest.mark.parametrize(("spurious", "uncertain"), [("Sex", "drop"), ("AP/PA", "positive")])
def test_chexpert_clients_have_their_correlation_exactly(root: Path, spurious: str, uncertain: str) -> None:
    rows = chexpert_rows()
    write_chexpert(root, rows)
    fed = federation("chexpert", spurious=spurious, uncertain=uncertain)
    y, a = expected(rows, spurious, uncertain)
    check_spurious_shares(fed, y, a)
    chosen = np.concatenate([e["source_index"] for e in fed.partition])
    assert (y[chosen] >= 0).all() and (a[chosen] >= 0).all(), "dropped rows are never chosen"
    assert all(rows[k]["Frontal/Lateral"] == "Frontal" for k in chosen), "frontal views only"
    if uncertain == "positive":
        assert any(rows[k]["Pleural Effusion"] == "-1.0" for k in chosen)
    assert fed.input_shape == (1, 32, 32)
    for cid in range(fed.num_clients):
        src = np.array(fed.partition[cid]["source_index"])
        x = pooled(fed, cid, "x") * 255
        want = np.array([colour(int(k))[0] for k in src], dtype=np.float32)[:, None, None, None]
        assert np.abs(x - want).max() <= 6, "each image is its row's, grey, centre-cropped"


def test_chexpert_same_seed_same_clients(root: Path) -> None:
    write_chexpert(root, chexpert_rows())
    a, b, c = federation("chexpert", seed=5), federation("chexpert", seed=5), federation("chexpert", seed=6)
    assert a.partition_hash == b.partition_hash
    assert [e["source_index"] for e in a.partition] != [e["source_index"] for e in c.partition]


def test_chexpert_runs_end_to_end_and_shows(
    root: Path, tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_chexpert(root, chexpert_rows())
    sets = ['data={benchmark="chexpert"}', *tiny, f"data.samples_per_client={N}", "data.image_size=16"]
    out = tmp_path / "run"
    assert main(["run", QUICKSTART, "--out", str(out), "--no-progress", *(a for s in sets for a in ("--set", s))]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "chexpert" and summary["num_clients"] == 4
    png = tmp_path / "chexpert.png"
    show = ["data", "show", "chexpert", "--size", "quick", "--set", f"data.samples_per_client={N}", "--out", str(png)]
    assert main(show) == 0
    assert "rho=0.1" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_chexpert_missing_layout_is_named_in_one_line(root: Path, decoded: list[int]) -> None:
    def refused() -> str:
        with pytest.raises(UserError) as err:
            federation("chexpert")
        assert "\n" not in str(err.value)
        return str(err.value)

    message = refused()
    assert "no folder" in message and "CheXpert-v1.0-small" in message
    assert "stanfordmlgroup.github.io/competitions/chexpert" in message
    rows = chexpert_rows()
    folder = write_chexpert(root, rows)
    (folder / "train.csv").unlink()
    assert "CheXpert-v1.0-small/train.csv is missing" in refused()
    (folder / "train.csv").write_text(",".join(h for h in HEADER if h != "Sex") + "\n")
    assert "has no column 'Sex'; its columns: Path, Age," in refused()
    with (folder / "train.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, HEADER)
        writer.writeheader()
        writer.writerows(rows)
    for k in range(0, len(rows), 2):  # half the images are gone: some client needs one of them
        (root / rows[k]["Path"]).unlink()
    message = refused()
    assert message.startswith("image CheXpert-v1.0-small/train/patient") and "is missing" in message
    assert "named in CheXpert-v1.0-small/train.csv line " in message
    assert decoded[0] == 0, "nothing is decoded before every file is found"


def test_chexpert_bad_values_and_requests(root: Path, decoded: list[int]) -> None:
    rows = chexpert_rows()
    rows[6]["Pleural Effusion"] = "2.0"
    write_chexpert(root, rows)
    with pytest.raises(UserError, match=r"train\.csv line 8: column 'Pleural Effusion' holds '2\.0'; allowed: "):
        federation("chexpert")
    with pytest.raises(UserError, match=r"chexpert: the clients need \d+ samples with .* lower data\.samples"):
        federation("chexpert", target="Edema", samples_per_client=200)
    assert decoded[0] == 0
    for keys, says in [
        ({"target": "Effusion"}, "unknown CheXpert label column 'Effusion'; allowed: No Finding, "),
        ({"spurious": "Frontal/Lateral"}, "needs data.frontal_only = false"),
        ({"spurious": "Age"}, "data.spurious"),
        ({"uncertain": "ignore"}, "data.uncertain"),
    ]:
        with pytest.raises(UserError) as err:
            from_dict({"data": {"benchmark": "chexpert", **keys}})
        assert says in str(err.value) and "\n" not in str(err.value)
