"""celeba: concept shift through a spurious face attribute (Blond_Hair against Male by default).

Reads CelebA as published, under the data root: `celeba/img_align_celeba.zip` (the aligned and
cropped 178x218 JPEGs, read from the zip, never extracted) and `celeba/list_attr_celeba.txt`
(the 40 attributes of every image, 1 or -1). The label is `target`, the spurious attribute
`spurious`; client c gets exactly round(rho_c * n) faces whose attribute agrees with the label
(both present or both absent), see `spurious`. Blond men are rare in CelebA (about 1,400 of
202,599 faces), so with the default pair a low rho is the common, natural correlation (blond
women) and the defaults put most clients there; a request the data cannot fill is refused.

The chosen faces are decoded once per configuration and cached (`files.cached_arrays`, keyed by
the parameters, the seed and the pinned sha256 of both files): the pool is 1.4 GB of JPEG in a zip,
so verifying its checksum and decoding thousands of faces costs seconds to minutes, while a run,
`pftlab data show` or a study cell that repeats the configuration then reads a few MB. The zip
is hashed only when such a cache is (re)built.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator, model_validator

from pftlab.core.errors import UserError
from pftlab.core.io import config_hash
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.spurious import SpuriousParams, client_pools, deal, decode_square, refuse_image
from pftlab.data.federate import ClientPool
from pftlab.data.sources.files import cached_arrays

ZIP = "celeba/img_align_celeba.zip"
ATTRIBUTES_FILE = "celeba/list_attr_celeba.txt"
FOLDER_IN_ZIP = "img_align_celeba/"
ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip


class Params(SpuriousParams):
    target: str = Field("Blond_Hair", description="the attribute to predict (one of CelebA's 40)")
    spurious: str = Field("Male", description="the attribute correlated with it, per client")
    samples_per_client: int = Field(500, ge=20, le=100_000)
    correlations: list[float] = Field(
        default=[0.1, 0.2, 0.1, 0.2, 0.9],
        min_length=1,
        max_length=1000,
        description="share of a client's faces whose spurious attribute agrees with the target, cycled over clients",
    )

    @field_validator("target", "spurious")
    @classmethod
    def _an_attribute(cls, name: str) -> str:
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown CelebA attribute {name!r}; allowed: {', '.join(ATTRIBUTES)}")
        return name

    @model_validator(mode="after")
    def _two_attributes(self) -> Params:
        if self.target == self.spurious:
            raise ValueError(f"data.target and data.spurious are both {self.target!r}; name two attributes")
        return self


def read_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """The image file names and their (N, 40) attributes (1 or -1) from list_attr_celeba.txt."""
    bad = f"{ATTRIBUTES_FILE} is not CelebA's attribute list"
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    if len(lines) < 2 or tuple(lines[1].split()) != ATTRIBUTES:
        raise UserError(f"{bad}: its second line must name the 40 attributes; replace it with the original")
    rows = [line.split() for line in lines[2:] if line.strip()]
    if not rows or lines[0].strip() != str(len(rows)):
        raise UserError(f"{bad}: its first line says {lines[0].strip()!r} images, it lists {len(rows)}")
    short = [i for i, row in enumerate(rows) if len(row) != 41]
    cells = np.array([row[1:] for row in rows] if not short else [[""] * 40])
    valid = (cells == "1") | (cells == "-1")
    if short or not valid.all():
        i = short[0] if short else int(np.flatnonzero(~valid.all(1))[0])
        raise UserError(f"{bad}: line {i + 3} is not a file name and 40 values of 1 or -1")
    return [row[0] for row in rows], np.where(cells == "1", 1, -1).astype(np.int8)


def decode(p: Params, seed: int, paths: dict[str, Path]) -> dict[str, np.ndarray]:
    """Choose each client's faces from the attribute list, then decode only those from the zip."""
    names, values = read_attributes(paths[ATTRIBUTES_FILE])
    y = (values[:, ATTRIBUTES.index(p.target)] > 0).astype(np.int64)
    a = (values[:, ATTRIBUTES.index(p.spurious)] > 0).astype(np.int64)
    labels, attribute = (f"not {p.target}", p.target), (f"not {p.spurious}", p.spurious)
    try:
        clients = deal(y, a, p, seed, labels, attribute)
    except UserError as err:
        raise UserError(f"celeba: {err}") from None
    chosen = np.concatenate(clients)
    try:
        archive = zipfile.ZipFile(paths[ZIP])
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{ZIP} cannot be read as a zip file ({err}); replace it with the original") from None
    with archive:
        members = set(archive.namelist())
        missing = [names[i] for i in chosen if FOLDER_IN_ZIP + names[i] not in members]
        if missing:
            raise UserError(
                f"{ZIP} has no member {FOLDER_IN_ZIP}{missing[0]} (named in {ATTRIBUTES_FILE}); "
                "replace it with the original"
            )
        x = np.empty((len(chosen), 3, p.image_size, p.image_size), dtype=np.uint8)
        for k, i in enumerate(chosen):
            member = FOLDER_IN_ZIP + names[i]
            try:
                x[k] = decode_square(archive.read(member), p.image_size, "RGB")
            except Exception as err:  # Pillow's and zipfile's errors alike: the member is not a readable image
                raise refuse_image(f"{member} in {ZIP}", err) from None
    sizes = np.array([len(c) for c in clients], dtype=np.int64)
    return {"x": x, "y": y[chosen], "a": a[chosen], "source": chosen.astype(np.int64), "sizes": sizes}


def pools(p: Params, seed: int) -> list[ClientPool]:
    key = config_hash({**p.model_dump(mode="json"), "seed": seed})[:12]
    arrays = cached_arrays(f"celeba-{key}", [ATTRIBUTES_FILE, ZIP], lambda paths: decode(p, seed, paths))
    return client_pools("celeba", arrays["x"], arrays["y"], arrays["a"], arrays["source"], arrays["sizes"], p)


BENCHMARK = Benchmark(
    "celeba",
    "concept (spurious attribute)",
    "CelebA faces, binary attribute label (Blond_Hair) with a per-client correlation to a spurious one (Male)",
    Params,
    pools,
    quick={"num_clients": 4, "samples_per_client": 100, "correlations": [0.1, 0.2, 0.1, 0.9]},
    files=(ZIP, ATTRIBUTES_FILE),
    size=lambda p: f"{p.num_clients} clients, {p.num_clients * p.samples_per_client:,} faces",
)
