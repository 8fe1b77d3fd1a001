"""`pftlab theory ...`: the two-layer linear model of the paper's theory, simulated exactly.

Every subcommand writes a CSV and a PNG into --out (default runs/theory) and prints what it found. User mistakes
raise pftlab.core.errors.UserError with a one-line message.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pftlab.core.args import Parser, check_out_dir
from pftlab.core.errors import UserError
from pftlab.core.io import write_csv, write_json

Row = dict[str, float | int | str]


def _write_csv(path: Path, rows: Sequence[Row]) -> None:
    """The rows, every float to 17 significant digits: the CSV reads back to the exact simulated values."""
    if not rows:
        raise UserError("nothing to write: the grid is empty")
    write_csv(path, rows, float_format=".17g")


def _intervals(xs: Sequence[tuple[float, float]]) -> str:
    """Runs of consecutive grid points, printed as '0.1-0.5, 2'."""
    return ", ".join(f"{a:g}" if a == b else f"{a:g}-{b:g}" for a, b in xs) if xs else "none"


def _runs(grid: Sequence[float], mask: Sequence[bool]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    start = None
    for k, (x, on) in enumerate(zip(grid, mask, strict=True)):
        if on and start is None:
            start = x
        if start is not None and (not on or k == len(grid) - 1):
            out.append((start, x if on else grid[k - 1]))
            start = None
    return out


def _who_wins(lams: Sequence[float], winners: Mapping[float, object]) -> str:
    """'LP-FT better at lambda ...; FT better at ...' plus ties and double divergences when there are any."""
    text = [
        f"LP-FT better at lambda {_intervals(_runs(lams, [winners[x] == 'lp-ft' for x in lams]))}",
        f"FT better at {_intervals(_runs(lams, [winners[x] == 'ft' for x in lams]))}",
    ]
    for w in ("tie", "both diverged"):
        runs = _runs(lams, [winners[x] == w for x in lams])
        if runs:
            text.append(f"{w} at {_intervals(runs)}")
    return "; ".join(text)


# ---------------------------------------------------------------- onestep


def _onestep(args: argparse.Namespace) -> int:
    from pftlab.theory.model import make_problem
    from pftlab.theory.plots import onestep_plot
    from pftlab.theory.simulate import one_step_formula, onestep_gap_coefficients, run

    out = check_out_dir(Path(args.out))
    lam, eta = args.lambda_, args.step_size
    records: list[Row] = []
    worst = 0.0
    print(
        f"one FT step from (B0, V0) = (B, [V_com; 0]), lambda={lam:g}, step={eta:g}, d={args.d}, m={args.m}, C={args.C}"
    )
    for setting in ("concept", "covariate"):
        problem = make_problem(setting, lam, args.eps, args.d, args.m, args.C, head_norm=args.head_norm, seed=args.seed)
        B0, V0 = problem.start()
        errs = np.zeros(4)
        for i in range(problem.C):
            ft = run(problem, "ft", eta, 1, i)
            lp = run(problem, "lp-ft", eta, 0, i)
            f = one_step_formula(problem, i, eta)
            a = onestep_gap_coefficients(problem, i, eta)
            gap_sim = float(ft.global_others[1] - lp.global_others[0])
            gap_formula = lam**2 * float(a[0] + a[1] * lam + a[2] * lam**2)
            e = [
                np.abs(ft.B - B0 - f.delta_B).max(),
                np.abs(ft.V - V0 - f.delta_V).max(),
                np.abs(ft.B.T @ ft.V - f.W1).max(),
                abs(gap_sim - gap_formula),
            ]
            errs = np.maximum(errs, e)
            p, M = problem.private(i), problem.moments[i]
            for r in range(problem.m):
                dB = ft.B[r] - B0[r]
                along = float(dB @ p)
                records.append(
                    {
                        "setting": setting,
                        "client": i,
                        "row": r,
                        "lambda": lam,
                        "step_size": eta,
                        "eps": problem.eps if setting == "covariate" else 0.0,
                        "head_weight": float(V0[r]),
                        "tilt_simulated": along,
                        "tilt_formula": eta * lam * float(V0[r]) * float(p @ M @ p),
                        "off_direction_norm": float(np.linalg.norm(dB - along * p)),
                        "err_delta_B": float(e[0]),
                        "err_delta_V": float(e[1]),
                        "err_W1": float(e[2]),
                        "gap_simulated": gap_sim,
                        "gap_formula": gap_formula,
                    }
                )
        worst = max(worst, float(errs.max()))
        print(
            f"  {setting:9s}: max |dB - formula| {errs[0]:.1e}, |dV - formula| {errs[1]:.1e}, "
            f"|W1 - formula| {errs[2]:.1e}, |one-step global gap - quartic| {errs[3]:.1e}"
        )
    conc = make_problem("concept", lam, 0.0, args.d, args.m, args.C, head_norm=args.head_norm, seed=args.seed)
    v2 = float(conc.V_com @ conc.V_com)
    rows = [r for r in records if r["setting"] == "concept"]
    tilt_err = max(abs(float(r["tilt_simulated"]) - float(r["tilt_formula"])) for r in rows)
    off = max(float(r["off_direction_norm"]) for r in rows)
    print(
        f"  concept shift: shared row r moves by step*lambda*V_com[r] * p_i (max error {tilt_err:.1e}, "
        f"component off p_i {off:.1e}); private rows do not move; Delta V = step*lambda*e_(m+i)"
    )
    alpha = eta * (1 + v2)
    print(
        f"  concept shift: global(FT, 1 step) - global(LP-FT) = lambda^2 (alpha^2 - 1) / 2 with alpha = step (1 + "
        f"|V_com|^2) = {alpha:.3g}: LP-FT better iff step > {1 / (1 + v2):.3g} (the FT step overshoots)"
    )
    etas = np.linspace(0.05, 0.95, 19)
    closed = lam**2 * ((etas * (1 + v2)) ** 2 - 1) / 2
    sim = np.array(
        [run(conc, "ft", e, 1, 0).global_others[1] - run(conc, "lp-ft", e, 0, 0).global_others[0] for e in etas]
    )
    worst = max(worst, float(np.abs(sim - closed).max()))
    _write_csv(out / "onestep.csv", records)
    onestep_plot(records, (etas, closed, sim), out / "onestep.png")
    ok = worst < 1e-10
    print(f"formula check: {'OK' if ok else 'FAILED'} (largest error {worst:.1e}, tolerance 1e-10)")
    print(f"wrote {out / 'onestep.csv'} and {out / 'onestep.png'}")
    return 0 if ok else 1


# ---------------------------------------------------------------- sweep


def _sweep(args: argparse.Namespace) -> int:
    from pftlab.theory.plots import losses_vs_lambda, sweep_heatmap
    from pftlab.theory.sweep import sweep

    out = check_out_dir(Path(args.out))
    rows = sweep(
        args.setting,
        args.lambdas,
        args.steps,
        args.step_size,
        args.eps,
        args.d,
        args.m,
        args.C,
        head_norm=args.head_norm,
        seed=args.seed,
    )
    stem = f"sweep_{args.setting}"
    _write_csv(out / f"{stem}.csv", rows)
    sweep_heatmap(rows, out / f"{stem}_heatmap.png")
    steps = sorted(set(args.steps))
    shown = sorted({steps[0], steps[len(steps) // 2], steps[-1]})
    losses_vs_lambda(rows, out / f"{stem}_losses.png", shown)
    eps = f", eps {args.eps:g}" if args.setting == "covariate" else ""
    print(f"{args.setting}{eps}: global loss on the other clients, FT vs LP-FT (client mean), seed {args.seed}")
    lams = sorted(set(args.lambdas))
    for size in args.step_size:
        for t in steps:
            sel = {float(r["lambda"]): r["winner"] for r in rows if r["step_size"] == size and r["steps"] == t}
            print(f"  step {size:g}, {t:4d} steps: {_who_wins(lams, sel)}")
    print(f"wrote {out / (stem + '.csv')}, {out / (stem + '_heatmap.png')} and {out / (stem + '_losses.png')}")
    return 0


# ---------------------------------------------------------------- threshold


def _threshold(args: argparse.Namespace) -> int:
    from pftlab.theory.plots import threshold_plot
    from pftlab.theory.sweep import find_threshold

    out = check_out_dir(Path(args.out))
    th = find_threshold(
        args.setting,
        args.eps,
        args.step_size,
        args.steps,
        args.lambda_min,
        args.lambda_max,
        args.grid,
        args.d,
        args.m,
        args.C,
        head_norm=args.head_norm,
        seed=args.seed,
    )
    stem = f"threshold_{args.setting}"
    rows: list[Row] = []
    for k, lam in enumerate(th.lambdas):
        row: Row = {"lambda": float(lam), "gap_client_mean": float(th.gaps[k])}
        for i in range(len(th.client_gaps)):
            row[f"gap_client{i}"] = float(th.client_gaps[i, k])
        rows.append(row)
    _write_csv(out / f"{stem}.csv", rows)
    threshold_plot(th, out / f"{stem}.png")

    def describe(star: float | None, crossings: list[float]) -> str:
        where = ", ".join(f"{x:.6g}" for x in crossings) or "none"
        if star is None:
            return f"no lambda* (LP-FT is not better at lambda = {args.lambda_min:g}); switches at {where}"
        if not crossings:
            return f"LP-FT better on the whole range (lambda* >= {args.lambda_max:g})"
        return f"lambda* = {star:.6g} (LP-FT better on [{args.lambda_min:g}, {star:.6g}]); switches at {where}"

    summary = {
        "setting": th.setting,
        "eps": th.eps,
        "step_size": th.step,
        "steps": th.steps,
        "lambda_min": args.lambda_min,
        "lambda_max": args.lambda_max,
        "grid": args.grid,
        "d": args.d,
        "m": args.m,
        "C": args.C,
        "seed": args.seed,
        "head_norm": args.head_norm,
        "lambda_star": th.lambda_star,
        "crossings": th.crossings,
        "client_lambda_star": th.client_lambda_star,
        "client_crossings": th.client_crossings,
        "onestep_roots": th.onestep_roots,
        "lp_stability_lambda": th.lp_stability,
    }
    write_json(out / f"{stem}.json", summary)
    eps = f", eps {th.eps:g}" if th.setting == "covariate" else ""
    print(
        f"{th.setting}{eps}, step {th.step:g}, {th.steps} step(s), lambda in [{args.lambda_min:g}, "
        f"{args.lambda_max:g}] ({args.grid} points + bisection), d={args.d}, m={args.m}, C={args.C}, seed {args.seed}"
    )
    print(f"  client mean: {describe(th.lambda_star, th.crossings)}")
    for i, (star, cr) in enumerate(zip(th.client_lambda_star, th.client_crossings, strict=True)):
        print(f"  client {i}:    {describe(star, cr)}")
    if th.onestep_roots is not None:
        roots = ", ".join(f"{x:.6g}" for x in th.onestep_roots) or "none"
        print(
            f"  one-step closed form (client mean): gap = lambda^2 (a2 + a3 lambda + a4 lambda^2); "
            f"positive roots {roots}"
        )
    print(
        f"  LP-FT's start (B, V_i) is an unstable point of gradient descent with this step beyond lambda = "
        f"{th.lp_stability:.4g} (first client; any perturbation then grows)"
    )
    print(f"wrote {out / (stem + '.csv')}, {out / (stem + '.json')} and {out / (stem + '.png')}")
    return 0


# ---------------------------------------------------------------- relu


def _relu(args: argparse.Namespace) -> int:
    from pftlab.theory.plots import relu_plot
    from pftlab.theory.relu import compare

    out = check_out_dir(Path(args.out))
    rows = compare(
        args.settings,
        args.lambdas,
        args.steps,
        args.step_size,
        args.eps,
        args.d,
        args.m,
        args.C,
        n_train=args.n_train,
        n_eval=args.n_eval,
        head_norm=args.head_norm,
        seed=args.seed,
    )
    _write_csv(out / "relu.csv", rows)
    relu_plot(rows, out / "relu.png")
    print(f"finite samples ({args.n_train} train, {args.n_eval} eval per client), global loss on the other clients:")
    lams = sorted(set(args.lambdas))
    for act in ("relu", "identity"):
        for setting in args.settings:
            for size in args.step_size:
                for t in sorted(set(args.steps)):
                    sel = {
                        float(r["lambda"]): r["winner"]
                        for r in rows
                        if (r["activation"], r["setting"], r["step_size"], r["steps"]) == (act, setting, size, t)
                    }
                    print(f"  {act:8s} {setting:9s} step {size:g}, {t:4d} steps: {_who_wins(lams, sel)}")
    print(f"wrote {out / 'relu.csv'} and {out / 'relu.png'}")
    return 0


# ---------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--d", type=_positive_int, default=8, help="input dimension (>= m + C; default 8)")
    p.add_argument("--m", type=_positive_int, default=2, help="shared features (default 2)")
    p.add_argument("--C", type=_positive_int, default=4, help="clients, each with one private feature (default 4)")
    p.add_argument("--head-norm", type=float, default=1.0, help="|V_com| (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the orthonormal frame B (default 0)")
    p.add_argument("--out", default="runs/theory", metavar="DIR", help="output folder (default runs/theory)")
    p.add_argument("--check", action="store_true", help="only validate the arguments; compute and write nothing")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pftlab theory",
        description="The paper's two-layer linear model: exact FT vs LP-FT, the one-step formula, sweeps, lambda*.",
    )
    sub = parser.add_subparsers(dest="theory_command", required=True, parser_class=Parser)

    one = sub.add_parser("onestep", help="check the closed-form first FT step and the one-step global gap")
    one.add_argument("--lambda", dest="lambda_", type=float, default=1.0, help="heterogeneity (default 1)")
    one.add_argument("--step-size", type=float, default=0.3, help="gradient step size (default 0.3)")
    one.add_argument("--eps", type=float, default=0.5, help="input noise of the covariate setting (default 0.5)")
    _common(one)
    one.set_defaults(func=_onestep)

    sw = sub.add_parser("sweep", help="FT vs LP-FT over lambda x steps x step size: CSV, heat map, loss curves")
    sw.add_argument("--setting", choices=("concept", "covariate"), default="concept")
    sw.add_argument("--lambdas", type=float, nargs="+", default=[round(0.1 * k, 1) for k in range(1, 31)], metavar="L")
    sw.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 5, 10, 20, 50, 100], metavar="T")
    sw.add_argument("--step-size", type=float, nargs="+", default=[0.2, 0.6], metavar="S")
    sw.add_argument("--eps", type=float, default=0.5, help="input noise of the covariate setting (default 0.5)")
    _common(sw)
    sw.set_defaults(func=_sweep)

    th = sub.add_parser("threshold", help="locate lambda*: the largest lambda up to which LP-FT is better")
    th.add_argument("--setting", choices=("concept", "covariate"), default="covariate")
    th.add_argument("--eps", type=float, default=1.0, help="input noise of the covariate setting (default 1)")
    th.add_argument("--step-size", type=float, default=0.5, help="gradient step size (default 0.5)")
    th.add_argument("--steps", type=int, default=1, help="FT steps after the start / the probe (default 1)")
    th.add_argument("--lambda-min", type=float, default=0.02)
    th.add_argument("--lambda-max", type=float, default=12.0)
    th.add_argument("--grid", type=int, default=200, help="grid points before bisection (default 200)")
    _common(th)
    th.set_defaults(func=_threshold)

    re = sub.add_parser("relu", help="the same comparison with a ReLU after B, on finite samples")
    re.add_argument("--settings", nargs="+", choices=("concept", "covariate"), default=["concept", "covariate"])
    re.add_argument("--lambdas", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0, 3.0], metavar="L")
    re.add_argument("--steps", type=int, nargs="+", default=[1, 10, 100], metavar="T")
    re.add_argument("--step-size", type=float, nargs="+", default=[0.2, 0.6, 1.3], metavar="S")
    re.add_argument("--eps", type=float, default=0.5, help="input noise of the covariate setting (default 0.5)")
    re.add_argument("--n-train", type=_positive_int, default=2000, help="training inputs per client (default 2000)")
    re.add_argument("--n-eval", type=_positive_int, default=4000, help="evaluation inputs per client (default 4000)")
    _common(re)
    re.set_defaults(func=_relu)
    return parser


# Sizes beyond these are refused rather than left to run for hours or to exhaust memory.
LIMITS = {"d": 256, "m": 256, "C": 256, "steps": 100_000, "grid": 100_000, "n_train": 100_000, "n_eval": 100_000}


def validate(args: argparse.Namespace) -> None:
    """Every argument check the subcommand would make, done up front and cheaply (no simulation)."""
    from pftlab.theory.model import make_problem
    from pftlab.theory.sweep import _check_grid

    for key, limit in LIMITS.items():
        values = getattr(args, key, [])
        for v in values if isinstance(values, list) else [values]:
            if v > limit:
                raise UserError(f"--{key.replace('_', '-')} must be <= {limit:,} (got {v})")
    if not np.isfinite(args.head_norm) or args.head_norm < 0:
        raise UserError(f"--head-norm must be a finite number >= 0 (got {args.head_norm})")
    check_out_dir(Path(args.out))
    cmd = args.theory_command
    lambdas = {"onestep": [args.lambda_ if cmd == "onestep" else 0.0]}.get(cmd, getattr(args, "lambdas", [1.0]))
    settings = getattr(args, "settings", [getattr(args, "setting", "concept")])
    for setting in settings:
        make_problem(setting, lambdas[0] if lambdas else 1.0, args.eps, args.d, args.m, args.C, seed=args.seed)
    if cmd == "onestep" and (not np.isfinite(args.step_size) or args.step_size <= 0):
        raise UserError(f"--step-size must be a finite number > 0 (got {args.step_size})")
    if cmd in ("sweep", "relu"):
        _check_grid(args.lambdas, args.steps, args.step_size)
    if cmd == "relu" and args.n_eval < 2:
        raise UserError(f"--n-eval must be >= 2 (got {args.n_eval})")
    if cmd == "threshold":
        lo, hi = args.lambda_min, args.lambda_max
        if not (0 < lo < hi) or not np.isfinite(hi):
            raise UserError(f"need 0 < --lambda-min < --lambda-max, both finite (got {lo}, {hi})")
        if args.grid < 2 or args.steps < 1:
            raise UserError(f"need --grid >= 2 and --steps >= 1 (got {args.grid}, {args.steps})")
        if not np.isfinite(args.step_size) or args.step_size <= 0:
            raise UserError(f"--step-size must be a finite number > 0 (got {args.step_size})")


def main(argv: list[str]) -> int:
    """Run `pftlab theory <subcommand> ...`; returns the exit code, raises UserError on a user mistake."""
    args = build_parser().parse_args(argv)
    validate(args)
    if args.check:
        print(f"theory {args.theory_command}: arguments OK; results would go to {args.out}/")
        return 0
    with np.errstate(all="ignore"):
        return int(args.func(args))
