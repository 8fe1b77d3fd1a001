#!/usr/bin/env bash
# Copy a finished study into the docs: report.md, the tables, the figures, study.json, and each cell's
# summary.json / config.toml / run.json / search.json (kilobytes; enough to check every number and rerun any cell).
# Weights, matrices and per-client CSVs stay in the study directory.
set -euo pipefail
src=${1:?usage: scripts/publish_study.sh STUDY_DIR [DEST, default docs/study]}
dest=${2:-docs/study}
for f in report.md table.md table.csv study.json; do
  [[ -f "$src/$f" ]] || { echo "publish_study: $src/$f missing: run 'pftlab study --out $src' first" >&2; exit 2; }
done
mkdir -p "$dest"
cp "$src"/report.md "$src"/table.md "$src"/table.csv "$src"/study.json "$dest"/
rm -rf "$dest/figures" "$dest/runs"
cp -r "$src/figures" "$dest/figures"
for cell in "$src"/runs/*/seed*; do
  [[ -f "$cell/summary.json" ]] || continue
  rel=${cell#"$src"/}
  mkdir -p "$dest/$rel"
  cp "$cell/summary.json" "$cell/config.toml" "$cell/run.json" "$dest/$rel/"
  [[ ! -f "$cell/search.json" ]] || cp "$cell/search.json" "$dest/$rel/"  # each client's grid choice
done
echo "publish_study: $src -> $dest"
