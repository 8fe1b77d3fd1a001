"""`pftlab study`: its arguments (imports nothing heavy, so `pftlab --help` stays fast) and its handler."""

from __future__ import annotations

import argparse
from pathlib import Path

from pftlab.core.args import Parser, check_out_dir


def _study(args: argparse.Namespace) -> int:
    from pftlab.study.run import Request, check_study, run_study

    req = Request(
        check_out_dir(Path(args.out)),  # a file in the way is refused here, by --check too
        quick=args.quick,
        seeds=tuple(args.seeds),
        benchmarks=tuple(args.benchmarks or ()),
        methods=tuple(args.methods or ()),
        overrides=tuple(args.set),
        progress=not args.no_progress,
        report_only=args.report_only,
        grids=Path(args.grids) if args.grids else None,
    )
    if args.check:
        print(check_study(req))
        return 0
    run_study(req)
    return 0


def add_study_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    text = "every benchmark x every method x seeds, resumable: Table 2 (table.md, table.csv), figures, report.md"
    p = sub.add_parser("study", help=text, description=text)
    p.add_argument("--out", required=True, metavar="DIR", help="study directory (runs/, cache/, tables, report)")
    p.add_argument("--quick", action="store_true", help="quick sizes and a short schedule: minutes, a pipeline check")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED")
    p.add_argument("--benchmarks", nargs="+", metavar="NAME", help="configs/benchmarks/NAME.toml (default: all)")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="default: every method ('pftlab methods')")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a key in every cell's config"
    )
    p.add_argument(
        "--grids",
        metavar="FILE",
        help="[search.<method>] grids and a [choice] table for every cell (the decisive study: configs/grids.toml)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--check", action="store_true", help="only validate every cell's config and data; run nothing")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from each cell's summary.json as it is: runs nothing, verifies nothing "
        "(for published cells without a manifest); the report says so",
    )
    p.set_defaults(func=_study)
