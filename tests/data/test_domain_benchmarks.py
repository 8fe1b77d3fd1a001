"""PACS, Office-Home and DomainNet, each read from a tiny stand-in made here in the dataset's own on-disk layout.

What must hold: each runs end to end through `pftlab run` and draws its clients with `pftlab data show`;
a missing domain folder or zip, or a misshapen one, is refused in one line naming it before any image is
decoded; an unknown domain is refused listing the allowed ones; `samples_per_domain` caps each domain,
drawn by the seed before decoding; classes are the union over every domain, whichever are chosen; PACS
reads its folder exactly as image-folder would; DomainNet hashes a zip only when it builds a cache, and
`pftlab data fetch domainnet` gets its zips from a mirror (a file server on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pftlab.cli import main
from pftlab.core.errors import CorruptFile, UserError
from pftlab.data.benchmarks import build_federation, domain_tree, domainnet, office_home, pacs, user_data
from pftlab.data.dataset import FederatedData
from pftlab.data.sources import catalog, files
from pftlab.experiment.config import DataConfig

Serve = Callable[[Path], AbstractContextManager[Any]]

CONFIGS = Path(__file__).parents[2] / "configs" / "benchmarks"
PACS_CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
OFFICE_CLASSES = ("Alarm_Clock", "Backpack", "Batteries", "Bike")  # Bike: in Real World only
DOMAINNET_CLASSES = ("aircraft_carrier", "airplane", "alarm_clock", "zebra")  # zebra: in sketch only
DOMAINS = {"pacs": pacs.DOMAINS, "office-home": office_home.DOMAINS, "domainnet": domainnet.DOMAINS}
RUN = (
    "federated.rounds=3",
    "personalize.epochs=3",
    "method.lp-ft.lp_epochs=1",
    "runtime.progress=false",
    "data.image_size=16",
)


def picture(k: int, i: int, fmt: str) -> bytes:
    """A 10x10 image whose colour says its class k (noise seeded by k and i), encoded as PNG or JPEG."""
    rng = np.random.default_rng(1000 * k + i)
    colour = np.array([(60 * k) % 256, (90 * k + 60) % 256, (200 - 30 * k) % 256])
    pixels = np.clip(colour + rng.integers(-40, 40, (10, 10, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def make_folders(root: Path, domains: Iterable[str], classes: tuple[str, ...], only: dict[str, str]) -> None:
    """root/<domain>/<class>/<i>.jpg|png, 3 images per class; a class in `only` is in that one domain alone."""
    for d, domain in enumerate(domains):
        for k, label in enumerate(classes):
            if only.get(label, domain) != domain:
                continue
            folder = root / domain / label
            folder.mkdir(parents=True)
            for i in range(3):
                fmt, suffix = ("PNG", "png") if d % 2 else ("JPEG", "jpg")
                (folder / f"{i}.{suffix}").write_bytes(picture(k, i, fmt))


def make_pacs(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_folders(root / "PACS", pacs.DOMAINS, PACS_CLASSES, {})
    (root / "PACS" / "photo" / "dog" / ".DS_Store").write_bytes(b"not an image")


def make_office_home(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_folders(root / "OfficeHomeDataset_10072016", office_home.DOMAINS, OFFICE_CLASSES, {"Bike": "Real World"})
    (root / "OfficeHomeDataset_10072016" / "ImageInfo.csv").write_text("image,source\n")


def domain_zip(path: Path, members: dict[str, bytes]) -> None:
    """A zip of `members` with fixed dates, so the same members give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2019, 1, 1, 0, 0, 0)), data)


def pin(monkeypatch: pytest.MonkeyPatch, root: Path, rel: str) -> None:
    """Pin the stand-in at root/rel in the catalog as if it were the official file."""
    f = root / rel
    accepted = ((hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_size),)
    monkeypatch.setitem(catalog.REMOTES, rel, catalog.Remote(rel, (), accepted))


def make_domainnet(root: Path, monkeypatch: pytest.MonkeyPatch, shade: int = 0) -> None:
    """domainnet/<domain>.zip holding <domain>/<class>/<i>.jpg (quickdraw: .png), 3 per class, pinned."""
    for domain in domainnet.DOMAINS:
        fmt, suffix = ("PNG", "png") if domain == "quickdraw" else ("JPEG", "jpg")
        members = {f"{domain}/": b""}  # a folder entry, as zip tools write them
        for k, label in enumerate(DOMAINNET_CLASSES):
            if label == "zebra" and domain != "sketch":
                continue
            for i in range(3):
                members[f"{domain}/{label}/{domain}_{i}.{suffix}"] = picture(k, i + shade, fmt)
        domain_zip(root / domainnet.ZIPS[domain], members)
        pin(monkeypatch, root, domainnet.ZIPS[domain])


MAKERS: dict[str, Callable[[Path, pytest.MonkeyPatch], None]] = {
    "pacs": make_pacs,
    "office-home": make_office_home,
    "domainnet": make_domainnet,
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root, and a cache of this test's own."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("PFTLAB_DATA", str(data))
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    return data


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the images decoded (one entry per image)."""
    seen: list[int] = []
    real = user_data.image_array

    def counting(image: Any, size: int, channels: int) -> np.ndarray:
        seen.append(size)
        return real(image, size, channels)

    monkeypatch.setattr(domain_tree, "image_array", counting)
    return seen


def sets(*keys: str) -> list[str]:
    return [a for k in keys for a in ("--set", k)]


def labels(client: Any) -> list[int]:
    return sorted(np.concatenate([client.train.y, client.val.y, client.test.y]).tolist())


def sizes(fed: FederatedData) -> list[int]:
    return [len(c.train) + len(c.val) + len(c.test) for c in fed.clients]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_runs_end_to_end_and_shows_its_domains(
    name: str, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    MAKERS[name](root, monkeypatch)
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "run"
    assert main(["run", str(CONFIGS / f"{name}.toml"), "--out", str(out), *sets(*RUN)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == name and summary["num_clients"] == len(DOMAINS[name])
    partition = json.loads((out / "partition.json").read_text())
    assert [c["domain"] for c in partition["clients"]] == list(DOMAINS[name])
    capsys.readouterr()
    png = tmp_path / "show.png"
    assert main(["data", "show", name, "--out", str(png)]) == 0
    table = capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"
    for domain in DOMAINS[name]:
        assert domain in table


@pytest.mark.parametrize(
    ("name", "remove", "says"),
    [
        (
            "pacs",
            "PACS",
            r"dataset folder PACS/ is missing under .*drive\.google\.com/uc\?id=1JFr8f805nMUelQWWmfnJR3y4",
        ),
        (
            "pacs",
            "PACS/sketch",
            r"dataset folder PACS/sketch/ is missing under .*; expected PACS/\{art_painting,cartoon,photo,sketch\}/"
            r"<class>/<image>",
        ),
        ("office-home", "OfficeHomeDataset_10072016/Real World", r"OfficeHomeDataset_10072016/Real World/ is missing"),
        ("domainnet", "domainnet/quickdraw.zip", r"domainnet/quickdraw\.zip is missing.*pftlab data fetch domainnet"),
    ],
)
def test_a_missing_domain_is_named_in_one_line_before_anything_is_decoded(
    name: str,
    remove: str,
    says: str,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    decodes: list[int],
) -> None:
    MAKERS[name](root, monkeypatch)
    gone = root / remove
    if gone.is_dir():
        shutil.rmtree(gone)
    else:
        gone.unlink()
    assert main(["data", "show", name, "--out", str(tmp_path / "show.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pftlab: error: ")
    assert re.search(says, err), err
    assert decodes == [] and not (tmp_path / "show.png").exists()


def test_a_misshapen_layout_or_image_is_refused_in_one_line(
    root: Path, monkeypatch: pytest.MonkeyPatch, decodes: list[int]
) -> None:
    make_office_home(root, monkeypatch)
    art = root / "OfficeHomeDataset_10072016" / "Art"
    for f in list(art.rglob("*.jpg")):  # the images straight in the domain folder: no class folders
        f.rename(art / f"{f.parent.name}-{f.name}")
    for folder in [p for p in art.iterdir() if p.is_dir()]:
        folder.rmdir()
    with pytest.raises(UserError, match=r"dataset folder OfficeHomeDataset_10072016/Art/ under .* holds no images; "):
        build_federation(DataConfig(benchmark="office-home"), 0)

    make_domainnet(root, monkeypatch)
    domain_zip(root / "domainnet" / "clipart.zip", {"images/airplane/0.jpg": picture(1, 0, "JPEG")})
    pin(monkeypatch, root, "domainnet/clipart.zip")  # as if official: what is refused is the layout
    with pytest.raises(UserError, match=r"domainnet/clipart\.zip holds no images as clipart/<class>/<image>"):
        build_federation(DataConfig(benchmark="domainnet"), 0)
    (root / "domainnet" / "clipart.zip").write_bytes(b"not a zip")
    pin(monkeypatch, root, "domainnet/clipart.zip")
    with pytest.raises(UserError, match=r"domainnet/clipart\.zip cannot be read as a zip file"):
        build_federation(DataConfig(benchmark="domainnet"), 0)
    assert decodes == []

    make_pacs(root, monkeypatch)
    cfg = DataConfig(benchmark="pacs", clients_per_domain=30)
    with pytest.raises(
        UserError, match=r"domain 'art_painting' has 21 images, fewer than data.clients_per_domain = 30"
    ):
        build_federation(cfg, 0)
    (root / "PACS" / "photo" / "dog" / "0.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserError, match=r"cannot decode image PACS/photo/dog/0\.png: "):
        build_federation(DataConfig(benchmark="pacs"), 0)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_an_unknown_domain_is_refused_listing_the_allowed_ones(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "show", name, "--out", str(tmp_path / "x.png"), *sets('data.domains=["mars"]')]) == 2
    err = capsys.readouterr().err
    allowed = ", ".join(DOMAINS[name])
    assert err == f"pftlab: error: config: data.domains: unknown domain 'mars'; allowed: {allowed} (got ['mars'])\n"
    first = DOMAINS[name][0]
    with pytest.raises(ValueError, match=r"a domain is listed twice"):
        DataConfig.model_validate({"benchmark": name, "domains": [first, first]})
    with pytest.raises(ValueError, match=r"makes 1 client; a federation needs at least 2"):
        DataConfig.model_validate({"benchmark": name, "domains": [first]})
    two = DataConfig.model_validate({"benchmark": name, "domains": [first], "clients_per_domain": 2})
    assert two.params().domains == [first]


def test_samples_per_domain_caps_each_domain_drawn_by_the_seed_before_decoding(
    root: Path, monkeypatch: pytest.MonkeyPatch, decodes: list[int]
) -> None:
    make_pacs(root, monkeypatch)

    def fed(seed: int, domains: list[str]) -> FederatedData:
        return build_federation(DataConfig(benchmark="pacs", samples_per_domain=5, domains=domains), seed)

    a = fed(0, ["photo", "sketch"])
    assert sizes(a) == [5, 5] and len(decodes) == 10, "only the drawn images are decoded"
    picks = [entry["source_index"] for entry in a.partition]
    assert all(len(set(p)) == 5 and set(p) <= set(range(21)) for p in picks)
    again, other = fed(0, ["photo", "sketch"]), fed(1, ["photo", "sketch"])
    assert again.partition_hash == a.partition_hash
    np.testing.assert_array_equal(again.clients[0].train.x, a.clients[0].train.x)
    assert [e["source_index"] for e in other.partition] != picks
    alone = fed(0, ["sketch", "art_painting"])  # a domain's draw does not depend on the others
    assert alone.partition[0]["source_index"] == picks[1]
    everything = build_federation(DataConfig(benchmark="pacs"), 0)
    assert sizes(everything) == [21] * 4


def test_classes_are_the_union_over_every_domain_whichever_are_chosen(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_office_home(root, monkeypatch)
    two = build_federation(DataConfig(benchmark="office-home", domains=["Art", "Clipart"], clients_per_domain=2), 0)
    assert [c.domain for c in two.clients] == ["Art/0", "Art/1", "Clipart/0", "Clipart/1"]
    assert two.num_classes == 4 and two.clients[0].train.meta["classes"] == sorted(OFFICE_CLASSES)
    real = build_federation(DataConfig(benchmark="office-home", domains=["Real World", "Art"]), 0)
    assert real.num_classes == 4 and labels(real.clients[0]) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    # Art's images keep their labels whichever domains are chosen (Bike, 3, is in Real World only)
    assert (
        sorted(labels(two.clients[0]) + labels(two.clients[1]))
        == labels(real.clients[1])
        == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    )


def test_pacs_reads_its_folder_exactly_as_image_folder_would(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_pacs(root, monkeypatch)
    a = build_federation(DataConfig(benchmark="pacs", clients_per_domain=2), 0)
    b = build_federation(
        DataConfig(benchmark="image-folder", path=str(root / "PACS"), layout="domain/class", clients_per_domain=2), 0
    )
    assert (
        [c.domain for c in a.clients]
        == [c.domain for c in b.clients]
        == [f"{d}/{k}" for d in pacs.DOMAINS for k in (0, 1)]
    )
    for ca, cb in zip(a.clients, b.clients, strict=True):
        for split in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(ca, split).x, getattr(cb, split).x)
            np.testing.assert_array_equal(getattr(ca, split).y, getattr(cb, split).y)


def test_domainnet_hashes_a_zip_only_when_it_builds_its_cache(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decodes: list[int]
) -> None:
    make_domainnet(root, monkeypatch)
    hashed: list[str] = []
    real = files.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(files, "file_sha256", counting)
    cfg = DataConfig(benchmark="domainnet", domains=["clipart", "real"], samples_per_domain=4)
    first = build_federation(cfg, 0)
    zips = sorted(f"{d}.zip" for d in domainnet.DOMAINS)
    assert sorted(hashed) == sorted([*zips, "clipart.zip", "real.zip"]), "each zip listed once, two drawn"
    assert len(decodes) == 8
    cached = tmp_path / "cache" / "decoded"
    assert len(list(cached.glob("domainnet-*-listing-*.npz"))) == 6 and len(list(cached.glob("*px*.npz"))) == 2
    hashed.clear()
    decodes.clear()
    again = build_federation(cfg, 0)
    assert hashed == [] and decodes == [], "a cached draw reads neither the zips nor their images"
    assert again.partition_hash == first.partition_hash
    np.testing.assert_array_equal(again.clients[1].test.x, first.clients[1].test.x)
    build_federation(cfg, 1)  # another draw: another cache, built from zips verified again
    assert sorted(hashed) == ["clipart.zip", "real.zip"]
    with pytest.MonkeyPatch.context() as throwaway:  # the same members with other pixels; the pins stay the first's
        make_domainnet(root, throwaway, shade=7)
    assert build_federation(cfg, 0).partition_hash == first.partition_hash  # the cache was built from verified zips
    with pytest.raises(CorruptFile, match=r"domainnet/clipart\.zip at .* fails its checksum"):
        build_federation(cfg, 2)


def test_a_classes_index_does_not_depend_on_the_domains_chosen_in_domainnet(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_domainnet(root, monkeypatch)
    fed = build_federation(DataConfig(benchmark="domainnet", domains=["painting", "quickdraw"]), 0)
    assert fed.num_classes == 4 and fed.clients[0].train.meta["classes"] == list(DOMAINNET_CLASSES)
    assert sizes(fed) == [9, 9] and fed.input_shape == (3, 32, 32)


def test_fetch_domainnet_from_a_mirror_gives_zips_a_run_reads(
    serve_files: Serve, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    make_domainnet(mirror, monkeypatch)
    with serve_files(mirror) as server:
        assert main(["data", "fetch", "domainnet", "--to", str(root), "--mirror", server.url, "--no-progress"]) == 0
        assert sorted(path for path, _ in server.requests) == sorted(domainnet.ZIPS.values())
    out = capsys.readouterr().out
    for rel in domainnet.ZIPS.values():
        assert (root / rel).read_bytes() == (mirror / rel).read_bytes()
        assert f"ok  {rel}" in out
    fed = build_federation(DataConfig(benchmark="domainnet", size="quick"), 0)
    assert [c.domain for c in fed.clients] == ["clipart", "sketch"] and fed.num_classes == 4


@pytest.mark.parametrize(
    ("name", "folder", "says"),
    [
        ("pacs", "PACS/", "https://drive.google.com/uc?id=1JFr8f805nMUelQWWmfnJR3y4_SYoN5Pd"),
        ("office-home", "OfficeHomeDataset_10072016/", "https://www.hemanthdv.org/officeHomeDataset.html"),
    ],
)
def test_fetch_says_where_pacs_and_office_home_come_from(
    name: str, folder: str, says: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "fetch", name, "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"by hand  {folder}: " in out and says in out
