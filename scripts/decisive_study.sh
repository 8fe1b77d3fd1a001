#!/usr/bin/env bash
# The decisive study (issue 25): every `pftlab study` it is made of, into ROOT (default runs/decisive-study).
# Run on published cells (docs/study/decisive), each study verifies and reuses its cells and rewrites its
# report.md, report.html and decision.csv: one command rebuilds every number docs/study/README.md quotes.
#   ROOT/main            heart, digits-quick: every method tuned (configs/grids.toml), both choice rules, 10 seeds
#   ROOT/swap/pairs<k>   covariate shift (a domain per client, iid labels) plus k swapped label pairs, 5 seeds
#   ROOT/controls/*      FT's model with the global head or backbone put back; FT for 10 epochs; LP at FT's lr
#   ROOT/global/<alg>    FedProx, SCAFFOLD, FedAdam, FedBABU before FT, LP, LP-FT (tuned), 5 seeds
# Benchmarks left out and why: docs/study/README.md, "Decision". Set PFTLAB_DATA to the data folder.
set -euo pipefail
root=${1:-runs/decisive-study}
study() { pftlab study --no-progress "$@"; }
ALL="ft lp lp-ft lp-ft-kumar proximal-ft sparse-ft soup-ft lss-ft wise-ft surgical-ft flood-ft fedper fedrep ditto"
study --out "$root/main" --grids configs/grids.toml --benchmarks heart digits-quick --seeds 0 1 2 3 4 5 6 7 8 9 \
  --methods $ALL
for k in 0 1 2 3 5; do
  study --out "$root/swap/pairs$k" --grids configs/grids.toml --benchmarks digits-quick --seeds 0 1 2 3 4 \
    --methods ft lp lp-ft --set 'data.partition="iid"' --set "data.swap_pairs=$k"
done
C=(--seeds 0 1 2 3 4 --benchmarks heart digits-quick fmnist-dirichlet)
study --out "$root/controls/swaps" "${C[@]}" --methods ft ft-global-head ft-global-body lp lp-ft
study --out "$root/controls/ft-10" "${C[@]}" --methods ft --set personalize.epochs=10
study --out "$root/controls/lp-at-ft-lr" "${C[@]}" --methods lp-ft --set method.lp-ft.lp_lr=0.01
for a in fedprox scaffold fedadam fedbabu; do
  study --out "$root/global/$a" --grids configs/grids.toml --benchmarks heart digits-quick --seeds 0 1 2 3 4 \
    --methods ft lp lp-ft --set "federated.algorithm=\"$a\""
done
