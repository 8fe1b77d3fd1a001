"""`pftlab flower export`: one partition file per client, plus a Flower App directory to `flwr run`.

The App directory holds only a pyproject.toml: its components point at the ClientApp and
ServerApp inside the installed pftlab, and its run config carries the resolved pftlab config (as JSON)
(so the ServerApp, wherever it runs, uses exactly the config that was exported) and the run
directory. It declares no dependencies on purpose: every machine must have `pftlab[flower]`
installed already, and a SuperLink or SuperNode should not try to install it at run time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomli_w

from pftlab import __version__
from pftlab.core.io import atomic_write_text
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.config import Config
from pftlab.integrations.flower.partition import client_file, save_client
from pftlab.integrations.flower.steps import config_json

COMPONENTS = {
    "serverapp": "pftlab.integrations.flower.server_app:app",
    "clientapp": "pftlab.integrations.flower.client_app:app",
}


def app_pyproject(cfg: Config, run_dir: Path, round_timeout: float = 600.0, nodes_timeout: float = 300.0) -> str:
    """The Flower App's pyproject.toml: components, and run config (overridable with `flwr run -c`)."""
    version = re.match(r"\d+(\.\d+)*", __version__)
    doc = {
        "project": {"name": "pftlab-flower", "version": version.group(0) if version else "0.0.0", "dependencies": []},
        "tool": {
            "flwr": {
                "app": {
                    "publisher": "pftlab",
                    "components": COMPONENTS,
                    "config": {
                        "run-dir": str(Path(run_dir).resolve()),
                        "round-timeout": float(round_timeout),
                        "nodes-timeout": float(nodes_timeout),
                        "config-json": config_json(cfg),
                    },
                }
            }
        },
    }
    head = "# Written by `pftlab flower export`; `flwr run` this directory (docs/flower.md).\n"
    return head + tomli_w.dumps(doc)


def export(
    cfg: Config, out: Path, run_dir: Path | None = None, round_timeout: float = 600.0, nodes_timeout: float = 300.0
) -> list[Path]:
    """Write OUT/clients/client<k>.safetensors for every client, OUT/config.toml and OUT/app/pyproject.toml."""
    out = Path(out)
    fed = build_federation(cfg.data, cfg.seed)
    paths = []
    for k in range(fed.num_clients):
        paths.append(client_file(out / "clients", k))
        save_client(paths[-1], fed, k)
    atomic_write_text(out / "config.toml", tomli_w.dumps(_without_none(cfg.resolved())))
    atomic_write_text(
        out / "app" / "pyproject.toml", app_pyproject(cfg, run_dir or out / "run", round_timeout, nodes_timeout)
    )
    return paths


def _without_none(table: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: a key left out takes its default, which is what None means in the config."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in table.items() if v is not None}
