#!/usr/bin/env bash
# Copy a finished study into the docs: report.md, report.html, decision.csv, the tables, the figures, study.json,
# and each cell's summary.json / config.toml / run.json / search.json / manifest.json / clients.csv (kilobytes;
# enough to check every number, rebuild the paired decision, rerun any cell, and let a study reuse the published
# cell once they verify against the manifest), plus the matrices report.html draws (global model, FT, LP-FT) of
# federations of at most 100 clients. Weights and the other matrices stay in the study directory.
#   scripts/publish_study.sh STUDY_DIR [DEST]          everything (after a study over every benchmark)
#   scripts/publish_study.sh --cells STUDY_DIR [DEST]  only the finished cells, added to DEST's; the report,
#       tables and figures there stay as they are. Publish (and commit) each cell as soon as it finishes:
#       runs/ is not in git, and a session's machine can be lost with everything in it.
set -euo pipefail
cells_only=0
if [[ ${1:-} == --cells ]]; then cells_only=1; shift; fi
src=${1:?usage: scripts/publish_study.sh [--cells] STUDY_DIR [DEST, default docs/study]}
dest=${2:-docs/study}
mkdir -p "$dest"
if ((!cells_only)); then
  for f in report.md table.md table.csv study.json; do
    [[ -f "$src/$f" ]] || { echo "publish_study: $src/$f missing: run 'pftlab study --out $src' first" >&2; exit 2; }
  done
  cp "$src"/report.md "$src"/table.md "$src"/table.csv "$src"/study.json "$dest"/
  for f in report.html decision.csv; do [[ ! -f "$src/$f" ]] || cp "$src/$f" "$dest"/; done
  rm -rf "$dest/figures" "$dest/runs"
  cp -r "$src/figures" "$dest/figures"
fi
n=0
for cell in "$src"/runs/*/seed*; do
  [[ -f "$cell/manifest.json" ]] || continue  # unfinished: manifest.json is written last
  rel=${cell#"$src"/}
  mkdir -p "$dest/$rel"
  cp "$cell/summary.json" "$cell/config.toml" "$cell/run.json" "$cell/manifest.json" "$dest/$rel/"
  [[ ! -f "$cell/search.json" ]] || cp "$cell/search.json" "$dest/$rel/"  # each client's grid choice
  [[ ! -f "$cell/clients.csv" ]] || cp "$cell/clients.csv" "$dest/$rel/"  # per-client metrics: the paired decision
  if [[ -d "$cell/matrices" ]] && (($(ls "$cell/matrices" | wc -l) > 0)) \
    && (($(head -1 "$cell/matrices/global-model.csv" | tr ',' '\n' | wc -l) <= 101)); then
    mkdir -p "$dest/$rel/matrices"
    for m in global-model ft lp-ft; do
      [[ ! -f "$cell/matrices/$m.csv" ]] || cp "$cell/matrices/$m.csv" "$dest/$rel/matrices/"
    done
  fi
  n=$((n + 1))
done
what="$n finished cells"
((!cells_only)) || what+=", cells only"
echo "publish_study: $src -> $dest ($what)"
