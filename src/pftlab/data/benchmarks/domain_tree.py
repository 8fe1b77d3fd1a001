"""Domain-shift datasets read in their own layout: <domain>/<class>/<image>, as folders or inside zips.

PACS, Office-Home and DomainNet are each a few visual domains (photo, sketch, clipart, ...) over
one set of classes, and the study gives each client one domain. Their benchmarks differ only in
their domains, where the layout lives and the default sample cap, so what they share is here:

- `folder_tree` / `zip_listing` list a domain's images (a `Listing`: its members sorted by class
  and name, and its classes) from folder listings or a zip's directory: nothing is decoded or
  extracted, and a missing domain folder or zip (`require_files`), or one without
  `<domain>/<class>/<image>` inside, is refused in one line first;
- `drawn` picks a domain's images: all, or `samples_per_domain` of its sorted list drawn from
  (seed, 'domain-sample', domain), so only the images a run uses are decoded (DomainNet has
  ~600,000) and a domain's draw does not depend on the other domains;
- `domain_pools` decodes the picks (Pillow, converted to RGB and resized as image-folder does)
  and splits each domain into `clients_per_domain` IID clients with image-folder's own seeded
  split (`domain_parts`), named 'domain' or 'domain/k'.

Classes are the sorted union of the class folders of ALL the dataset's domains, whichever
domains a config picks, so a class keeps its index across configs (and across their runs).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, NamedTuple

import numpy as np
from pydantic import Field, field_validator, model_validator

from pftlab.core.errors import UserError
from pftlab.core.schema import Strict
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.user_data import IMAGE_SUFFIXES, decode_errors, domain_parts, image_array
from pftlab.data.dataset import Dataset
from pftlab.data.federate import ClientPool
from pftlab.data.sources.files import DATA_ENV, data_root, origin
from pftlab.data.transforms import subsample


class Entry(NamedTuple):
    """One image: its domain, its class folder's name, and where it is (a path under the data root, or a zip member)."""

    domain: str
    label: str
    member: str


@dataclass(frozen=True)
class Listing:
    """One domain's images, as paths under the data root or zip members ending <class>/<image>, sorted by (class,
    member); and its classes. Kept as plain strings, not an `Entry` each, so DomainNet's ~600,000 cost little."""

    members: list[str]
    classes: list[str]

    def entries(self, domain: str, picks: np.ndarray) -> list[Entry]:
        return [Entry(domain, label_of(self.members[i]), self.members[i]) for i in picks]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """As arrays for a cache: the members as one newline-joined UTF-8 blob (a fixed-width string array of
        ~600,000 paths would take 100+ MB)."""
        blob = np.frombuffer("\n".join(self.members).encode(), dtype=np.uint8)
        return {"members": blob, "classes": np.array(self.classes)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Listing:
        return cls(arrays["members"].tobytes().decode().split("\n"), arrays["classes"].tolist())


def label_of(member: str) -> str:
    """A member's class: the name of the folder holding it."""
    return member.rsplit("/", 2)[-2]


def listing(members: Sequence[str]) -> Listing:
    ordered = sorted(members, key=lambda m: (label_of(m), m))
    return Listing(ordered, sorted({label_of(m) for m in ordered}))


Tree = dict[str, Listing]  # every domain of a dataset -> its images
Decoder = Callable[[str, list[Entry], int], np.ndarray]  # (domain, entries, size) -> float32 (N, 3, size, size)


class DomainParams(Strict):
    """The keys of every domain-shift benchmark; a subclass names its dataset's `DOMAINS` and the defaults."""

    DOMAINS: ClassVar[tuple[str, ...]] = ()

    domains: list[str] = Field(default=[], min_length=1, max_length=100, description="the domains that are clients")
    clients_per_domain: int = Field(1, ge=1, le=10_000, description="IID clients per domain (1: a client is a domain)")
    samples_per_domain: int = Field(0, ge=0, le=10_000_000, description="images drawn per domain (seeded); 0 = all")
    image_size: int = Field(32, ge=4, le=512)

    @field_validator("domains")
    @classmethod
    def _known(cls, domains: list[str]) -> list[str]:
        for d in domains:
            if d not in cls.DOMAINS:
                raise ValueError(f"unknown domain {d!r}; allowed: {', '.join(cls.DOMAINS)}")
        if len(set(domains)) < len(domains):
            raise ValueError(f"a domain is listed twice; allowed: each of {', '.join(cls.DOMAINS)} at most once")
        return domains

    @model_validator(mode="after")
    def _two_clients(self) -> DomainParams:
        if len(self.domains) * self.clients_per_domain < 2:
            raise ValueError(
                f"data.domains = {self.domains} with data.clients_per_domain = 1 makes 1 client; a federation needs "
                "at least 2: add a domain or raise data.clients_per_domain"
            )
        if 0 < self.samples_per_domain < self.clients_per_domain:
            raise ValueError(
                f"data.samples_per_domain = {self.samples_per_domain} cannot give data.clients_per_domain = "
                f"{self.clients_per_domain} clients an image each; allowed: 0 (all) or >= clients_per_domain"
            )
        return self


def domain_size(p: DomainParams) -> str:
    """A benchmark's size, for `pftlab data list`."""
    per = f"{p.samples_per_domain:,} images per domain" if p.samples_per_domain else "every image"
    return f"{len(p.domains) * p.clients_per_domain} clients, {per}"


def _visible(folder: Path) -> list[Path]:
    """The entries of `folder` whose names do not start with '.', sorted; an unreadable folder is refused."""
    try:
        return sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    except OSError as err:
        raise UserError(f"cannot list folder {folder}: {err.strerror or err}; make it readable") from None


def _is_image(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def folder_tree(root: str, domains: Sequence[str]) -> Tree:
    """Every image of a dataset laid out as ROOT/<domain>/<class>/<image> under the data root ("ROOT/" ends in /)."""
    base = data_root()
    layout = f"{root}{{{','.join(domains)}}}/<class>/<image>"
    if not (base / root).is_dir():
        raise UserError(
            f"dataset folder {root} is missing under {base} (or set ${DATA_ENV} to the folder that holds the "
            f"datasets); how to get it: {origin(root)}"
        )
    tree: Tree = {}
    for d in domains:
        folder = base / root / d
        if not folder.is_dir():
            raise UserError(
                f"dataset folder {root}{d}/ is missing under {base}; expected {layout}; how to get it: {origin(root)}"
            )
        members = [
            f"{root}{d}/{c.name}/{f.name}"
            for c in _visible(folder)
            if c.is_dir()
            for f in _visible(c)
            if _is_image(f.name) and f.is_file()
        ]
        if not members:
            raise UserError(f"dataset folder {root}{d}/ under {base} holds no images; expected {layout}")
        tree[d] = listing(members)
    return tree


def require_files(paths: Iterable[str]) -> None:
    """Refuse (one line) the first of these files that is not under the data root, before any is read."""
    base = data_root()
    for rel in paths:
        if not (base / rel).is_file():
            raise UserError(
                f"dataset file {rel} is missing: no file at {base / rel}; the file comes from {origin(rel)} "
                f"(set ${DATA_ENV} to the folder that holds the datasets)"
            )


def _in_domain(name: str, domain: str) -> bool:
    """A zip member named <domain>/<class>/<image> (not a hidden class folder, no line break in the name)."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != domain or not parts[1] or parts[1].startswith(".") or "\n" in name:
        return False
    return _is_image(parts[2])


def zip_listing(path: Path, rel: str, domain: str) -> Listing:
    """The images of a domain's zip holding <domain>/<class>/<image>, from its directory (nothing is extracted);
    `rel` names the zip in messages."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"{rel} cannot be read as a zip file ({err}); replace it with the original") from None
    members = [name for name in names if _in_domain(name, domain)]
    if not members:
        raise UserError(f"{rel} holds no images as {domain}/<class>/<image>; replace it with the original")
    return listing(members)


def drawn(n: int, cap: int, seed: int, domain: str) -> np.ndarray:
    """Which of a domain's `n` sorted images are used: all (cap 0 or >= n), else `cap` drawn from the seed, sorted."""
    if cap == 0 or cap >= n:
        return np.arange(n)
    return subsample(n, cap, numpy_rng(seed, "domain-sample", domain))


def decode_image(source: Path | IO[bytes], what: str, size: int) -> np.ndarray:
    """One image file or stream as float32 (3, size, size) in [0, 1], as image-folder decodes it; `what` names it."""
    from PIL import Image

    try:
        with Image.open(source) as opened:
            return image_array(opened, size, 3)
    except decode_errors() as err:
        raise UserError(f"cannot decode image {what}: {err}; replace it with the original") from None


def decode_files(entries: Sequence[Entry], size: int) -> np.ndarray:
    """The images of a folder tree (members are paths under the data root)."""
    base = data_root()
    return np.stack([decode_image(base / e.member, e.member, size) for e in entries])


def decode_zip(path: Path, rel: str, entries: Sequence[Entry], size: int) -> np.ndarray:
    """The images of one domain's zip at `path` (`rel`: its name in messages), read member by member."""
    out = []
    with zipfile.ZipFile(path) as archive:
        for e in entries:
            try:
                data = archive.read(e.member)
            except (zipfile.BadZipFile, KeyError, OSError) as err:
                raise UserError(f"cannot read {e.member} in {rel} ({err}); replace {rel} with the original") from None
            out.append(decode_image(io.BytesIO(data), f"{e.member} in {rel}", size))
    return np.stack(out)


def domain_pools(name: str, tree: Tree, p: DomainParams, seed: int, decode: Decoder) -> list[ClientPool]:
    """The clients of `p.domains`: each domain's drawn images decoded, labelled and split into its clients.

    `tree` holds every domain of the dataset (the classes are their union); a pool's source_index is
    its images' positions in its domain's sorted list.
    """
    classes = sorted({c for one in tree.values() for c in one.classes})
    if len(classes) < 2:
        raise UserError(f"{name} has one class folder ({classes[0]!r}) in every domain; a classifier needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    picks = {d: drawn(len(tree[d].members), p.samples_per_domain, seed, d) for d in p.domains}
    for d, idx in picks.items():  # refused before anything is decoded
        if len(idx) < p.clients_per_domain:
            raise UserError(
                f"{name} domain {d!r} has {len(idx)} images, fewer than data.clients_per_domain = "
                f"{p.clients_per_domain}; allowed: clients_per_domain <= the smallest domain's image count"
            )
    pools = []
    for d, idx in picks.items():
        entries = tree[d].entries(d, idx)
        x = decode(d, entries, p.image_size)
        y = np.array([index[e.label] for e in entries], dtype=np.int64)
        data = Dataset(x, y, len(classes), name, {"classes": classes})
        for client, part in domain_parts(len(y), d, p.clients_per_domain, seed):
            pools.append(ClientPool(data.subset(part), client, idx[part]))
    return pools


def folder_benchmark(
    name: str, root: str, all_domains: tuple[str, ...], description: str, quick: dict[str, object]
) -> Benchmark:
    """A domain-shift dataset kept as a folder tree `root`<domain>/<class>/<image> (PACS, Office-Home)."""

    class Params(DomainParams):
        DOMAINS: ClassVar[tuple[str, ...]] = all_domains

        domains: list[str] = Field(
            default=list(all_domains), min_length=1, max_length=len(all_domains), description=", ".join(all_domains)
        )

    def pools(p: Params, seed: int) -> list[ClientPool]:
        tree = folder_tree(root, all_domains)
        return domain_pools(name, tree, p, seed, lambda d, entries, size: decode_files(entries, size))

    return Benchmark(
        name,
        "covariate (a visual domain per client)",
        description,
        Params,
        pools,
        quick=quick,
        files=(root,),
        size=domain_size,
    )
