"""office-home: domain shift between art, clipart, product and real-world photos (Venkateswara et al. 2017).

Read as the official zip unzips: OfficeHomeDataset_10072016/<domain>/<class>/<image> under the data
root, 4 domains (Art, Clipart, Product, Real World) x 65 everyday-object classes, 15,588 images; its
files beside the domain folders (ImageInfo.csv, imagelist.txt) are not read. The download needs its
terms accepted first, so it is got by hand (`catalog.MANUAL`). Every image is used by default.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.domain_tree import DomainParams, decode_files, domain_pools, domain_size, folder_tree
from pftlab.data.federate import ClientPool

ROOT = "OfficeHomeDataset_10072016/"
DOMAINS = ("Art", "Clipart", "Product", "Real World")


class Params(DomainParams):
    DOMAINS: ClassVar[tuple[str, ...]] = DOMAINS

    domains: list[str] = Field(
        default=list(DOMAINS), min_length=1, max_length=len(DOMAINS), description=", ".join(DOMAINS)
    )


def pools(p: Params, seed: int) -> list[ClientPool]:
    tree = folder_tree(ROOT, DOMAINS)
    return domain_pools("office-home", tree, p, seed, lambda d, entries, size: decode_files(entries, size))


BENCHMARK = Benchmark(
    "office-home",
    "covariate (a visual domain per client)",
    "Office-Home: art, clipart, product and real-world images of 65 objects, a domain per client",
    Params,
    pools,
    quick={"domains": ["Clipart", "Product"], "samples_per_domain": 200},
    files=(ROOT,),
    size=domain_size,
)
