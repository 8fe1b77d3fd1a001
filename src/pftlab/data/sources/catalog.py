"""Where every source file can be fetched from, and the sha256 (and size) each accepted copy has.

A path (relative to the data root, as the loaders read it) may have several accepted copies:
the official file, and the project's offline copy where that differs in bytes but not in
content (MNIST's gzip files recompressed, Fashion-MNIST's gzip header rewritten, the heart
files with `NaN` for UCI's `?`: the decoded arrays are the same, checked by tests where both
exist). A download is kept only if it is one of them. Sizes and checksums of the official
files come from the publishers or from tensorflow/datasets' pinned checksums (noted per source).

Some sources are read in another form where the official one differs from the offline copy:
CIFAR-10's official binary archive stands in for the offline JPEG copy (`ALTERNATIVES`); a
loader reads the official form when it is present. Sources that cannot be fetched (no stable
public location, or registration first) say what to download and where to put it (`MANUAL`);
where such a file's checksum is published (`KNOWN`), a copy put in place by hand is verified too.
"""

from __future__ import annotations

from dataclasses import dataclass

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
QMNIST_AT = "https://raw.githubusercontent.com/facebookresearch/qmnist/94061367ec2e099ea18c553c75727ecf849ddb9b/"
UCI_HEART = "https://archive.ics.uci.edu/ml/machine-learning-databases/heart-disease/"
CIFAR = "https://www.cs.toronto.edu/~kriz/"
USPS_AT = "https://raw.githubusercontent.com/mazuelas/SMRC/98a3c406ced2a05b4bf5a42c388569ea9225e7b8/data/"
VISDA = "http://csr.bu.edu/ftp/visda/2019/multi-source/"


@dataclass(frozen=True)
class Remote:
    """One fetchable file: its path under the data root, the URLs tried in order, the accepted (sha256, size)."""

    path: str
    urls: tuple[str, ...]
    accepted: tuple[tuple[str, int], ...]  # the first is what the URLs serve; others: equivalent copies

    @property
    def size(self) -> int:
        return self.accepted[0][1]


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    licence: str
    checksums_from: str
    files: tuple[Remote, ...]


def _remote(folder: str, name: str, bases: tuple[str, ...], *accepted: tuple[str, int]) -> Remote:
    return Remote(f"{folder}/{name}" if folder else name, tuple(b + name for b in bases), accepted)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "mnist",
            "MNIST, the four gzip IDX files",
            "CC BY-SA 3.0 (LeCun, Cortes, Burges)",
            "tensorflow/datasets url_checksums/mnist.txt; the offline copy is recompressed, same IDX bytes",
            (
                _remote(
                    "mnist",
                    "train-images-idx3-ubyte.gz",
                    MNIST_MIRRORS,
                    ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
                    ("0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971", 9_719_438),
                ),
                _remote(
                    "mnist",
                    "train-labels-idx1-ubyte.gz",
                    MNIST_MIRRORS,
                    ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
                    ("1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203", 28_857),
                ),
                _remote(
                    "mnist",
                    "t10k-images-idx3-ubyte.gz",
                    MNIST_MIRRORS,
                    ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
                    ("1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be", 1_616_508),
                ),
                _remote(
                    "mnist",
                    "t10k-labels-idx1-ubyte.gz",
                    MNIST_MIRRORS,
                    ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
                    ("b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b", 4_517),
                ),
            ),
        ),
        Source(
            "fashion-mnist",
            "Fashion-MNIST, the four gzip IDX files",
            "MIT (Zalando Research)",
            "tensorflow/datasets url_checksums/fashion_mnist.txt; the offline copy differs in the gzip header only",
            (
                _remote(
                    "fashion-mnist",
                    "train-images-idx3-ubyte.gz",
                    FASHION_MIRRORS,
                    ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880),
                    ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", 26_421_856),
                ),
                _remote(
                    "fashion-mnist",
                    "train-labels-idx1-ubyte.gz",
                    FASHION_MIRRORS,
                    ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515),
                    ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", 29_491),
                ),
                _remote(
                    "fashion-mnist",
                    "t10k-images-idx3-ubyte.gz",
                    FASHION_MIRRORS,
                    ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102),
                    ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", 4_422_079),
                ),
                _remote(
                    "fashion-mnist",
                    "t10k-labels-idx1-ubyte.gz",
                    FASHION_MIRRORS,
                    ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148),
                    ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", 5_125),
                ),
            ),
        ),
        Source(
            "cifar10",
            "CIFAR-10, binary version (read instead of the offline JPEG copy when present)",
            "no licence stated (Krizhevsky 2009)",
            "tensorflow/datasets url_checksums/cifar10.txt (md5 c32a1d4a... on the CIFAR page)",
            (
                _remote(
                    "",
                    "cifar-10-binary.tar.gz",
                    (CIFAR,),
                    ("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170_052_171),
                ),
            ),
        ),
        Source(
            "cifar100",
            "CIFAR-100, binary version",
            "no licence stated (Krizhevsky 2009)",
            "tensorflow/datasets url_checksums/cifar100.txt (md5 03b5dce0... on the CIFAR page)",
            (
                _remote(
                    "",
                    "cifar-100-binary.tar.gz",
                    (CIFAR,),
                    ("58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec", 168_513_733),
                ),
            ),
        ),
        Source(
            "usps",
            "USPS as usps.mat (all 9,298 images, [0, 1] floats)",
            "MIT (the mazuelas/SMRC repository that holds the file)",
            "computed from the file at that commit (the LIBSVM copies have md5s only)",
            (
                _remote(
                    "usps",
                    "usps.mat",
                    (USPS_AT,),
                    ("4fe8865b7790670adfc18ae092e90df7b73c29d8cd8efa16a0c1d935c2377864", 3_611_356),
                ),
            ),
        ),
        Source(
            "qmnist",
            "QMNIST writer metadata for MNIST",
            "BSD (facebookresearch/qmnist)",
            "computed from the repository at the pinned commit",
            (
                _remote(
                    "qmnist",
                    "qmnist-train-labels.tsv.gz",
                    (QMNIST_AT,),
                    ("063229afb535986df50a905c6fa03b716f503bd859d2d9bc8a9b4e2c6a2ccee4", 429_570),
                ),
                _remote(
                    "qmnist",
                    "qmnist-test-labels.tsv.gz",
                    (QMNIST_AT,),
                    ("fe2001449c9580376e16fad7a14cc4f525644b6ffeadc47dc249938529002904", 478_170),
                ),
            ),
        ),
        Source(
            "heart",
            "UCI Heart Disease, the four processed.*.data files",
            "CC BY 4.0 (UCI)",
            "md5s pinned by owkin/FLamby; the offline copy writes NaN for UCI's ?",
            (
                _remote(
                    "heart",
                    "processed.cleveland.data",
                    (UCI_HEART,),
                    ("a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8", 18_461),
                    ("0ad84ed1809abe7206420c0c45d77153fb82b85bbb20a2de3d34c6be1696915c", 18_473),
                ),
                _remote(
                    "heart",
                    "processed.hungarian.data",
                    (UCI_HEART,),
                    ("d1ad108f785768cd3d7e82dc522e6f5a61eea93cccfb3a46ee8076f73fc3d796", 10_263),
                    ("b7e2781a582917c782f906d079efd9d8994fbbfaa8bd50cce0dbdfc529502551", 11_827),
                ),
                _remote(
                    "heart",
                    "processed.switzerland.data",
                    (UCI_HEART,),
                    ("834a405ccf5b66ab4056bb77794adc8df0b7125186454c0a1d002d33c6c3b314", 4_109),
                    ("75fa4ed7943b891bc232fd36363c83a00d52c7cd3edaffae17ec99036d7021a5", 4_655),
                ),
                _remote(
                    "heart",
                    "processed.va.data",
                    (UCI_HEART,),
                    ("e7c93d8d0d2acdadfa4c5e8de768e2191e7f618b952e29623f1f0d5949ff6b8f", 6_737),
                    ("9a439dc875370c855c1b9c4f8f53f07a4356534f309648948d4f5d0425b5b0c4", 8_133),
                ),
            ),
        ),
        Source(
            "domainnet",
            "DomainNet, the six domain zips (clipart and painting: the cleaned ground-truth versions)",
            "research use (Peng et al. 2019, ai.bu.edu/M3SDA)",
            "tensorflow/datasets url_checksums/domainnet.txt",
            (
                _remote(
                    "domainnet",
                    "clipart.zip",
                    (VISDA + "groundtruth/",),
                    ("f8f248a3e8bbc9868c523ae24e6601b4c2ad102afc60c0efeb4f3255df22354d", 1_270_909_081),
                ),
                _remote(
                    "domainnet",
                    "infograph.zip",
                    (VISDA,),
                    ("891e14f476317e97b6f06d6498c11d0a5b8d0c8b57210765ed9beb072da611fa", 4_338_659_804),
                ),
                _remote(
                    "domainnet",
                    "painting.zip",
                    (VISDA + "groundtruth/",),
                    ("fa47e6d405503ea0286cabd767f176bd30e988b63ddd7b9db16cf030c9770015", 3_679_366_174),
                ),
                _remote(
                    "domainnet",
                    "quickdraw.zip",
                    (VISDA,),
                    ("9f37df2a8c3733703dbb35ad9964202a65f675ca30137756457537536b485d84", 459_920_701),
                ),
                _remote(
                    "domainnet",
                    "real.zip",
                    (VISDA,),
                    ("d7fe010b430c5b510f85d657d38c4a1924822695fabea4fef57bd00dba251d63", 6_062_039_589),
                ),
                _remote(
                    "domainnet",
                    "sketch.zip",
                    (VISDA,),
                    ("23a7dbae7016b343e934399beaa8a68728fb5e570ebe2c71df9b75cf91c499fc", 2_633_992_926),
                ),
            ),
        ),
    )
}

REMOTES: dict[str, Remote] = {r.path: r for s in SOURCES.values() for r in s.files}

# A path the loaders read, and the official files read in its place when those are all present.
ALTERNATIVES: dict[str, tuple[str, ...]] = {"cifar10_jpeg.tar.gz": ("cifar-10-binary.tar.gz",)}

# Paths that cannot be fetched: what to download, from where, and where to put it.
MANUAL: dict[str, str] = {
    "mnist_m_subset.tar.gz": (
        "MNIST-M has no stable public download (the original is a Google Drive file from Ganin's page); "
        "pftlab reads mnist_m_subset.tar.gz: mnist_m/mnist_m_{train,test}/<id>.png and "
        "mnist_m/mnist_m_{train,test}_labels.txt with the first 12,000 train and all 9,001 test images, as in "
        "github ShichengChen/Domain-Adversarial-Training-of-Neural-Networks @ dae4e088; put it in the data root"
    ),
    "celeba/img_align_celeba.zip": (
        "CelebA is on Google Drive (download quota, confirmation pages), so it cannot be fetched: from "
        "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html download 'Align&Cropped Images' img_align_celeba.zip "
        "(1.4 GB; keep it zipped) and put it at celeba/img_align_celeba.zip in the data root"
    ),
    "celeba/list_attr_celeba.txt": (
        "CelebA is on Google Drive (download quota, confirmation pages), so it cannot be fetched: from "
        "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html download Anno/list_attr_celeba.txt and put it at "
        "celeba/list_attr_celeba.txt in the data root"
    ),
    "CheXpert-v1.0-small/": (
        "CheXpert needs registration: accept the research use agreement at "
        "https://stanfordmlgroup.github.io/competitions/chexpert/, download CheXpert-v1.0-small and unzip it in the "
        "data root, so that CheXpert-v1.0-small/train.csv and the images it names are there"
    ),
    "PACS/": (
        "PACS has no stable public download: get DomainBed's copy, the Google Drive file "
        "https://drive.google.com/uc?id=1JFr8f805nMUelQWWmfnJR3y4_SYoN5Pd (PACS.zip), unzip it in the data "
        "root and rename the kfold/ folder it makes to PACS/, so that "
        "PACS/{art_painting,cartoon,photo,sketch}/<class>/<image> are there"
    ),
    "OfficeHomeDataset_10072016/": (
        "Office-Home is downloaded after accepting its terms at https://www.hemanthdv.org/officeHomeDataset.html: "
        "get OfficeHomeDataset_10072016.zip there and unzip it in the data root, so that "
        "OfficeHomeDataset_10072016/{Art,Clipart,Product,Real World}/<class>/<image> are there"
    ),
}

# Files that cannot be fetched but whose (sha256, size) is published: a copy put in place by hand is verified.
# CelebA: tensorflow/datasets url_checksums/celeb_a.txt.
KNOWN: dict[str, tuple[str, int]] = {
    "celeba/img_align_celeba.zip": ("46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74", 1_443_490_838),
    "celeba/list_attr_celeba.txt": ("f0e5da289d5ccf75ffe8811132694922b60f2af59256ed362afa03fefba324d0", 26_721_026),
}


def source_of(path: str) -> str | None:
    """The fetchable source that provides `path` (directly or by an alternative), if any."""
    for name, source in SOURCES.items():
        provided = {r.path for r in source.files}
        if path in provided or set(ALTERNATIVES.get(path, ())) & provided:
            return name
    return None


def accepted_sha256(path: str) -> tuple[str, ...]:
    """Every sha256 a file at `path` may have (empty if the catalog does not know the path)."""
    remote = REMOTES.get(path)
    if remote is None:
        return (KNOWN[path][0],) if path in KNOWN else ()
    return tuple(sha for sha, _ in remote.accepted)
