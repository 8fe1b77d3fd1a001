"""The `pftlab` command. User mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import sys
from pathlib import Path
from typing import Any

from pftlab import __version__
from pftlab.core.args import Parser, check_cache_writable, check_out_dir, check_outputs
from pftlab.core.errors import UserError, one_line

CHECK_HELP = "only validate: config, data files, method plans and output path; build and write nothing"


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pftlab.experiment.aggregate import run_seeds
    from pftlab.experiment.check import check_run
    from pftlab.experiment.config import load_config
    from pftlab.experiment.runner import run_experiment
    from pftlab.report.table import aggregate_table, summary_table

    cfg = load_config(Path(args.config), args.set)
    if args.no_progress:
        cfg = cfg.model_copy(update={"runtime": cfg.runtime.model_copy(update={"progress": False})})
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    plan = check_run(cfg, out, args.seeds)  # cheap: refuses bad input before any work is done
    check_cache_writable()  # check_run probed the run directory (check_out_dir); the cache takes files too
    if args.check:
        print(plan)
        return 0
    console = Console()
    if args.seeds:
        agg = run_seeds(cfg, args.seeds, out, resume=not args.fresh)
        console.print(aggregate_table(agg))
        console.print(f"results in {out}/ (aggregate.json, aggregate.md, and one run directory per seed)")
        return 0
    summary = run_experiment(cfg, out, resume=not args.fresh)
    console.print(summary_table(summary))
    console.print(f"results in {out}/ (summary.json, clients.csv, matrices/, local_vs_global.png, matrices.png)")
    return 0


def _methods(args: argparse.Namespace) -> int:
    from pftlab.personalize import METHODS

    for name, m in METHODS.items():  # post-hoc methods, then process-integrated baselines, then plugins'
        params = ", ".join(f"{k}={f.default}" for k, f in m.Params.model_fields.items())
        kind = "process-integrated baseline" if m.integrated else "post-hoc recipe"
        origin = METHODS.origin(name)
        print(f"{name:<12} {m.summary}\n{'':<12} {kind}, from {origin}; parameters ([method.{name}]): {params}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    """Train the config's model on its [pretrain.data] federation, pooled; weights to --out, for model.init."""
    from rich.console import Console

    from pftlab.core.compute import resolve
    from pftlab.experiment.check import check_data
    from pftlab.experiment.config import load_config
    from pftlab.experiment.pretrain import pretrain

    cfg = load_config(Path(args.config), args.set)
    out = Path(args.out)
    if out.suffix != ".safetensors" or out.is_dir():
        raise UserError(f"--out {str(out)!r}: give the path of a .safetensors file")
    check_outputs(out.parent)
    compute = resolve(cfg.runtime.device, cfg.runtime.precision)
    data = check_data(cfg.model_copy(update={"data": cfg.pretrain.data}))
    if args.check:
        print(f"pretrain OK: {data}; {cfg.pretrain.epochs} epochs on {compute.device}; weights would go to {out}")
        return 0
    record = pretrain(cfg, out, lambda line: Console(stderr=True).print(line))
    print(
        f"{record['benchmark']}: {record['images']:,} images, {record['epochs']} epochs, "
        f"test accuracy {record['test_accuracy']}%{' (reused)' if record['reused'] else ''}; weights in {out}; "
        f"use them with --set model.init='{out}' (and model.init_head=false for other classes)"
    )
    return 0


def _models(args: argparse.Namespace) -> int:
    from pftlab.data.benchmarks import build_federation
    from pftlab.experiment.check import check_data
    from pftlab.experiment.config import apply_overrides, from_dict
    from pftlab.models import MODELS, build_model, resolve_name
    from pftlab.models.cost import forward_flops, parameter_count

    raw = apply_overrides({"data": {"benchmark": args.benchmark, "size": "quick"}}, args.set)
    cfg = from_dict(raw)
    check_data(cfg)  # missing data files: one line saying which, before anything is decoded
    check_cache_writable()  # decoding caches the arrays
    fed = build_federation(cfg.data, cfg.seed)
    shape, classes = fed.input_shape, fed.num_classes
    unit = "image" if len(shape) == 3 else "input"
    print(f"on {fed.name} (quick size): input {shape}, {classes} classes; forward FLOPs per {unit} (batch of 1)")
    for name, spec in MODELS.items():
        problem = spec.accepts(shape)
        if problem:
            cost = f"does not take this input: {one_line(problem)}"
        else:
            try:
                model = build_model(cfg.model.model_copy(update={"name": name}), shape, classes, cfg.seed)
                cost = f"{parameter_count(model):,} parameters, {forward_flops(model, shape):,} FLOPs"
            except Exception as err:  # a plugin's model that fails to build or run says why, on its own line
                cost = f"fails on this input: {type(err).__name__}: {one_line(str(err))}"
        print(f"{name:<12} {spec.summary}\n{'':<12} from {MODELS.origin(name)}; {cost}")
    print(f"model.name = 'auto' (the default) picks {resolve_name('auto', shape)} for this input")
    return 0


def _data_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pftlab.data.show import benchmarks_table, sources_table

    Console().print(benchmarks_table())
    Console().print(sources_table())
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    """Download the named benchmarks' or sources' files; one line per file, a progress bar per download."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from pftlab.data.fetch import fetch, plan
    from pftlab.data.sources.files import DATA_ENV, data_root

    if args.timeout <= 0:
        raise UserError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    to = Path(args.to).expanduser() if args.to else data_root()
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {str(to)!r} is a file; give a folder")
    work = plan(args.names)  # unknown names fail here, before anything is downloaded
    console = Console(stderr=True)
    console.print(f"{len(work.remotes)} file(s), {work.size / 1e6:,.1f} MB at most, into {to}")
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, disable=args.no_progress) as bars:

        def bar(remote: Any) -> Any:
            task = bars.add_task(remote.path, total=remote.size)
            return lambda done, total: bars.update(task, completed=done, total=total)

        done = fetch(args.names, to, args.mirror, args.timeout, bar, console.print)
    for remote in done.remotes:
        print(f"ok  {remote.path}")
    for path, what in done.manual.items():
        print(f"by hand  {path}: {what}")
    if to != data_root():
        print(f"set {DATA_ENV}={to} to read these files")
    return 1 if done.manual else 0


def _data_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pftlab.data.benchmarks import build_federation
    from pftlab.data.show import federation_table, label_heatmap
    from pftlab.experiment.check import check_data
    from pftlab.experiment.config import apply_overrides, from_dict

    raw = apply_overrides({"seed": args.seed, "data": {"benchmark": args.name, "size": args.size}}, args.set)
    cfg = from_dict(raw)
    out = Path(args.out) if args.out else Path("runs") / f"data-{cfg.data.benchmark}-{cfg.data.size}.png"
    check_outputs(out.parent)
    if out.is_dir():
        raise UserError(f"--out {str(out)!r} is a folder; give the path of a .png file")
    if args.check:
        print(f"data OK: {check_data(cfg)}; heat map would go to {out}")
        return 0
    fed = build_federation(cfg.data, cfg.seed)
    label_heatmap(fed, out)
    console = Console()
    console.print(federation_table(fed))
    console.print(f"partition hash {fed.partition_hash[:16]}; heat map of clients x classes in {out}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from pftlab.experiment.check import check_data

    out = Path(args.out)
    if args.analysis == "distortion":
        from pftlab.analysis.distortion_drop import read_clients, run_distortion

        check_out_dir(out)  # reads a run directory only: no cache
        read_clients(Path(args.source))  # refuses a missing or malformed RUN_DIR/clients.csv before writing
        if args.check:
            print(f"run directory OK: {args.source}; results would go to {out}/")
            return 0
        out.mkdir(parents=True, exist_ok=True)
        rho = run_distortion(Path(args.source), out)
        Console().print(f"Spearman rho (distortion vs global drop): {rho}; wrote {out}/distortion.csv and .png")
        return 0
    from pftlab.analysis.common import setup
    from pftlab.experiment.config import load_config

    check_outputs(out)
    cfg = load_config(Path(args.source), args.set)
    if args.clients < 0:
        raise UserError(f"--clients must be >= 0 (0 = every client), got {args.clients}")
    if args.analysis == "curves":
        from pftlab.analysis.curves import check_curves

        work = check_curves(cfg)  # every variant's parameters and epoch budget, before any data is decoded
    else:
        from pftlab.analysis.flooding import check_flooding

        work = check_flooding(cfg, args.levels)
    data = check_data(cfg)
    if args.check:
        print(f"config OK: {data}; {args.analysis}: {work}; results would go to {out}/")
        return 0
    with Progress(console=Console(stderr=True), disable=args.no_progress) as progress:
        s = setup(cfg)  # the output folder is made by the first write: a refusal leaves nothing behind
        if args.analysis == "curves":
            from pftlab.analysis.curves import run_curves

            run_curves(s, out, args.clients, progress)
            written = "curves.csv and curves.png"
        else:
            from pftlab.analysis.flooding import run_flooding

            table = run_flooding(s, out, args.levels, args.clients, progress)
            for r in table:
                Console().print(r)
            written = "flooding.csv and flooding.png"
    Console().print(f"wrote {out}/{written}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pftlab.bench import run_bench

    if args.contended is not None and (args.scaling or args.precision != "fp32"):
        raise UserError("--contended runs alone: leave out --scaling and --precision (one benchmark per call)")
    check_outputs(Path(args.out))
    console = Console(stderr=True)
    if args.scaling:
        return _bench_scaling(Path(args.out), console, args.quick)
    if args.contended is not None:
        return _bench_contended(Path(args.out), console, args)
    if args.precision != "fp32" or args.device != "cpu":
        return _bench_precision(Path(args.out), console, args)
    result = run_bench(Path(args.out), lambda line: console.print(line), quick=args.quick)
    print((Path(args.out) / "bench.md").read_text(encoding="utf-8"), end="")
    return 0 if result["metrics_max_abs_diff"] <= result["metrics_tolerance"] else 1


def _merge_bench_json(out: Path, section: str, result: dict[str, Any]) -> None:
    """OUT/bench.json with `section` set to `result`, other sections kept."""
    import json

    from pftlab.core.io import write_json

    out.mkdir(parents=True, exist_ok=True)
    bench_json = out / "bench.json"
    try:
        previous = json.loads(bench_json.read_text(encoding="utf-8")) if bench_json.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        previous = {}
    write_json(bench_json, {**(previous if isinstance(previous, dict) else {}), section: result})


def _bench_contended(out: Path, console: Any, args: argparse.Namespace) -> int:
    """The contended scenario alone, repeated in alternating pairs: into bench.json (`contended_repeats`)."""
    from pftlab.bench import contended_markdown, contended_repeats
    from pftlab.core.io import atomic_write_text

    result = contended_repeats(args.contended, args.quick, lambda line: console.print(line))
    _merge_bench_json(out, "contended_repeats", result)
    atomic_write_text(out / "contended.md", contended_markdown(result))
    print((out / "contended.md").read_text(encoding="utf-8"), end="")
    return 0


def _bench_precision(out: Path, console: Any, args: argparse.Namespace) -> int:
    """fp32 against --precision on --device, the pftlab side of the workload: into bench.json (`precision`)."""
    from pftlab.bench import precision_markdown, run_precision
    from pftlab.core.compute import resolve

    resolve(args.device, args.precision)  # a missing device or tf32 off CUDA: one line, before any work
    result = run_precision(args.precision, args.device, lambda line: console.print(line), quick=args.quick)
    _merge_bench_json(out, "precision", result)
    print(precision_markdown(result), end="")
    return 0


def _bench_scaling(out: Path, console: Any, quick: bool) -> int:
    """The scaling benchmark alone: its figures go into OUT/bench.json under `scaling` (other
    figures there are kept) and OUT/scaling.md."""

    from pftlab.bench_scaling import run_scaling, scaling_markdown
    from pftlab.core.io import atomic_write_text

    result = run_scaling(lambda line: console.print(line), quick=quick)
    _merge_bench_json(out, "scaling", result)
    atomic_write_text(out / "scaling.md", scaling_markdown(result))
    print(scaling_markdown(result), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pftlab", description="Personalized fine-tuning in heterogeneous federated learning.")
    parser.add_argument("--version", action="version", version=f"pftlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser(
        "run",
        help="run an experiment: global stage, personalization of every client, cross-client evaluation",
        description="Run CONFIG.toml end to end and write the results to the run directory.",
    )
    run.add_argument("config", metavar="CONFIG.toml", help="experiment config (see configs/quickstart.toml)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set personalize.epochs=5 (repeatable)",
    )
    run.add_argument("--out", metavar="DIR", help="run directory (default: runs/<config name>)")
    run.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="SEED",
        help="run once per seed into DIR/seed<k>/ and write mean ± std to DIR/aggregate.{json,md}",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--fresh", action="store_true", help="recompute everything, even a finished or interrupted run in --out"
    )
    run.add_argument("--check", action="store_true", help=CHECK_HELP)
    run.set_defaults(func=_run)

    methods = sub.add_parser("methods", help="list the personalization methods and their hyper-parameters")
    methods.set_defaults(func=_methods)

    pre = sub.add_parser(
        "pretrain",
        help="train the config's model centrally on data no client holds ([pretrain]), for model.init",
        description="Train [model] on the pooled train + val splits of the [pretrain.data] federation "
        "([pretrain] epochs, lr, batch_size, momentum; cached by their hash) and write the weights to --out.",
    )
    pre.add_argument("config", metavar="CONFIG.toml")
    pre.add_argument("--out", required=True, metavar="PATH.safetensors", help="where the weights go")
    pre.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set pretrain.epochs=10")
    pre.add_argument("--check", action="store_true", help=CHECK_HELP)
    pre.set_defaults(func=_pretrain)

    models = sub.add_parser(
        "models",
        help="every model, its origin, and its parameters and FLOPs on a benchmark's input",
        description="List every registered model (model.name) with its summary and the package it comes from, "
        "and, built for one benchmark's input at quick size, its number of parameters and forward FLOPs per input.",
    )
    models.add_argument(
        "--benchmark", default="digits-quick", metavar="NAME", help="whose input shape (default digits-quick)"
    )
    models.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set model.width=64 (repeatable)"
    )
    models.set_defaults(func=_models)

    data = sub.add_parser("data", help="the benchmarks: list them, fetch their files, show one client by client")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    listing = data_sub.add_parser("list", help="every benchmark: origin, shift, sizes, whether its files are present")
    listing.set_defaults(func=_data_list)
    fetch = data_sub.add_parser(
        "fetch",
        help="download benchmarks' files from their official locations, checked by sha256",
        description="Download each named benchmark's (or source's) files into the data root, in the layout the "
        "loaders read: streamed, resumable, checked against the sha256 pinned in pftlab, written atomically. "
        "Exit 1 when some file must be got by hand (it says what and where).",
    )
    fetch.add_argument("names", nargs="+", metavar="NAME", help="a benchmark or a source (see 'pftlab data list')")
    fetch.add_argument(
        "--to", metavar="DIR", help="target folder (default: $PFTLAB_DATA, else ~/.cache/pftlab/datasets)"
    )
    fetch.add_argument("--mirror", metavar="URL", help="a mirror with the data root's paths (default: $PFTLAB_MIRROR)")
    fetch.add_argument("--timeout", type=float, default=30.0, metavar="S", help="give up on a server silent this long")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    fetch.set_defaults(func=_data_fetch)
    show = data_sub.add_parser("show", help="per-client sizes, domains and label counts, plus a PNG heat map")
    show.add_argument("name", help="a benchmark name from 'pftlab data list'")
    show.add_argument("--size", choices=("quick", "default"), default="default")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set data.alpha=0.1")
    show.add_argument("--out", metavar="PNG", help="heat map path (default: runs/data-<name>-<size>.png)")
    show.add_argument("--check", action="store_true", help=CHECK_HELP)
    show.set_defaults(func=_data_show)

    analyze = sub.add_parser("analyze", help="the study's analyses: accuracy vs epoch, distortion vs drop, flooding")
    a_sub = analyze.add_subparsers(dest="analysis", required=True, parser_class=Parser)
    for name, source, text in (
        ("curves", "CONFIG.toml", "local and global accuracy against fine-tuning epoch: FT lrs, sparsity, mu, LP-FT"),
        ("distortion", "RUN_DIR", "feature distortion against the drop in global accuracy, from a run directory"),
        ("flooding", "CONFIG.toml", "FT and LP-FT held at the same local loss by flooding; global accuracy"),
    ):
        p = a_sub.add_parser(name, help=text, description=text)
        p.add_argument("source", metavar=source)
        p.add_argument("--out", metavar="DIR", default=f"runs/analysis-{name}", help="where the CSV and PNG go")
        p.add_argument("--check", action="store_true", help=CHECK_HELP)
        if source == "CONFIG.toml":
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
            p.add_argument("--clients", type=int, default=0, help="only the first N clients (0 = all)")
            p.add_argument("--no-progress", action="store_true")
        if name == "flooding":
            p.add_argument("--levels", type=float, nargs="+", default=[0.1, 0.5, 1.0], metavar="B")
        p.set_defaults(func=_analyze)

    sub.add_parser("theory", help="the two-layer linear model lab: onestep, sweep, threshold, relu (docs/theory.md)")

    bench = sub.add_parser(
        "bench",
        help="the fixed workload through pftlab and through the usual per-client loop: times, ratios, memory",
        description="FT / LP / LP-FT on 50 Fashion-MNIST clients plus full cross-client matrices, through pftlab "
        "and through benchmarks/reference_loop.py in the same process; writes bench.json and bench.md",
    )
    bench.add_argument("--out", default="runs/bench", help="folder for bench.json and bench.md (default runs/bench)")
    bench.add_argument("--quick", action="store_true", help="a seconds-long smoke run of the same code on tiny data")
    bench.add_argument(
        "--precision",
        choices=("fp32", "bf16", "tf32"),
        default="fp32",
        help="not fp32: only the pftlab side, in fp32 and in this precision (alternating, fastest of 2 each): "
        "speed-up and metric difference into bench.json (`precision`)",
    )
    bench.add_argument("--device", default="cpu", help="with --precision: where (auto, cpu, cuda, cuda:N, mps)")
    bench.add_argument(
        "--scaling",
        action="store_true",
        help="only the scaling benchmark: the same work per client at 100, 1,000 and 10,000 clients, sampled "
        "evaluation; time and peak memory per N into bench.json (`scaling`) and scaling.md",
    )
    bench.add_argument(
        "--contended",
        type=int,
        metavar="PAIRS",
        help="only the contended scenario, PAIRS times (>= 2; alone / beside a busy process, order alternating): "
        "pftlab's slowdown and the change of its ratio to the reference with 95%% intervals over pairs, into "
        "bench.json (`contended_repeats`) and contended.md (about 13 minutes a pair on 2 cores)",
    )
    bench.set_defaults(func=_bench)

    from pftlab.study.cli import add_study_parser

    add_study_parser(sub)
    sub.add_parser("flower", help="run on Flower: export per-client partitions and a Flower App (docs/flower.md)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["theory"]:  # its own parser, options included (`pftlab theory --help`)
            from pftlab.theory.cli import main as theory_main

            return theory_main(argv[1:])
        if argv[:1] == ["flower"]:  # its own parser (`pftlab flower export --help`)
            from pftlab.integrations.flower.cli import main as flower_main

            return flower_main(argv[1:])
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
        return code
    except UserError as err:
        print(f"pftlab: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pftlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as err:
        if not _stdout_gone():
            err.add_note(BUG_NOTE)
            raise
        return 141  # whoever read our output stopped (`pftlab methods | head -1`): quietly, as a shell pipe does
    except OSError as err:
        if err.errno not in FILESYSTEM_ERRNOS:
            err.add_note(BUG_NOTE)
            raise
        print(f"pftlab: error: {one_line(filesystem_message(err))}", file=sys.stderr)
        return 2
    except Exception as err:  # anything else is a bug in pftlab (or a plugin): keep the traceback, say so
        err.add_note(BUG_NOTE)
        raise


def _stdout_gone() -> bool:
    """True when stdout is a pipe whose reader has gone away; then stdout is pointed at /dev/null, so that
    exiting (which flushes it) prints nothing more."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(event & select.POLLERR for _, event in poller.poll(0))  # a pipe's write end without reader
    except (OSError, ValueError, AttributeError):  # not a real file (captured output), or no poll here
        return False
    if gone:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return gone


# What the file system or the user's paths can cause at run time, after every check passed: a full disk, a
# folder made read-only or deleted meanwhile, a name too long, a link loop. One line and exit code 2, not a bug.
FILESYSTEM_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EFBIG", "ENAMETOOLONG", "ELOOP", "ENOTDIR", "EISDIR",
        "EEXIST", "ENOTEMPTY", "EMLINK", "EXDEV", "EIO", "EMFILE", "ENFILE", "ETXTBSY", "ESTALE", "EBUSY",
    )
    if hasattr(errno, name)
)  # fmt: skip
BUG_NOTE = (
    f"pftlab: internal error: this is a bug in pftlab {__version__} (or in a plugin), not a problem with your "
    "input; please report it with the traceback above"
)


def filesystem_message(err: OSError) -> str:
    """'cannot write PATH: REASON (ERRNO)' plus what would fix it."""
    name = errno.errorcode.get(err.errno or 0, "")
    where = " -> ".join(repr(str(f)) for f in (err.filename, err.filename2) if f) or "a file"
    reason = f"{err.strerror or type(err).__name__}{f' ({name})' if name else ''}"
    return (
        f"cannot use {where}: {reason}; give folders you can write to, on a file system with free space "
        "(--out, $PFTLAB_CACHE), and do not change them while pftlab runs"
    )
