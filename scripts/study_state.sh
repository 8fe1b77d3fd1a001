#!/usr/bin/env bash
# Carry an unfinished study across machines: what its unfinished cells have computed so far (each
# cell's .results/: sealed chunks of clients and finished baselines; a cell is unfinished while it
# has no manifest.json) and the global checkpoints
# they may start from (DIR/cache/global less those of finished cells), in one small tar.xz to
# commit. A session's machine, with runs/ on it, is not kept; a cell of mnist-writers takes longer
# than one session.
#   scripts/study_state.sh save STUDY_DIR FILE.tar.xz   (stop the study first: kill -STOP or let it end)
#   scripts/study_state.sh load FILE.tar.xz STUDY_DIR   then rerun the same `pftlab study` command: it resumes
# The checkpoints travel too, so every chunk of a cell comes from the same global model even when
# the resumed run is on another CPU (whose arithmetic can differ in the last bits).
set -euo pipefail
usage="usage: scripts/study_state.sh save STUDY_DIR FILE.tar.xz | load FILE.tar.xz STUDY_DIR"
case ${1:-} in
save)
  src=${2:?$usage} file=${3:?$usage}
  [[ -d $src/runs ]] || { echo "study_state: $src/runs not found: STUDY_DIR is the --out of pftlab study" >&2; exit 2; }
  parts=$(cd "$src" && for d in runs/*/seed*/.results; do
    [[ -d $d && ! -f $(dirname "$d")/manifest.json ]] && echo "$d"
  done | sort || true)
  [[ -n $parts ]] || { echo "study_state: no unfinished cell (runs/*/seed*/.results, no manifest.json) in $src" >&2; exit 2; }
  # Every global checkpoint but those of finished cells (a manifest.json): those cells are
  # published and never resumed, and each checkpoint is 1.6 MB in git's history per save.
  skip=()
  for r in "$src"/runs/*/seed*/run.json; do
    [[ -f $r && -f $(dirname "$r")/manifest.json ]] || continue
    ckpt=$(sed -n 's/.*"global_checkpoint": *"\([^"]*\)".*/\1/p' "$r")
    [[ -z $ckpt ]] || skip+=(--exclude="cache/global/${ckpt##*/}")
  done
  global=$([[ -d $src/cache/global ]] && echo cache/global || true)
  mkdir -p "$(dirname "$file")"
  # shellcheck disable=SC2086  # one path per line, none with spaces (runs/<benchmark>/seed<k>/.results)
  tar -C "$src" --exclude='*.tmp' "${skip[@]}" -cJf "$file.tmp" $parts $global
  mv "$file.tmp" "$file"
  n=$(tar -tJf "$file" | grep -c '^cache/global/.*\.safetensors$' || true)
  echo "study_state: saved $(echo "$parts" | wc -l) unfinished cell(s) and $n global checkpoint(s) of $src to $file ($(du -h "$file" | cut -f1))"
  ;;
load)
  file=${2:?$usage} dest=${3:?$usage}
  [[ -f $file ]] || { echo "study_state: $file not found" >&2; exit 2; }
  mkdir -p "$dest"
  tar -C "$dest" -xJf "$file"
  echo "study_state: loaded $file into $dest; rerun the same pftlab study command to resume"
  ;;
*)
  echo "$usage" >&2
  exit 2
  ;;
esac
