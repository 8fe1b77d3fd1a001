"""scripts/study_state.sh: an unfinished cell crosses machines whole, without finished cells' checkpoints."""

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "study_state.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("xz") is None, reason="needs bash and xz")


def state(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False)


def make_study(root: Path) -> None:
    """Seed 0 finished (manifest.json; run.json names checkpoint a; its .results kept), seed 1
    unfinished (.results, checkpoint b), seed 2 rerun with more methods (an old run.json naming c,
    a .results, no manifest): a and only a may go."""
    ckpts = root / "cache" / "global"
    ckpts.mkdir(parents=True)
    for name in "abc":
        (ckpts / f"{name}.safetensors").write_bytes(name.encode() * 100)
    for seed, ckpt, finished in ((0, "a", True), (1, None, False), (2, "c", False)):
        cell = root / "runs" / "bench" / f"seed{seed}"
        cell.mkdir(parents=True)
        if ckpt:
            run = {"global_checkpoint": f"runs/study/cache/global/{ckpt}.safetensors", "seconds": {}}
            (cell / "run.json").write_text(json.dumps(run, indent=1))
        if finished:
            (cell / "manifest.json").write_text("{}")
        (cell / ".results" / "ft-h").mkdir(parents=True)
        (cell / ".results" / "ft-h" / "chunk-0.json").write_text(json.dumps({"seed": seed}))
        (cell / ".results" / "ft-h" / "chunk-1.json.tmp").write_text("half-written")


def test_save_keeps_unfinished_cells_and_their_checkpoints_and_load_restores_them(tmp_path: Path) -> None:
    make_study(tmp_path / "study")
    saved = state("save", tmp_path / "study", tmp_path / "out" / "u.tar.xz")
    assert saved.returncode == 0, saved.stderr
    assert "2 unfinished cell(s) and 2 global checkpoint(s)" in saved.stdout
    with tarfile.open(tmp_path / "out" / "u.tar.xz") as tar:
        files = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert files == [
        "cache/global/b.safetensors",
        "cache/global/c.safetensors",
        "runs/bench/seed1/.results/ft-h/chunk-0.json",
        "runs/bench/seed2/.results/ft-h/chunk-0.json",
    ]
    loaded = state("load", tmp_path / "out" / "u.tar.xz", tmp_path / "resumed")
    assert loaded.returncode == 0, loaded.stderr
    for rel in files:
        assert (tmp_path / "resumed" / rel).read_bytes() == (tmp_path / "study" / rel).read_bytes()


def test_save_and_load_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "study" / "runs" / "bench" / "seed0").mkdir(parents=True)
    nothing = state("save", tmp_path / "study", tmp_path / "u.tar.xz")
    assert nothing.returncode == 2 and "no unfinished cell" in nothing.stderr
    assert not (tmp_path / "u.tar.xz").exists()
    not_study = state("save", tmp_path, tmp_path / "u.tar.xz")
    assert not_study.returncode == 2 and "STUDY_DIR is the --out of pftlab study" in not_study.stderr
    missing = state("load", tmp_path / "none.tar.xz", tmp_path / "x")
    assert missing.returncode == 2 and "not found" in missing.stderr
    usage = state("copy")
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")
