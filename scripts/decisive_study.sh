#!/usr/bin/env bash
# The decisive study (issue 25): every `pftlab study` it is made of.
#   scripts/decisive_study.sh [ROOT]     compute (or resume) them all into ROOT (default runs/decisive-study)
#   scripts/decisive_study.sh --rebuild  rebuild docs/study/decisive/*'s reports from the published cells: each
#                                        study is copied to /tmp, rerun there (every cell verified against its
#                                        manifest and reused; 2 threads, torch 2.13 CPU, as they ran) and its
#                                        report.md, report.html, decision.csv and tables published back.
# What each part is:
#   heart, digits-quick  every method tuned (configs/grids.toml), both choice rules; heart 10 seeds, digits-quick 5
#   swap/pairs<k>        covariate shift (a domain per client, iid labels) plus k swapped label pairs, 5 seeds
#   controls/*           FT's model with the global head or backbone put back; FT for 10 epochs; LP at FT's lr
#   global/<alg>         FedProx, SCAFFOLD, FedAdam, FedBABU before FT, LP, LP-FT (tuned), 5 seeds
# Benchmarks left out and why: docs/study/README.md, "Decision". Set PFTLAB_DATA to the data folder.
set -euo pipefail
ALL="ft lp lp-ft lp-ft-kumar proximal-ft sparse-ft soup-ft lss-ft wise-ft surgical-ft flood-ft fedper fedrep ditto"
S5="0 1 2 3 4"
S10="0 1 2 3 4 5 6 7 8 9"
study() { pftlab study --no-progress "$@"; }
decision() {  # OUT BENCHMARK SEEDS: the main decision for one benchmark
  study --out "$1" --grids configs/grids.toml --benchmarks "$2" --seeds $3 --methods $ALL
}
if [[ ${1:-} == --rebuild ]]; then
  for part in heart digits-quick; do
    tmp=$(mktemp -d)
    cp -r "docs/study/decisive/$part/." "$tmp/"
    if [[ $part == heart ]]; then decision "$tmp" heart "$S10"; else decision "$tmp" digits-quick "$S5"; fi
    bash scripts/publish_study.sh "$tmp" "docs/study/decisive/$part"
    rm -rf "$tmp"
  done
  for k in 0 1 2 3 5; do
    tmp=$(mktemp -d)
    cp -r "docs/study/decisive/swap/pairs$k/." "$tmp/"
    study --out "$tmp" --grids configs/grids.toml --benchmarks digits-quick --seeds $S5 \
      --methods ft lp lp-ft --set 'data.partition="iid"' --set "data.swap_pairs=$k"
    bash scripts/publish_study.sh "$tmp" "docs/study/decisive/swap/pairs$k"
    rm -rf "$tmp"
  done
  exit 0
fi
root=${1:-runs/decisive-study}
decision "$root/heart" heart "$S10"
decision "$root/digits-quick" digits-quick "$S5"
for k in 0 1 2 3 5; do
  study --out "$root/swap/pairs$k" --grids configs/grids.toml --benchmarks digits-quick --seeds $S5 \
    --methods ft lp lp-ft --set 'data.partition="iid"' --set "data.swap_pairs=$k"
done
C=(--seeds $S5 --benchmarks heart digits-quick fmnist-dirichlet)
study --out "$root/controls/swaps" "${C[@]}" --methods ft ft-global-head ft-global-body lp lp-ft
study --out "$root/controls/ft-10" "${C[@]}" --methods ft --set personalize.epochs=10
study --out "$root/controls/lp-at-ft-lr" "${C[@]}" --methods lp-ft --set method.lp-ft.lp_lr=0.01
for a in fedprox scaffold fedadam fedbabu; do
  study --out "$root/global/$a" --grids configs/grids.toml --benchmarks heart digits-quick --seeds $S5 \
    --methods ft lp lp-ft --set "federated.algorithm=\"$a\""
done
