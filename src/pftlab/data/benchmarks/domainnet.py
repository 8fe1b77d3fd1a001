"""domainnet: domain shift across six styles of 345 classes (Peng et al. 2019), a domain per client.

Read from the official zips without extracting them: domainnet/<domain>.zip under the data root,
each holding <domain>/<class>/<image> (`pftlab data fetch domainnet` downloads them, 18 GB; clipart
and painting are the cleaned "groundtruth" versions). DomainNet has ~600,000 images, so a domain
contributes `samples_per_domain` images (2,000 by default) drawn, seeded, from its sorted list
before anything is decoded.

Hashing the 18 GB of zips takes a minute or more, and listing them seconds (600,000 members), so
both are cached with `files.cached_arrays`, under the pinned sha256 of the zip they come from: each
zip's listing (its member names and classes), and each domain's decoded draw, named by the image
size and a digest of the drawn members. A zip is verified only when a cache is (re)built from it;
a later run with the same draw reads only the caches. A zip that was replaced after its caches
were built is refused (checksum) as soon as another draw needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field

from pftlab.core.io import sha256_hex
from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.domain_tree import (
    DomainParams,
    Entry,
    Listing,
    decode_zip,
    domain_pools,
    domain_size,
    require_files,
    zip_listing,
)
from pftlab.data.federate import ClientPool
from pftlab.data.sources.files import cached_arrays

DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
ZIPS = {d: f"domainnet/{d}.zip" for d in DOMAINS}


class Params(DomainParams):
    DOMAINS: ClassVar[tuple[str, ...]] = DOMAINS

    domains: list[str] = Field(
        default=list(DOMAINS), min_length=1, max_length=len(DOMAINS), description=", ".join(DOMAINS)
    )
    samples_per_domain: int = Field(
        2_000, ge=0, le=10_000_000, description="images drawn per domain (seeded); 0 = all (~600,000 in all)"
    )


def listed(domain: str) -> Listing:
    """The domain's images, listed from its zip once and then read from the cache."""
    rel = ZIPS[domain]
    arrays = cached_arrays(
        f"domainnet-{domain}-listing", [rel], lambda paths: zip_listing(paths[rel], rel, domain).to_arrays()
    )
    return Listing.from_arrays(arrays)


def decoded(domain: str, entries: list[Entry], size: int) -> np.ndarray:
    """The domain's `entries` as float32 images, decoded from its zip once and then read from the cache."""
    rel = ZIPS[domain]
    key = sha256_hex("\n".join(e.member for e in entries).encode())[:12]

    def build(paths: dict[str, Path]) -> dict[str, np.ndarray]:
        x = decode_zip(paths[rel], rel, entries, size)
        return {"x": np.rint(x * 255).astype(np.uint8)}

    arrays = cached_arrays(f"domainnet-{domain}-{size}px-{key}", [rel], build)
    return arrays["x"].astype(np.float32) / np.float32(255.0)


def pools(p: Params, seed: int) -> list[ClientPool]:
    require_files(ZIPS.values())  # all six: the classes are those of every domain
    return domain_pools("domainnet", {d: listed(d) for d in DOMAINS}, p, seed, decoded)


BENCHMARK = Benchmark(
    "domainnet",
    "covariate (a visual domain per client)",
    "DomainNet: clipart, infographics, paintings, quickdraw, photos and sketches of 345 classes, a domain per client",
    Params,
    pools,
    quick={"domains": ["clipart", "sketch"], "samples_per_domain": 300},
    files=tuple(ZIPS.values()),
    size=domain_size,
)
