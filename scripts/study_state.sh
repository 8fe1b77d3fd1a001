#!/usr/bin/env bash
# Carry an unfinished study across machines: what its unfinished cells have computed so far (each
# cell's .results/: sealed chunks of clients and finished baselines; a cell is unfinished while it
# has no manifest.json) and the global checkpoints
# they may start from (DIR/cache/global less those of finished cells), in one small tar.xz to
# commit. A session's machine, with runs/ on it, is not kept; a cell of mnist-writers takes longer
# than one session.
#   scripts/study_state.sh save STUDY_DIR FILE.tar.xz   (stop the study first: kill -STOP or let it end)
#   scripts/study_state.sh load FILE.tar.xz STUDY_DIR   then rerun the same `pftlab study` command: it resumes
#   scripts/study_state.sh watch PID SECONDS STUDY_DIR FILE.tar.xz [STUDY_DIR FILE.tar.xz ...]
#       while process PID runs (the study, or the script running several studies in sequence; start it
#       with setsid so it leads its own process group), every SECONDS: pause PID's process group
#       (SIGSTOP), save each STUDY_DIR that has an unfinished cell to its FILE, resume it (SIGCONT);
#       once PID has ended, save a last time and exit. A machine lost at a session's end then costs at
#       most SECONDS of compute (a lost session once cost four core-hours).
# The checkpoints travel too, so every chunk of a cell comes from the same global model even when
# the resumed run is on another CPU (whose arithmetic can differ in the last bits).
set -euo pipefail
usage="usage: scripts/study_state.sh save STUDY_DIR FILE.tar.xz | load FILE.tar.xz STUDY_DIR | watch PID SECONDS STUDY_DIR FILE.tar.xz [STUDY_DIR FILE.tar.xz ...]"
case ${1:-} in
watch)
  pid=${2:?$usage} every=${3:?$usage}
  shift 3
  [[ $pid =~ ^[0-9]+$ ]] || { echo "study_state: PID must be a process id, got '$pid'" >&2; exit 2; }
  [[ $every =~ ^[0-9]+$ ]] || { echo "study_state: SECONDS must be a whole number of seconds, got '$every'" >&2; exit 2; }
  (( $# > 0 && $# % 2 == 0 )) || { echo "$usage" >&2; exit 2; }
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ' || true)
  [[ -n $pgid ]] || { echo "study_state: no process $pid: PID is the running study (or the script that runs it)" >&2; exit 2; }
  [[ $pgid != "$(ps -o pgid= -p $$ | tr -d ' ')" ]] || {
    echo "study_state: process $pid is in this watch's own process group, which pausing it would pause too: start the study with setsid" >&2
    exit 2
  }
  pairs=("$@")
  log=$(mktemp)
  # Saves while the study is paused write to $log, printed once it runs again: a blocked stdout
  # (a pipe nobody reads, a paused terminal) must not hold the pause. A study with nothing
  # unfinished (between seeds, or done) is skipped: save says so and exits 2; any other failure is
  # said and makes the watch's last status 1.
  failed=0
  save_all() {
    local i rc
    : > "$log"
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
      [[ -d ${pairs[i]}/runs ]] || { echo "study_state: ${pairs[i]}/runs not there (yet): not saved" >> "$log"; continue; }
      rc=0
      bash "${BASH_SOURCE[0]}" save "${pairs[i]}" "${pairs[i + 1]}" >> "$log" 2>&1 || rc=$?
      if ((rc != 0 && rc != 2)); then echo "study_state: saving ${pairs[i]} failed (status $rc)" >> "$log"; failed=1; fi
    done
  }
  resume() { kill -CONT -- "-$pgid" 2>/dev/null || true; }
  # Whatever ends this watch, the study is never left paused: the EXIT trap resumes it (the save
  # runs in the background so that a TERM is acted on at once, not after the save), and a guard
  # outside this watch's process group resumes it should the watch be killed outright (SIGKILL).
  trap 'resume; rm -f "$log"' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  trap 'exit 129' HUP
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -CONT -- "-$2" 2>/dev/null' guard $$ "$pgid" \
    < /dev/null > /dev/null 2>&1 &
  echo "study_state: watching process $pid (group $pgid: $(ps -o args= -p "$pid" || true)), saving every $every s"
  while kill -0 "$pid" 2>/dev/null; do
    for ((waited = 0; waited < every; waited++)); do
      kill -0 "$pid" 2>/dev/null || break 2
      sleep 1
    done
    kill -STOP -- "-$pgid" 2>/dev/null || break
    save_all &  # a subshell: its failures are said in $log; only the last save sets the status
    wait $! || true
    resume
    cat "$log"
    echo "study_state: saved at $(date -u +%H:%M:%S) UTC"
  done
  save_all
  cat "$log"
  echo "study_state: process $pid has ended; last save done"
  exit $failed
  ;;
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
  # A temporary file of this save's own: two saves of one FILE at once (a watch and a save by hand)
  # must not write into the same one and publish each other's half-written bytes.
  tmp=$(mktemp --suffix=.tmp "$file.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  # shellcheck disable=SC2086  # one path per line, none with spaces (runs/<benchmark>/seed<k>/.results)
  tar -C "$src" --exclude='*.tmp' "${skip[@]}" -cJf "$tmp" $parts $global
  chmod 644 "$tmp"
  mv "$tmp" "$file"
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
