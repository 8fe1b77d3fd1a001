"""pacs: domain shift between photos, art paintings, cartoons and sketches (Li et al. 2017), a domain per client.

Read in the layout DomainBed's copy unzips to (its `kfold/` folder renamed): PACS/<domain>/<class>/<image>
under the data root, 4 domains x 7 classes (dog, elephant, giraffe, guitar, horse, house, person),
9,991 images. It has no stable public download, so it is got by hand (`catalog.MANUAL`). Every image is
used by default (`samples_per_domain = 0`): the whole dataset decodes in seconds at 32 px.
"""

from __future__ import annotations

from pftlab.data.benchmarks.domain_tree import folder_benchmark

ROOT = "PACS/"
DOMAINS = ("art_painting", "cartoon", "photo", "sketch")

BENCHMARK = folder_benchmark(
    "pacs",
    ROOT,
    DOMAINS,
    "PACS: photos, art paintings, cartoons and sketches of 7 classes, a domain per client",
    quick={"domains": ["photo", "sketch"], "samples_per_domain": 100},
)
