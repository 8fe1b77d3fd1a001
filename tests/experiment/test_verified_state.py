"""No saved state is reused unless it verifies: every kind of reused file, tampered with, is recomputed
to the original result; the cache knows what computed a result (model identity, thread count); adding
a method to a finished run computes that method alone."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from pftlab.core import threads
from pftlab.core.io import cache_dir, load_weights
from pftlab.experiment import runner
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment
from pftlab.models import build_model


def flip(path: Path, where: float = 0.5) -> None:
    """Change one byte of `path` (a digit to another digit where there is one near `where`, else +1)."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * where)
    for i in list(range(start, len(data))) + list(range(start)):
        if chr(data[i]).isdigit():
            data[i] = ord("7") if data[i] != ord("7") else ord("3")
            break
    else:
        data[start] = (data[start] + 1) % 256
    path.write_bytes(bytes(data))


def snapshot(out: Path) -> dict[str, bytes]:
    """The bytes of a run directory's files whose content the config and seed determine."""
    names = ["summary.json", "clients.csv", "config.toml", "partition.json", "global.safetensors"]
    names += [p.relative_to(out).as_posix() for p in sorted((out / "matrices").glob("*.csv"))]
    return {n: (out / n).read_bytes() for n in names}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test counts what it trains: no checkpoint from another test of the session."""
    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """What a run computes: chunks of clients per method, baselines trained, global stages trained."""
    calls: dict[str, list[str]] = {"chunks": [], "baselines": [], "global": []}
    run_chunk, train_baseline = runner._run_chunk, runner.train_baseline
    stage = runner.global_model.__globals__["run_global_stage"]

    def chunk(model, weights, fed, cfg, method, *rest):
        calls["chunks"].append(method)
        return run_chunk(model, weights, fed, cfg, method, *rest)

    def baseline(spec, *rest, **kw):
        calls["baselines"].append(spec.name)
        return train_baseline(spec, *rest, **kw)

    def global_stage(*args, **kw):
        calls["global"].append("trained")
        return stage(*args, **kw)

    monkeypatch.setattr(runner, "_run_chunk", chunk)
    monkeypatch.setattr(runner, "train_baseline", baseline)
    monkeypatch.setitem(runner.global_model.__globals__, "run_global_stage", global_stage)
    return calls


def reset(calls: dict[str, list[str]]) -> None:
    for v in calls.values():
        v.clear()


def test_one_edited_byte_in_any_reused_file_is_recomputed_to_the_original(
    quickstart: Path, tiny: list[str], tmp_path: Path, counted: dict[str, list[str]]
) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["ft","lp","fedper"]', "runtime.batch_clients=2"])
    out = tmp_path / "run"
    first = run_experiment(cfg, out)
    want = snapshot(out)
    assert counted["global"] and counted["baselines"] == ["fedper"]
    [ckpt] = (cache_dir() / "global").glob("*.safetensors")
    ckpt_weights = {k: v.clone() for k, v in load_weights(ckpt).items()}

    def results(pattern: str) -> Path:
        [path] = sorted((out / ".results").glob(pattern))[:1]
        return path

    # each kind of reused file -> what the rerun must compute again (and nothing else). The files
    # under .results/ and the cache are read by a run that is not finished: its manifest is removed.
    nothing: dict[str, list[str]] = {"chunks": [], "baselines": [], "global": []}
    cases: list[tuple[str, Path, bool, dict[str, list[str]]]] = [
        ("summary.json", out / "summary.json", False, nothing),
        ("clients.csv", out / "clients.csv", False, nothing),
        ("a matrix", out / "matrices" / "ft.csv", False, nothing),
        ("run's global.safetensors", out / "global.safetensors", False, nothing),
        ("config.toml", out / "config.toml", False, nothing),
        ("a chunk of clients", results("ft-*/chunk-1.json"), True, {**nothing, "chunks": ["ft"]}),
        ("a baseline's result", results("fedper-*/result.json"), True, {**nothing, "baselines": ["fedper"]}),
        ("the global checkpoint", ckpt, True, {**nothing, "global": ["trained"]}),
    ]
    for name, path, unfinished, recomputed in cases:
        flip(path)
        if unfinished:
            (out / "manifest.json").unlink()
        reset(counted)
        assert run_experiment(cfg, out) == first, name
        assert snapshot(out) == want, name
        if name == "the global checkpoint":  # retrained to the same weights; the methods' results still verify
            assert all(torch.equal(v, ckpt_weights[k]) for k, v in load_weights(ckpt).items())
        assert counted == recomputed, name

    # a deleted matrix and a truncated clients.csv are not a finished run either
    (out / "matrices" / "lp.csv").unlink()
    reset(counted)
    assert run_experiment(cfg, out) == first and snapshot(out) == want
    (out / "clients.csv").write_bytes(want["clients.csv"][:100])
    assert run_experiment(cfg, out) == first and snapshot(out) == want
    assert counted == nothing

    # an unedited rerun is reused whole, nothing rewritten
    stamp = (out / "run.json").stat().st_mtime_ns
    assert run_experiment(cfg, out) == first
    assert (out / "run.json").stat().st_mtime_ns == stamp


def test_a_foreign_checkpoint_copied_over_this_one_is_not_reused(
    quickstart: Path, tiny: list[str], tmp_path: Path, counted: dict[str, list[str]]
) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]'])
    other = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]', "federated.lr=0.01"])
    first = run_experiment(cfg, tmp_path / "a")
    before = set((cache_dir() / "global").glob("*.safetensors"))
    run_experiment(other, tmp_path / "b")
    [theirs] = set((cache_dir() / "global").glob("*.safetensors")) - before
    [ours] = before
    shutil.copyfile(theirs, ours)  # same shapes, a valid checksum, another config's weights
    reset(counted)
    assert run_experiment(cfg, tmp_path / "c") == first
    assert counted["global"] == ["trained"]
    info = json.loads((tmp_path / "c" / "run.json").read_text())
    assert info["global_checkpoint_reused"] is False


class TanhCNN(nn.Module):
    """The built-in CNN's parameter names and shapes, its ReLUs swapped for Tanh."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = cnn.backbone, cnn.head
        for module in list(self.backbone.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.ReLU):
                    setattr(module, name, nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.backbone(x))
        return out


def test_a_custom_model_with_the_built_in_shapes_never_shares_a_checkpoint_or_run(
    quickstart: Path, tiny: list[str], tmp_path: Path, counted: dict[str, list[str]]
) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]'])

    def tanh_model(shape: tuple[int, ...], classes: int) -> nn.Module:
        return TanhCNN(build_model(cfg.model, shape, classes, cfg.seed))

    builtin = build_model(cfg.model, (1, 16, 16), 10, 0)
    custom = tanh_model((1, 16, 16), 10)
    assert {k: v.shape for k, v in builtin.state_dict().items()} == {k: v.shape for k, v in custom.state_dict().items()}

    out = tmp_path / "run"
    run_experiment(cfg, out)
    reset(counted)
    run_experiment(cfg, out, model_fn=tanh_model)
    assert counted["global"] == ["trained"] and counted["chunks"] == ["lp"], "the custom model reused the CNN's state"
    info = json.loads((out / "run.json").read_text())
    assert info["model"]["built_in"] is False and info["model"]["model_fn"].endswith("tanh_model")
    assert info["model"]["class"].endswith("TanhCNN")
    reset(counted)
    run_experiment(cfg, out)  # the built-in model again: the custom model's run is not "reused" as the CNN's
    assert counted["global"] == [] and counted["chunks"] == ["lp"]
    assert json.loads((out / "run.json").read_text())["model"]["built_in"] is True


def test_two_thread_counts_never_share_a_cached_result(
    quickstart: Path, tiny: list[str], tmp_path: Path, counted: dict[str, list[str]]
) -> None:
    one = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]', "runtime.threads=1"])
    two = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]', "runtime.threads=2"])
    out = tmp_path / "run"
    try:
        run_experiment(one, out)
        reset(counted)
        run_experiment(two, out)
        assert counted["global"] == ["trained"] and counted["chunks"] == ["lp"]
        assert json.loads((out / "run.json").read_text())["compute"]["threads"] == 2
        reset(counted)
        run_experiment(one, out)  # back to one thread: the one-thread checkpoint is still cached
        assert counted["global"] == [] and counted["chunks"] == ["lp"]
        assert len(list((cache_dir() / "global").glob("*.safetensors"))) == 2
    finally:
        torch.set_num_threads(1)


def test_auto_threads_resume_with_the_count_the_saved_results_used(
    quickstart: Path, tiny: list[str], tmp_path: Path, counted: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """runtime.threads = 0 samples the free cores, but a run folder with saved results keeps their
    count: a neighbour starting between an interrupted run and its resume does not void them."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    monkeypatch.delenv(threads.ENV)  # the suite's fixed count (tests/conftest.py): this test is about auto
    monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: 0.0)
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]'])  # runtime.threads = 0: auto
    out = tmp_path / "run"
    try:
        run_experiment(cfg, out)  # a quiet machine: both cores
        assert json.loads((out / "run.json").read_text())["threads"] == 2
        monkeypatch.setattr(threads, "sample_busy", lambda window=0.0: 1.0)  # now a neighbour holds a core
        reset(counted)
        run_experiment(cfg, out)  # the finished run verifies under its own count: reused
        assert counted == {"chunks": [], "baselines": [], "global": []}
        (out / "manifest.json").unlink()  # unfinished: only the saved chunks remain to resume from
        run_experiment(cfg, out)
        assert counted == {"chunks": [], "baselines": [], "global": []}
        info = json.loads((out / "run.json").read_text())
        assert info["threads"] == 2 and "as the run folder's saved results used" in info["threads_rule"]
        fresh = tmp_path / "fresh"
        run_experiment(cfg, fresh)  # a new folder under load: one thread, its own global model
        info = json.loads((fresh / "run.json").read_text())
        assert info["threads"] == 1 and info["threads_rule"].startswith("auto: 1 of 2 usable cores free")
        assert counted["global"] == ["trained"] and counted["chunks"] == ["lp"]
    finally:
        torch.set_num_threads(1)


def test_adding_a_method_computes_that_method_alone(
    quickstart: Path, tiny: list[str], tmp_path: Path, counted: dict[str, list[str]]
) -> None:
    two = load_config(quickstart, [*tiny, 'personalize.methods=["ft","lp"]', "runtime.batch_clients=2"])
    three = load_config(quickstart, [*tiny, 'personalize.methods=["ft","lp","lp-ft"]', "runtime.batch_clients=2"])
    out = tmp_path / "run"
    first = run_experiment(two, out)
    kept = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in [*sorted((out / ".results").rglob("*.json")), out / "matrices" / "ft.csv", out / "matrices" / "lp.csv"]
    }
    reset(counted)
    summary = run_experiment(three, out)
    assert counted == {"chunks": ["lp-ft", "lp-ft"], "baselines": [], "global": []}
    for path, (data, mtime) in kept.items():
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, f"{path} was rewritten"
    for m in ("global-model", "ft", "lp"):
        assert summary["methods"][m] == first["methods"][m]
    whole = run_experiment(three, tmp_path / "whole")
    assert whole == summary
    assert (tmp_path / "whole" / "summary.json").read_bytes() == (out / "summary.json").read_bytes()


def test_identical_runs_write_identical_bytes_weights_included(
    quickstart: Path, tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["lp"]'])
    for name in ("a", "b"):  # each with its own cache: the global stage is trained twice
        monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / f"cache-{name}"))
        run_experiment(cfg, tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    differ = [str(f) for f in files if (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes()]
    # run.json holds the timings, so the manifest's line for it and a chunk's recorded seconds differ too
    assert all(d in ("run.json", "manifest.json") or d.startswith(".results/") for d in differ), differ
    assert "global.safetensors" not in differ and "summary.json" not in differ
