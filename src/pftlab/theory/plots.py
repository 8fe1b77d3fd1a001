"""Figures of the theory module, saved atomically as PNG (same conventions as pftlab.report.plots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.image import AxesImage

from pftlab.core.io import write_png
from pftlab.theory.sweep import Threshold

Row = dict[str, float | int | str]


def _symmetric(values: np.ndarray, cap: float | None = None) -> float:
    """Half-width of a colour scale centred at 0: the 95th percentile of |finite values| (blow-ups saturate)."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(np.percentile(finite, 95)) if finite.size else 1.0
    if cap is not None:
        top = min(top, cap) if top > 0 else cap
    return top if top > 0 else 1.0


def _gap_image(
    ax: Axes, grid: np.ndarray, xs: Sequence[float], ys: Sequence[int], label: str, cap: float | None = None
) -> AxesImage:
    """grid[y, x]; values beyond the scale saturate, +-inf cells also get a marker, nan cells are grey."""
    vmax = _symmetric(grid, cap)
    shown = np.clip(np.where(np.isfinite(grid), grid, np.sign(np.nan_to_num(grid, nan=0.0)) * vmax), -vmax, vmax)
    shown = np.ma.masked_invalid(np.where(np.isnan(grid), np.nan, shown))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.6")
    im = ax.imshow(
        shown, origin="lower", aspect="auto", cmap=cmap, norm=TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    )
    yy, xx = np.nonzero(np.isinf(grid))
    if len(xx):
        ax.scatter(xx, yy, marker="x", s=12, color="black", lw=0.8)
    nx = len(xs)
    ticks = np.unique(np.linspace(0, nx - 1, min(nx, 8)).round().astype(int))
    ax.set_xticks(ticks, [f"{xs[t]:g}" for t in ticks], fontsize=7)
    ax.set_yticks(range(len(ys)), [str(t) for t in ys], fontsize=7)
    ax.set_xlabel("lambda (heterogeneity)")
    ax.set_ylabel("gradient steps")
    ax.set_title(label, fontsize=9)
    return im


def sweep_heatmap(rows: Sequence[Row], path: Path) -> None:
    """global_others(FT) - global_others(LP-FT) over (lambda, steps), one column of panels per step size.

    Top: the raw gap; bottom: the gap divided by LP-FT's global loss. Red: LP-FT better, blue: FT better.
    """
    sizes = sorted({float(r["step_size"]) for r in rows})
    lams = sorted({float(r["lambda"]) for r in rows})
    steps = sorted({int(r["steps"]) for r in rows})
    fig, axes = plt.subplots(2, len(sizes), figsize=(4.8 * len(sizes) + 0.6, 7.6), squeeze=False, layout="constrained")
    for col, size in enumerate(sizes):
        raw = np.full((len(steps), len(lams)), np.nan)
        rel = np.full_like(raw, np.nan)
        for r in rows:
            if float(r["step_size"]) != size:
                continue
            y, x = steps.index(int(r["steps"])), lams.index(float(r["lambda"]))
            g, lp = float(r["gap_global_others"]), float(r["global_others_lpft"])
            raw[y, x] = g
            rel[y, x] = g / lp if np.isfinite(lp) and lp > 0 else (g if not np.isfinite(g) else np.nan)
        setting = rows[0]["setting"]
        sane = np.isfinite(rel) & (np.abs(rel) <= 1)  # the raw scale ignores blow-ups (they saturate)
        im = _gap_image(
            axes[0, col],
            raw,
            lams,
            steps,
            f"{setting}, step {size:g}: global(FT) - global(LP-FT)",
            cap=_symmetric(raw[sane]) if sane.any() else None,
        )
        fig.colorbar(im, ax=axes[0, col], shrink=0.85)
        im = _gap_image(axes[1, col], rel, lams, steps, f"{setting}, step {size:g}: same / global(LP-FT)", cap=1.0)
        fig.colorbar(im, ax=axes[1, col], shrink=0.85)
    fig.suptitle(
        "red: LP-FT has the lower global loss on the other clients; blue: FT does\n"
        "colours saturate beyond the bar; x: one method diverged; grey: both did",
        fontsize=9,
    )
    write_png(path, fig)


def losses_vs_lambda(rows: Sequence[Row], path: Path, steps: Sequence[int]) -> None:
    """Local and global (other clients) loss against lambda for FT and LP-FT: a row of panels per step size, a column
    per step count."""
    sizes = sorted({float(r["step_size"]) for r in rows})
    fig, axes = plt.subplots(
        len(sizes), len(steps), figsize=(4.6 * len(steps), 3.6 * len(sizes)), squeeze=False, layout="constrained"
    )
    for a, size in enumerate(sizes):
        for b, t in enumerate(steps):
            ax = axes[a, b]
            sel = sorted(
                (r for r in rows if float(r["step_size"]) == size and int(r["steps"]) == t), key=lambda r: r["lambda"]
            )
            lam = [float(r["lambda"]) for r in sel]
            values = np.array(
                [float(r[f"{k}_{tag}"]) for r in sel for k in ("local", "global_others") for tag in ("ft", "lpft")]
            )
            values = values[np.isfinite(values) & (values > 0)]
            for tag, name, color in (("ft", "FT", "C0"), ("lpft", "LP-FT", "C3")):
                ax.plot(lam, [r[f"global_others_{tag}"] for r in sel], color=color, label=f"{name} global (others)")
                ax.plot(lam, [r[f"local_{tag}"] for r in sel], color=color, ls="--", label=f"{name} local")
            ax.set_yscale("symlog", linthresh=1e-3)
            if values.size:  # blow-ups leave the frame; diverged points (inf) are not drawn
                ax.set_ylim(-1e-4, 10 * float(np.percentile(values, 80)))
            ax.set_xlabel("lambda")
            ax.set_ylabel("population loss (client mean)", fontsize=8)
            ax.set_title(f"{sel[0]['setting'] if sel else ''}: step {size:g}, {t} steps", fontsize=9)
            ax.legend(fontsize=7)
    write_png(path, fig)


def threshold_plot(th: Threshold, path: Path) -> None:
    """gap / lambda^2 against lambda (client mean bold, each client faint), with lambda* and every crossing marked."""
    fig, ax = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    lam2 = th.lambdas**2

    ratios = np.concatenate([th.gaps / lam2, *(g / lam2 for g in th.client_gaps)])
    finite = np.abs(ratios[np.isfinite(ratios)])
    lim = 2.0 * float(np.percentile(finite, 80)) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0

    def clip(g: np.ndarray) -> np.ndarray:
        v = g / lam2
        return np.clip(np.where(np.isnan(v), np.nan, v), -lim, lim)

    for i, g in enumerate(th.client_gaps):
        ax.plot(th.lambdas, clip(g), lw=0.8, alpha=0.5, label=f"client {i}")
    ax.plot(th.lambdas, clip(th.gaps), color="black", lw=2, label="client mean")
    for i, cr in enumerate(th.client_crossings):
        ax.scatter(cr, np.zeros(len(cr)), s=18, color=f"C{i}", zorder=3)
    ax.axhline(0, color="grey", lw=0.8)
    for x in th.crossings:
        ax.axvline(x, color="black", ls=":", lw=0.8)
    if th.lambda_star is not None and th.crossings:
        ax.axvline(th.lambda_star, color="C3", lw=1.5, label=f"lambda* = {th.lambda_star:.4g}")
    if th.lambdas[0] < th.lp_stability < th.lambdas[-1]:
        ax.axvline(
            th.lp_stability, color="C2", ls="--", lw=1, label=f"LP-FT start unstable beyond {th.lp_stability:.3g}"
        )
    ax.set_xlabel("lambda")
    ax.set_ylabel("[global(FT) - global(LP-FT)] / lambda^2   (> 0: LP-FT better)", fontsize=8)
    ax.set_ylim(-1.05 * lim, 1.05 * lim)
    eps = f", eps {th.eps:g}" if th.setting == "covariate" else ""
    ax.set_title(f"{th.setting}{eps}, step {th.step:g}, {th.steps} step(s); blow-ups clipped at the frame", fontsize=9)
    ax.legend(fontsize=7)
    write_png(path, fig)


def onestep_plot(records: Sequence[Row], gap_curve: tuple[np.ndarray, np.ndarray, np.ndarray], path: Path) -> None:
    """Left: each shared row's tilt toward p_i after one FT step, simulated vs step*lambda*V_com[r] (concept shift).
    Right: the one-step gap against the step size, closed form vs simulation (concept shift)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    conc = [r for r in records if r["setting"] == "concept"]
    x = np.arange(len(conc))
    a1.bar(x - 0.2, [r["tilt_simulated"] for r in conc], width=0.4, label="simulated <Delta B_r, p_i>")
    a1.bar(x + 0.2, [r["tilt_formula"] for r in conc], width=0.4, label="step * lambda * V_com[r]")
    a1.set_xticks(x, [f"c{r['client']} r{r['row']}" for r in conc], fontsize=6, rotation=90)
    a1.set_title("concept shift: one FT step tilts shared row r toward p_i", fontsize=9)
    a1.legend(fontsize=7)
    etas, closed, sim = gap_curve
    a2.plot(etas, closed, color="black", label="lambda^2 (alpha^2 - 1) / 2, alpha = step (1 + |V_com|^2)")
    a2.scatter(etas, sim, s=12, color="C3", label="simulated", zorder=3)
    a2.axhline(0, color="grey", lw=0.8)
    a2.set_xlabel("step size")
    a2.set_ylabel("global(FT, 1 step) - global(LP-FT)")
    a2.set_title("concept shift: LP-FT better iff the FT step overshoots (alpha > 1)", fontsize=9)
    a2.legend(fontsize=7)
    write_png(path, fig)


def relu_plot(rows: Sequence[Row], path: Path) -> None:
    """Relative gap (FT - LP-FT) / LP-FT of the global loss against lambda: settings x activations, a line per
    (step size, steps). Above 0: LP-FT better."""
    settings = sorted({str(r["setting"]) for r in rows})
    acts = sorted({str(r["activation"]) for r in rows}, reverse=True)
    fig, axes = plt.subplots(
        len(settings), len(acts), figsize=(5.4 * len(acts), 3.9 * len(settings)), squeeze=False, layout="constrained"
    )
    for a, setting in enumerate(settings):
        for b, act in enumerate(acts):
            ax = axes[a, b]
            sel = [r for r in rows if r["setting"] == setting and r["activation"] == act]
            keys = sorted({(float(r["step_size"]), int(r["steps"])) for r in sel})
            for k, (size, t) in enumerate(keys):
                line = sorted(
                    (r for r in sel if (float(r["step_size"]), int(r["steps"])) == (size, t)), key=lambda r: r["lambda"]
                )
                lp = np.array([float(r["global_others_lpft"]) for r in line])
                g = np.array([float(r["gap_global_others"]) for r in line])
                rel = np.clip(np.where(lp > 0, g / np.where(lp > 0, lp, 1.0), np.nan), -2, 2)
                sizes = sorted({k[0] for k in keys})
                ls = ("-", "--", ":", "-.")[sizes.index(size) % 4]
                ax.plot(
                    [r["lambda"] for r in line],
                    rel,
                    marker="o",
                    ms=3,
                    ls=ls,
                    color=f"C{k % 10}",
                    label=f"step {size:g}, {t} steps",
                )
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_title(f"{act}, {setting} (finite samples)", fontsize=9)
            ax.set_xlabel("lambda")
            ax.set_ylabel("(global FT - global LP-FT) / global LP-FT", fontsize=8)
            ax.legend(fontsize=6)
    write_png(path, fig)
