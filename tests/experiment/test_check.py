"""`pftlab run --check` reads the user's own data, so data that does not fit is refused before any run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pftlab.cli import main


def table(path: Path, rows_per_client: dict[str, int]) -> Path:
    lines = ["client,label,x1,x2"]
    for client, n in rows_per_client.items():
        lines += [f"{client},{i % 2},{i * 0.5},{(i * 7) % 5}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def config(tmp_path: Path, data: Path) -> Path:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(
        f'[data]\nbenchmark = "table"\npath = "{data}"\n\n[model]\nname = "mlp"\n\n'
        '[federated]\nrounds = 1\n\n[personalize]\nepochs = 1\nmethods = ["ft"]\n'
    )
    return cfg


def test_check_reads_user_data_and_refuses_a_client_without_a_test_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = config(tmp_path, table(tmp_path / "good.csv", {"a": 40, "b": 40}))
    assert main(["run", str(good), "--check", "--out", str(tmp_path / "out")]) == 0
    assert "table from" in capsys.readouterr().out and not (tmp_path / "out").exists()

    bad = config(tmp_path, table(tmp_path / "bad.csv", {"a": 40, "b": 2}))
    assert main(["run", str(bad), "--check", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pftlab: error: client 1 ('b') has 2 samples"), err
    assert not (tmp_path / "out").exists()


def test_a_block_the_model_lacks_is_refused_before_the_global_stage(
    quickstart: Path, tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pftlab.core.errors import UserError
    from pftlab.experiment import checkpoint
    from pftlab.experiment.config import load_config
    from pftlab.experiment.runner import run_experiment

    monkeypatch.setattr(checkpoint, "run_global_stage", lambda *a, **k: pytest.fail("the global stage started"))
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["surgical-ft"]', 'method.surgical-ft.block="x.y"'])
    with pytest.raises(UserError, match=r"^method\.surgical-ft: the model has no trainable block 'x\.y'; blocks"):
        run_experiment(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_without_bars_a_long_stage_says_how_far_it_is(
    quickstart: Path, tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import re

    from rich.console import Console

    from pftlab.core.heartbeat import Heartbeat
    from pftlab.experiment import runner
    from pftlab.experiment.config import load_config

    monkeypatch.setenv("PFTLAB_CACHE", str(tmp_path / "cache"))  # the global stage trains here, not reused
    # every interval has passed at every tick: a line per round and per client
    monkeypatch.setattr(runner, "Heartbeat", lambda say, stage, total: Heartbeat(say, stage, total, every=0.0))
    cfg = load_config(quickstart, [*tiny, 'personalize.methods=["ft","fedper"]', "runtime.batch_clients=1"])
    text = io.StringIO()
    runner.run_experiment(cfg, tmp_path / "run", console=Console(file=text, width=200))
    lines = text.getvalue().splitlines()
    rounds = [
        re.fullmatch(r"global model rounds: (\d)/3, train loss \d+\.\d{3} \(\d\d:\d\d:\d\d\)", ln) for ln in lines
    ]
    assert [m.group(1) for m in rounds if m] == ["1", "2", "3"]
    assert [ln.split(" (")[0] for ln in lines if ln.startswith("ft clients: ")] == [
        f"ft clients: {k}/4" for k in (1, 2, 3, 4)
    ]
    assert sum(ln.startswith("fedper rounds: ") for ln in lines) == 3
