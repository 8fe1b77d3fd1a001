"""office-home: domain shift between art, clipart, product and real-world photos (Venkateswara et al. 2017).

Read as the official zip unzips: OfficeHomeDataset_10072016/<domain>/<class>/<image> under the data
root, 4 domains (Art, Clipart, Product, Real World) x 65 everyday-object classes, 15,588 images; its
files beside the domain folders (ImageInfo.csv, imagelist.txt) are not read. The download needs its
terms accepted first, so it is got by hand (`catalog.MANUAL`). Every image is used by default.
"""

from __future__ import annotations

from pftlab.data.benchmarks.domain_tree import folder_benchmark

ROOT = "OfficeHomeDataset_10072016/"
DOMAINS = ("Art", "Clipart", "Product", "Real World")

BENCHMARK = folder_benchmark(
    "office-home",
    ROOT,
    DOMAINS,
    "Office-Home: art, clipart, product and real-world images of 65 objects, a domain per client",
    quick={"domains": ["Clipart", "Product"], "samples_per_domain": 200},
)
