from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

# as pftlab/__init__.py does, but before any test module imports torch (ahead of pftlab): OpenMP
# threads sleep instead of spinning when they wait, so the suite keeps its speed on a loaded machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from pftlab.core.threads import ENV as THREADS_ENV
from pftlab.core.threads import usable_cores

# runtime.threads = 0 takes the cores free when a run starts (pftlab.core.threads); a test's numbers
# must not depend on what else the machine runs, so every run of the suite, in this process and in
# the pftlab processes it starts, uses every usable core, as $PFTLAB_THREADS says.
# tests/core/test_threads.py (and the bench's contended scenario) unset it to test the sampling.
os.environ.setdefault(THREADS_ENV, str(usable_cores()))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test session caches checkpoints in its own folder, never in the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "pftlab-cache"
    monkeypatch.setenv("PFTLAB_CACHE", str(cache))
    return cache


QUICKSTART = Path(__file__).parents[1] / "configs" / "quickstart.toml"

TINY = (
    "federated.rounds=3",
    "personalize.epochs=3",
    "method.lp-ft.lp_epochs=1",
    "data.num_clients=4",
    "runtime.progress=false",
)


@pytest.fixture
def quickstart() -> Path:
    return QUICKSTART


@pytest.fixture
def tiny() -> list[str]:
    """Overrides that shrink the quickstart to seconds: 4 clients, 3 rounds, 3 epochs."""
    return list(TINY)


SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _offline_data(monkeypatch: pytest.MonkeyPatch) -> Path | None:
    """Dataset sources read the offline data folder (`../shared/data` from the repo root) when it exists."""
    if not SHARED_DATA.is_dir():
        return None
    monkeypatch.setenv("PFTLAB_DATA", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture
def script() -> Callable[[str], ModuleType]:
    """scripts/<name>.py loaded as a module, for the tests of the repository's scripts."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
