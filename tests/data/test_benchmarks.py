"""Named benchmarks on the real files in ../shared/data: each shift does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pftlab.cli import main
from pftlab.core.errors import UserError
from pftlab.data.benchmarks import BENCHMARKS, build_federation
from pftlab.data.dataset import FederatedData
from pftlab.experiment.config import DataConfig, from_dict

DATA = Path(__file__).parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present")


def federation(benchmark: str, size: str = "quick", seed: int = 0, **keys) -> FederatedData:
    return build_federation(DataConfig(benchmark=benchmark, size=size, **keys), seed)


def pooled(fed: FederatedData, attr: str = "y") -> list[np.ndarray]:
    return [np.concatenate([getattr(s, attr) for s in (c.train, c.val, c.test)]) for c in fed.clients]


@needs_data
def test_colored_mnist_correlation_per_client_matches_its_configured_value() -> None:
    fed = federation("colored-mnist", correlations=[0.9, 0.75, 0.1])
    rhos = [0.9, 0.75, 0.1, 0.9]
    for c, rho in zip(fed.clients, rhos, strict=True):
        x = np.concatenate([c.train.x, c.val.x, c.test.x])
        y = np.concatenate([c.train.y, c.val.y, c.test.y])
        red, green = x[:, 0].sum((1, 2)), x[:, 1].sum((1, 2))
        assert np.all((red == 0) | (green == 0)), "each digit is drawn in one colour"
        colour = (green > 0).astype(int)
        assert abs(np.mean(colour == y) - rho) <= 0.02, (c.client_id, np.mean(colour == y), rho)
        assert c.domain == f"rho={rho:g}"
    assert fed.num_classes == 2 and fed.input_shape == (3, 28, 28)


@needs_data
def test_colored_mnist_label_noise_and_shared_digit_pool() -> None:
    fed = federation("colored-mnist", label_noise=0.25)
    from pftlab.data.sources import mnist

    digits = np.concatenate([mnist("train").y, mnist("test").y])
    for c, entry in zip(fed.clients, fed.partition, strict=True):
        src = np.array(entry["source_index"])
        y = np.empty(len(src), dtype=np.int64)
        for split in ("train", "val", "test"):
            y[entry[split]] = getattr(c, split).y
        assert abs(np.mean(y != (digits[src] >= 5)) - 0.25) <= 0.01
    sources = [set(e["source_index"]) for e in fed.partition]
    assert all(not (a & b) for i, a in enumerate(sources) for b in sources[i + 1 :]), "clients hold disjoint digits"


@needs_data
def test_mnist_writers_has_539_clients_from_two_populations() -> None:
    fed = federation("mnist-writers", size="default")
    assert fed.num_clients == 539
    assert {c.domain for c in fed.clients} == {"census", "students"}
    sizes = [len(c.train) + len(c.val) + len(c.test) for c in fed.clients]
    assert sum(sizes) == 60_000 and min(sizes) >= 19


@needs_data
def test_heart_has_four_hospitals_of_their_sizes() -> None:
    fed = federation("heart")
    assert [c.domain for c in fed.clients] == ["cleveland", "hungarian", "switzerland", "va"]
    assert [len(y) for y in pooled(fed)] == [303, 294, 123, 200]
    x = np.concatenate(pooled(fed, "x"))
    assert np.isfinite(x).all()
    assert np.allclose(x.mean(0), 0, atol=1e-4) and fed.num_classes == 2


@needs_data
@pytest.mark.parametrize("name", ["fmnist-dirichlet", "cifar10-dirichlet"])
def test_dirichlet_benchmarks_skew_labels(name: str) -> None:
    fed = federation(name)
    p = DataConfig(benchmark=name, size="quick").params()
    assert fed.num_clients == p.num_clients
    assert sum(len(y) for y in pooled(fed)) == p.samples
    mixes = np.stack([np.bincount(y, minlength=10) / len(y) for y in pooled(fed)])
    overall = np.bincount(np.concatenate(pooled(fed)), minlength=10) / p.samples
    assert np.mean(0.5 * np.abs(mixes - overall).sum(1)) > 0.25, "Dirichlet(0.3) must skew the label mixes"
    assert fed.input_shape == ((1, 28, 28) if name.startswith("fmnist") else (3, 32, 32))


def test_label_swap_is_a_per_client_permutation() -> None:
    plain, swapped = federation("digits-quick"), federation("digits-quick", swap_pairs=2)
    for a, b, entry in zip(plain.clients, swapped.clients, swapped.partition, strict=True):
        perm = np.array(entry["label_permutation"])
        assert sorted(perm.tolist()) == list(range(10)) and (perm != np.arange(10)).sum() == 4
        assert np.array_equal(perm[a.train.y], b.train.y)
        assert np.array_equal(a.train.x, b.train.x), "concept shift leaves P(x) alone"
    with pytest.raises(UserError, match="swap_pairs=6 needs 12 classes"):
        federation("digits-quick", swap_pairs=6)


def test_quick_size_and_keys_are_validated_by_the_benchmark() -> None:
    assert DataConfig(benchmark="colored-mnist", size="quick").params().num_clients == 4
    assert DataConfig(benchmark="colored-mnist", size="quick", num_clients=6).params().num_clients == 6
    with pytest.raises(UserError, match=r"unknown key 'data\.alpha' for benchmark 'colored-mnist'"):
        from_dict({"data": {"benchmark": "colored-mnist", "alpha": 0.5}})
    with pytest.raises(UserError, match=r"data\.correlations: each correlation must lie in \[0, 1\] \(got \[1\.5\]\)"):
        from_dict({"data": {"benchmark": "colored-mnist", "correlations": [1.5]}})


def test_missing_file_names_it_and_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFTLAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match=r"heart/processed\.cleveland\.data is missing.*expected sha256"):
        federation("heart")
    assert not list((tmp_path / "cache").rglob("*.npz*")) if (tmp_path / "cache").exists() else True


@needs_data
def test_infeasible_partition_is_refused_before_any_training() -> None:
    with pytest.raises(UserError, match="cannot give 5 clients at least 400 samples each from 1500"):
        federation("fmnist-dirichlet", min_client_size=400)


@needs_data
def test_every_benchmark_is_listed_and_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    for name in BENCHMARKS:
        assert name in listing
    assert main(["data", "show", "heart", "--out", str(tmp_path / "heart.png")]) == 0
    assert "cleveland" in capsys.readouterr().out
    assert (tmp_path / "heart.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["data", "show", "imagenet"]) == 2


@needs_data
def test_heart_runs_end_to_end_with_the_mlp(tmp_path: Path) -> None:
    quickstart = str(Path(__file__).parents[2] / "configs" / "quickstart.toml")
    sets = ['data={benchmark="heart"}', 'model.name="auto"', "federated.rounds=3", "personalize.epochs=2"]
    sets.append("method.lp-ft.lp_epochs=1")
    argv = ["run", quickstart, "--out", str(tmp_path), "--no-progress", *(a for t in sets for a in ("--set", t))]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["benchmark"] == "heart" and summary["num_clients"] == 4
    assert "head.weight" in (tmp_path / "global.safetensors").read_bytes()[:2000].decode("latin1")


def _pool_x(client, entry) -> np.ndarray:
    x = np.empty((len(entry["source_index"]), *client.train.x.shape[1:]), dtype=np.float32)
    for split in ("train", "val", "test"):
        x[entry[split]] = getattr(client, split).x
    return x


@needs_data
def test_cifar10c_clients_are_their_corruption_of_clean_cifar() -> None:
    from pftlab.core.seeding import numpy_rng
    from pftlab.data.corruptions import corrupt
    from pftlab.data.sources import cifar10

    fed = federation("cifar10c", corruptions=["gaussian_noise", "fog", "pixelate"], severities=[5, 1])
    clean = np.concatenate([cifar10("train").x, cifar10("test").x])
    assert [c.domain for c in fed.clients] == [
        "gaussian_noise-5",
        "fog-5",
        "pixelate-5",
        "gaussian_noise-1",
        "fog-1",
        "pixelate-1",
    ]
    for c, entry in zip(fed.clients, fed.partition, strict=True):
        name, severity = c.domain.rsplit("-", 1)
        source = clean[np.array(entry["source_index"])]
        expected = corrupt(source, name, int(severity), numpy_rng(0, "corrupt", c.client_id))
        assert np.array_equal(_pool_x(c, entry), expected)
        assert np.abs(expected - source).mean() > 0.004
    noise5, noise1 = (
        np.abs(_pool_x(fed.clients[i], fed.partition[i]) - clean[fed.partition[i]["source_index"]]).mean()
        for i in (0, 3)
    )
    assert noise5 > 2 * noise1, "severity 5 noise moves pixels more than severity 1"


@needs_data
def test_digits_domains_at_32px_rgb() -> None:
    fed = federation("digits", samples_per_client=60)
    assert [c.domain for c in fed.clients] == ["mnist", "mnist-m", "usps", "synth"]
    assert fed.input_shape == (3, 32, 32) and fed.num_classes == 10
    grey = [np.allclose(c.train.x[:, 0], c.train.x[:, 1]) for c in fed.clients]
    assert grey == [True, False, True, False], "MNIST and USPS are grey, MNIST-M and SynthDigits colour"
    means = [float(c.train.x.mean()) for c in fed.clients]
    assert len({round(m, 2) for m in means}) == 4, "each domain has its own input statistics"
    split = federation("digits", clients_per_domain=3, samples_per_client=50, partition="dirichlet", alpha=0.1)
    assert [c.domain for c in split.clients][:3] == ["mnist/0", "mnist/1", "mnist/2"]


def test_subset_keeps_per_sample_meta_aligned() -> None:
    from pftlab.data.dataset import Dataset

    d = Dataset(np.zeros((5, 2), np.float32), np.arange(5) % 2, 2, "d", {"row": np.arange(5) * 10, "note": "x"})
    s = d.subset(np.array([4, 1]))
    assert s.meta["row"].tolist() == [40, 10] and s.meta["note"] == "x"
