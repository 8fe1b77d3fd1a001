#!/usr/bin/env bash
# The decisive study (issue 25): every `pftlab study` it is made of.
#   scripts/decisive_study.sh [ROOT] [PART...]   compute (or resume) the parts into ROOT/<part> (default ROOT
#                                                runs/decisive-study, every part)
#   scripts/decisive_study.sh --rebuild [PART...] rebuild docs/study/decisive/<part>'s reports from its published
#                                                cells: each study is copied to /tmp, rerun there (every cell
#                                                verified against its manifest and reused; torch 2.13 CPU and
#                                                the part's own thread count, 1 for main/* and 2 for the rest,
#                                                as they ran) and its report.md, report.html, decision.csv
#                                                and tables published back. Parts not yet published are skipped.
#                                                Then docs/study/README.md's Decision tables are rewritten from
#                                                the cells and drawn (scripts/decision_table.py).
# The parts:
#   heart, digits-quick      every method tuned (configs/grids.toml), both choice rules; heart 10 seeds, digits-quick 5
#   main/<benchmark>         the same on colored-mnist, digits, fmnist-dirichlet, 5 seeds, and on cifar10-dirichlet,
#                            3 seeds (cut: 2 hours a seed here; $S5 in its line below adds seeds 3 and 4, the part
#                            resuming), one thread per cell (two parts run side by side on a 2-core machine: a third
#                            more work per hour than one part at two threads)
#   main/mnist-writers-20    the same on mnist-writers cut to its quick size (20 writers of 539): a seed of the full
#                            benchmark with every method's grid would take about 10 hours here
#   main/cifar10c-15         the same on cifar10c cut to 15 clients (one per corruption, of its 50): a seed of the
#                            full benchmark would take 5-6 hours here (FT alone 846 s, LP 357 s); 5 seeds
#   main/cifar10c            the full benchmark, 3 seeds: defined, not among the parts run by default (compute)
#   swap/pairs<k>            covariate shift (a domain per client, iid labels) plus k swapped label pairs, 5 seeds
#   controls/swaps           FT's model with the global head or backbone put back (defaults, 5 seeds)
#   controls/ft-10           FT for LP-FT's 10 fine-tuning epochs
#   controls/lp-at-ft-lr     LP-FT with its LP stage at FT's learning rate (0.01)
#                            (--rebuild also writes docs/study/decisive/controls/report.md: scripts/controls_report.py)
#   global/<alg>             FedProx, SCAFFOLD, FedAdam, FedBABU before FT, LP, LP-FT (tuned), 5 seeds
#   label                    label shift at the tuned settings, FT's change split into head and features
#   pretrained/scratch       mnist-writers (quick size: 20 writers), FT, LP, LP-FT tuned, 5 seeds, from scratch
#   pretrained/fmnist        the same from the small CNN pretrained on Fashion-MNIST (configs/pretrain-fmnist.toml;
#                            its weights are published beside the cells)
# Benchmarks left out and why: docs/study/README.md, "Decision". Set PFTLAB_DATA to the data folder.
set -euo pipefail
ALL="ft lp lp-ft lp-ft-kumar proximal-ft sparse-ft soup-ft lss-ft wise-ft surgical-ft flood-ft fedper fedrep ditto"
S3="0 1 2"
S5="0 1 2 3 4"
S10="0 1 2 3 4 5 6 7 8 9"
G=(--grids configs/grids.toml)
C=(--seeds $S5 --benchmarks heart digits-quick)
MAIN=(main/colored-mnist main/digits main/fmnist-dirichlet main/cifar10-dirichlet main/cifar10c-15 main/mnist-writers-20)
PARTS=(heart digits-quick "${MAIN[@]}" swap/pairs0 swap/pairs1 swap/pairs2 swap/pairs3 swap/pairs5 controls/swaps controls/ft-10
  controls/lp-at-ft-lr global/fedprox global/scaffold global/fedadam global/fedbabu label pretrained/scratch
  pretrained/fmnist)
INIT=docs/study/decisive/pretrained/fmnist-cnn.safetensors
W=(--benchmarks mnist-writers --seeds $S5 --methods ft lp lp-ft --set 'data.size="quick"')
# appended to every study command (argparse keeps the last of each option): --rebuild sets the published part's
# own benchmarks and seeds; STUDY_ARGS="--seeds 1 3" runs some of a part's seeds (e.g. one lane per core, each into
# its own ROOT; a cell does not depend on which other seeds ran, so finished cells can be copied into one study)
read -ra EXTRA <<<"${STUDY_ARGS:-}"
study_in() { local out=$1; shift; pftlab study --no-progress --out "$out" "$@" "${EXTRA[@]}"; }
run_part() {  # PART OUT: the part's study, written to (or resumed in) OUT
  local part=$1 out=$2 a
  set -- study_in "$out"
  case $part in
  heart) "$@" "${G[@]}" --benchmarks heart --seeds $S10 --methods $ALL ;;
  digits-quick) "$@" "${G[@]}" --benchmarks digits-quick --seeds $S5 --methods $ALL ;;
  main/mnist-writers-20) "$@" "${G[@]}" --benchmarks mnist-writers --seeds $S5 --methods $ALL --set runtime.threads=1 \
    --set 'data.size="quick"' ;;
  main/cifar10-dirichlet | main/cifar10c) "$@" "${G[@]}" --benchmarks "${part#main/}" --seeds $S3 --methods $ALL \
    --set runtime.threads=1 ;;
  main/cifar10c-15) "$@" "${G[@]}" --benchmarks cifar10c --seeds $S5 --methods $ALL --set runtime.threads=1 \
    --set data.num_clients=15 ;;
  main/*) "$@" "${G[@]}" --benchmarks "${part#main/}" --seeds $S5 --methods $ALL --set runtime.threads=1 ;;
  swap/pairs*) "$@" "${G[@]}" --benchmarks digits-quick --seeds $S5 --methods ft lp lp-ft \
    --set 'data.partition="iid"' --set "data.swap_pairs=${part#swap/pairs}" ;;
  controls/swaps) "$@" "${C[@]}" --methods ft ft-global-head ft-global-body lp lp-ft ;;
  controls/ft-10) "$@" "${C[@]}" --methods ft --set personalize.epochs=10 ;;
  controls/lp-at-ft-lr) "$@" "${C[@]}" --methods lp-ft --set method.lp-ft.lp_lr=0.01 ;;
  global/*) a=${part#global/}
    "$@" "${G[@]}" --benchmarks heart digits-quick --seeds $S5 --methods ft lp lp-ft --set "federated.algorithm=\"$a\"" ;;
  label) "$@" "${G[@]}" --benchmarks fmnist-dirichlet cifar10-dirichlet --seeds $S5 \
    --methods ft ft-global-head ft-global-body lp lp-ft ;;
  pretrained/scratch) "$@" "${G[@]}" "${W[@]}" ;;
  pretrained/fmnist)
    [[ -f $INIT ]] || pftlab pretrain configs/pretrain-fmnist.toml --out "$INIT"
    "$@" "${G[@]}" "${W[@]}" --set "model.init=\"$INIT\"" --set model.init_head=false ;;
  *) echo "decisive_study: unknown part $part; parts: ${PARTS[*]} main/cifar10c" >&2; exit 2 ;;
  esac
}
if [[ ${1:-} == --rebuild ]]; then
  shift
  for part in "${@:-${PARTS[@]}}"; do
    [[ -f docs/study/decisive/$part/study.json ]] || { echo "decisive_study: $part not published; skipped" >&2; continue; }
    tmp=$(mktemp -d)
    cp -r "docs/study/decisive/$part/." "$tmp/"
    # a part published before all its benchmarks or seeds were computed rebuilds what was published
    read -ra EXTRA <<<"$("${PYTHON:-python}" -c 'import json, sys; s = json.load(open(sys.argv[1]))
print(" ".join(["--benchmarks", *s["benchmarks"], "--seeds", *map(str, s["seeds"])]))' "$tmp/study.json")"
    run_part "$part" "$tmp"
    bash scripts/publish_study.sh "$tmp" "docs/study/decisive/$part"
    rm -rf "$tmp"
  done
  # the controls compared across their three studies (paired: they share each seed's global model)
  [[ ! -f docs/study/decisive/controls/swaps/study.json ]] || "${PYTHON:-python}" scripts/controls_report.py >/dev/null
  # the Decision tables of docs/study/README.md, from the cells (each table's marker names its study)
  "${PYTHON:-python}" scripts/decision_table.py --figure docs/study/decisive/decision.png docs/study/README.md
  exit 0
fi
root=${1:-runs/decisive-study}
shift || true
for part in "${@:-${PARTS[@]}}"; do run_part "$part" "$root/$part"; done
