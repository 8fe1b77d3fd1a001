"""`pftlab flower export CONFIG --out DIR`: what every machine of a Flower deployment needs."""

from __future__ import annotations

import argparse
from pathlib import Path

from pftlab.core.args import Parser, check_cache_writable, check_out_dir
from pftlab.core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pftlab flower", description="Run pftlab on Flower (flwr 1.42); see docs/flower.md.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    export = sub.add_parser(
        "export",
        help="one partition file per client, the resolved config and a Flower App directory for `flwr run`",
        description="Write DIR/clients/client<k>.safetensors (give each SuperNode only its own), "
        "DIR/config.toml and DIR/app/pyproject.toml (the Flower App; `flwr run DIR/app`).",
    )
    export.add_argument("config", metavar="CONFIG.toml")
    export.add_argument("--out", required=True, metavar="DIR")
    export.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    export.add_argument(
        "--run-dir", metavar="DIR", help="where the ServerApp writes results, on its machine (default: DIR/run)"
    )
    export.add_argument("--round-timeout", type=float, default=600.0, help="seconds a round waits for its nodes")
    export.add_argument("--nodes-timeout", type=float, default=300.0, help="seconds to wait for every client's node")
    return parser


def main(argv: list[str]) -> int:
    from pftlab.experiment.config import load_config
    from pftlab.integrations.flower.app import export

    args = build_parser().parse_args(argv)
    for name in ("round_timeout", "nodes_timeout"):
        if not 0 < getattr(args, name) < 1e7:
            raise UserError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    cfg = load_config(Path(args.config), args.set)
    out = check_out_dir(Path(args.out))
    check_cache_writable()
    run_dir = Path(args.run_dir) if args.run_dir else out / "run"
    paths = export(cfg, out, run_dir, args.round_timeout, args.nodes_timeout)
    print(f"wrote {len(paths)} partition files to {out / 'clients'}/, {out / 'config.toml'} and {out / 'app'}/")
    print(f"next: flower-supernode ... --node-config 'partition-file=\"{paths[0].resolve()}\"' (one per client),")
    print(f"      flwr run {out / 'app'} <superlink-connection>   (docs/flower.md)")
    return 0
