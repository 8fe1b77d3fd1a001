#!/usr/bin/env bash
# The wheel on its own: build it (`python -m build --wheel`), install it into a fresh virtual environment
# outside the checkout (the CPU build of torch first, as the Makefile does), and run it from another folder:
# `pftlab --version`, `pftlab study --check` over every packaged benchmark config, a small `pftlab study --quick`
# and the bench's reference loop loaded from the wheel (FULL_BENCH=1: the whole `pftlab bench --quick`). Any failure stops the script with a non-zero exit; each step's time is printed.
#
#   bash scripts/check_wheel.sh            # what .ci/run calls (after `make test`, whose venv has `build`)
#   KEEP=1 bash scripts/check_wheel.sh     # keep the temporary folder (wheel, venv, outputs) for a look
#
# Variables, as in the Makefile: PYTHON (interpreter for the fresh venv, python3), TORCH (torch==2.13.0),
# TORCH_PIP_ARGS (e.g. "--index-url URL" of PyTorch's CPU wheels elsewhere than our machines); BUILD_PYTHON
# (the interpreter with `build` installed, default .venv/bin/python). Data: $PFTLAB_DATA if set, else the
# offline data folder ../shared/data beside the checkout when it exists (the quick runs below use scikit-learn's
# bundled digits and need none).
set -eEuo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH="${TORCH:-torch==2.13.0}"
TORCH_PIP_ARGS="${TORCH_PIP_ARGS:-}"
BUILD_PYTHON="${BUILD_PYTHON:-$REPO/.venv/bin/python}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/pftlab-wheel.XXXXXX")"
TMP="$(cd "$TMP" && pwd -P)"
case "$TMP/" in
"$REPO"/*) echo "check_wheel: the temporary folder $TMP is inside the checkout; set TMPDIR elsewhere" >&2 && exit 1 ;;
esac
if [[ "${KEEP:-0}" == 1 ]]; then
  echo "check_wheel: keeping $TMP"
else
  trap 'rm -rf "$TMP"' EXIT
fi

STEP=""
trap 'echo "check_wheel: FAILED at step: $STEP" >&2' ERR
TIMES=()
T_ALL=$(date +%s.%N)
step() { # step NAME COMMAND...: run it, print and record its wall time
  STEP="$1"
  shift
  echo "== $STEP"
  local t0
  t0=$(date +%s.%N)
  "$@"
  local dt
  dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "== $STEP: ${dt} s"
  TIMES+=("$(printf '%-34s %7s s' "$STEP" "$dt")")
}

"$BUILD_PYTHON" -m build --version >/dev/null 2>&1 || {
  echo "check_wheel: $BUILD_PYTHON has no 'build' module: run 'make install-test' (the test extra has it)" >&2
  exit 1
}

step "build the wheel" "$BUILD_PYTHON" -m build --wheel --outdir "$TMP/dist" "$REPO"
WHEELS=("$TMP"/dist/pftlab-*.whl)
[[ ${#WHEELS[@]} == 1 && -f "${WHEELS[0]}" ]] || {
  echo "check_wheel: expected one wheel in $TMP/dist, found: ${WHEELS[*]}" >&2
  exit 1
}
WHEEL="${WHEELS[0]}"
echo "wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

# What the checkout's files would otherwise give: the package data must be in the wheel itself.
N_CONFIGS=$(find "$REPO/configs/benchmarks" -maxdepth 1 -name '*.toml' | wc -l)
check_contents() {
  "$BUILD_PYTHON" - "$WHEEL" "$N_CONFIGS" <<'EOF'
import sys, zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
configs = [n for n in names if n.startswith("pftlab/_data/configs/benchmarks/") and n.endswith(".toml")]
want = int(sys.argv[2])
assert len(configs) == want, f"{len(configs)} benchmark configs in the wheel, {want} in the checkout"
for name in ("pftlab/_data/reference_loop.py", "pftlab/_data/configs/quickstart.toml", "pftlab/__init__.py"):
    assert name in names, f"{name} is not in the wheel"
print(f"wheel holds {len(configs)} benchmark configs, the quickstart config and the reference loop")
EOF
}
step "wheel contents" check_contents

step "fresh venv" "$PYTHON" -m venv "$TMP/venv"
VPY="$TMP/venv/bin/python"
# shellcheck disable=SC2086  # TORCH_PIP_ARGS is a list of pip options
step "install torch ($TORCH)" "$VPY" -m pip install --quiet --no-compile $TORCH_PIP_ARGS "$TORCH"
step "install the wheel" "$VPY" -m pip install --quiet --no-compile "$WHEEL"

# Run from a folder outside the checkout, with nothing pointing back into it.
mkdir -p "$TMP/work"
cd "$TMP/work"
unset PYTHONPATH
export PFTLAB_CACHE="$TMP/cache"
if [[ -z "${PFTLAB_DATA:-}" && -d "$REPO/../shared/data" ]]; then
  PFTLAB_DATA="$(cd "$REPO/../shared/data" && pwd)"
fi
if [[ -n "${PFTLAB_DATA:-}" ]]; then
  export PFTLAB_DATA
  echo "PFTLAB_DATA=$PFTLAB_DATA"
fi
PFTLAB="$TMP/venv/bin/pftlab"

check_installed() {
  local where version
  where=$("$VPY" -c 'import pftlab; print(pftlab.__file__)')
  case "$where" in
  "$TMP/venv/"*) ;;
  *) echo "check_wheel: pftlab imported from $where, not from the fresh venv" >&2 && return 1 ;;
  esac
  version=$("$PFTLAB" --version)
  echo "$version (from $where)"
  local want
  want=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/src/pftlab/__init__.py")
  [[ "$version" == "pftlab $want" ]] || {
    echo "check_wheel: '$version' but src/pftlab/__init__.py says $want" >&2
    return 1
  }
}
step "pftlab --version" check_installed

check_configs() { # every packaged benchmark config resolves (3 default seeds each); builds nothing
  local out
  out=$("$PFTLAB" study --quick --check --out "$TMP/study-check")
  echo "$out"
  [[ "$out" == *"study OK: $((N_CONFIGS * 3)) cells"* ]] || {
    echo "check_wheel: expected $((N_CONFIGS * 3)) cells from $N_CONFIGS packaged configs" >&2
    return 1
  }
}
step "pftlab study --check (all configs)" check_configs

run_study() {
  "$PFTLAB" study --quick --out "$TMP/study" --benchmarks digits-quick --seeds 0 --methods ft lp lp-ft --no-progress
  for f in table.md table.csv report.md; do
    [[ -s "$TMP/study/$f" ]] || {
      echo "check_wheel: the study wrote no $f" >&2
      return 1
    }
  done
  cat "$TMP/study/table.md"
}
step "pftlab study --quick" run_study

run_bench() {
  # the bench's reference loop is package data: load it from the installed wheel (the whole
  # `pftlab bench --quick` takes minutes and runs in the test suite already; FULL_BENCH=1 runs it here too)
  where=$("$VPY" -c "from pftlab.bench import reference_module; print(reference_module().__file__)")
  [[ "$where" == "$TMP/venv"/* ]] || {
    echo "check_wheel: the reference loop came from $where, not from the installed wheel" >&2
    return 1
  }
  "$PFTLAB" bench --help >/dev/null
  if [[ "${FULL_BENCH:-0}" == 1 ]]; then
    "$PFTLAB" bench --quick --out "$TMP/bench"
    [[ -s "$TMP/bench/bench.json" ]] || {
      echo "check_wheel: the bench wrote no bench.json" >&2
      return 1
    }
  fi
}
step "pftlab bench (reference loop from the wheel)" run_bench

trap - ERR
echo
echo "check_wheel: OK, the wheel runs on its own"
printf '%s\n' "${TIMES[@]}"
printf '%-34s %7s s\n' "total" "$(awk -v a="$T_ALL" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
