"""pacs: domain shift between photos, art paintings, cartoons and sketches (Li et al. 2017), a domain per client.

Read in the layout DomainBed's copy unzips to (its `kfold/` folder renamed): PACS/<domain>/<class>/<image>
under the data root, 4 domains x 7 classes (dog, elephant, giraffe, guitar, horse, house, person),
9,991 images. It has no stable public download, so it is got by hand (`catalog.MANUAL`). Every image is
used by default (`samples_per_domain = 0`): the whole dataset decodes in seconds at 32 px.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from pftlab.data.benchmarks.base import Benchmark
from pftlab.data.benchmarks.domain_tree import DomainParams, decode_files, domain_pools, domain_size, folder_tree
from pftlab.data.federate import ClientPool

ROOT = "PACS/"
DOMAINS = ("art_painting", "cartoon", "photo", "sketch")


class Params(DomainParams):
    DOMAINS: ClassVar[tuple[str, ...]] = DOMAINS

    domains: list[str] = Field(
        default=list(DOMAINS), min_length=1, max_length=len(DOMAINS), description=", ".join(DOMAINS)
    )


def pools(p: Params, seed: int) -> list[ClientPool]:
    tree = folder_tree(ROOT, DOMAINS)
    return domain_pools("pacs", tree, p, seed, lambda d, entries, size: decode_files(entries, size))


BENCHMARK = Benchmark(
    "pacs",
    "covariate (a visual domain per client)",
    "PACS: photos, art paintings, cartoons and sketches of 7 classes, a domain per client",
    Params,
    pools,
    quick={"domains": ["photo", "sketch"], "samples_per_domain": 100},
    files=(ROOT,),
    size=domain_size,
)
