#!/usr/bin/env bash
# The GPU check of pftlab in one script (issue #22): under 8 minutes on one H200. Prepared here with
# scripts/device_wheels.sh; on the device machine run from the repository root with `carry` = .whl
# and .devdata. Writes $OUT/device_check.json (and logs). `DEVICE=cpu QUICK=1` rehearses it on a CPU.
#   1. the tests marked `device` on $DEVICE
#   2. the quickstart (tiny) on $DEVICE against the CPU: summary within tolerance
#   3. pftlab bench --precision bf16 / tf32 --device $DEVICE (fp32 against each, same work)
#   4. mnist-writers seed 0, all 14 methods, sampled evaluation, wall time; the batched engine against
#      the loop for FT; FT's training throughput against the device's matmul peak (bench's figures)
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
OUT=${OUT:-runs/device_check}
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import pydantic, tomli_w" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
[ -d .devdata ] && export PFTLAB_DATA=$PWD/.devdata
export PFTLAB_CACHE=$PWD/runs/device_check_cache
PY=${PY:-python3}
start=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - start )) s)"; }

step "device"
$PY - <<PY > "$OUT/device.json"
import json, torch
from pftlab.core.compute import resolve_device, device_name
d = resolve_device("$DEVICE")
print(json.dumps({"device": str(d), "name": device_name(d), "torch": torch.__version__}))
PY
cat "$OUT/device.json"

step "tests marked device"
PFTLAB_TEST_DEVICE=$DEVICE $PY -m pytest -q -p no:cacheprovider -m device tests 2>&1 | tail -5 | tee "$OUT/tests.log"
tests_rc=${PIPESTATUS[0]}

step "quickstart on $DEVICE against the CPU"
SETS=(--set federated.rounds=3 --set personalize.epochs=3 --set method.lp-ft.lp_epochs=1 --set data.num_clients=4 --no-progress)
$PY -m pftlab run configs/quickstart.toml "${SETS[@]}" --set 'runtime.device="cpu"' --out "$OUT/qs_cpu" >/dev/null
$PY -m pftlab run configs/quickstart.toml "${SETS[@]}" --set "runtime.device=\"$DEVICE\"" --out "$OUT/qs_dev" >/dev/null
$PY - "$OUT" <<'PY' > "$OUT/quickstart.json"
import json, sys
out = sys.argv[1]
a = json.load(open(f"{out}/qs_cpu/summary.json"))["methods"]
b = json.load(open(f"{out}/qs_dev/summary.json"))["methods"]
diff = max(abs(a[m][k] - b[m][k]) for m in a for k in a[m] if isinstance(a[m][k], (int, float)))
print(json.dumps({"max_abs_diff_points": round(diff, 3), "tolerance": 3.0, "ok": diff <= 3.0}))
PY
cat "$OUT/quickstart.json"

step "bench: precision on $DEVICE"
Q=$([ "$QUICK" = 1 ] && echo --quick)
$PY -m pftlab bench $Q --precision bf16 --device "$DEVICE" --out "$OUT/bench_bf16" | tee "$OUT/bench_bf16.md"
if [ "${DEVICE%%:*}" = cuda ]; then
  $PY -m pftlab bench $Q --precision tf32 --device "$DEVICE" --out "$OUT/bench_tf32" | tee "$OUT/bench_tf32.md"
fi

step "mnist-writers seed 0, all methods, on $DEVICE"
SIZE=$([ "$QUICK" = 1 ] && echo '--set data.writers=20')
t0=$(date +%s)
# the published cell's own config (all 14 methods); evaluation as `auto` chooses (sampled at this size)
$PY -m pftlab run docs/study/runs/mnist-writers/seed0/config.toml $SIZE --set "runtime.device=\"$DEVICE\"" \
  --no-progress --out "$OUT/mnist_writers" > "$OUT/mnist_writers.log" 2>&1
mw_rc=$?
mw_s=$(( $(date +%s) - t0 ))
tail -25 "$OUT/mnist_writers.log"

step "FT: batched engine against the loop, throughput against the matmul peak"
$PY - "$DEVICE" "$QUICK" <<'PY' > "$OUT/engine.json"
import json, sys, time, torch
from pftlab.bench import QUICK, WORKLOAD, _train_only, ft_flops_per_sample, matmul_peak
from pftlab.core.compute import Compute, resolve, using
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import from_dict
from pftlab.models import build_model
device, quick = sys.argv[1], sys.argv[2] == "1"
spec = QUICK["workload"] if quick else WORKLOAD
out = {}
for engine in ("loop", "batched"):
    cfg = from_dict({**spec, "runtime": {**spec["runtime"], "engine": engine, "batch_clients": 50}})
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    c = resolve(device, "fp32")
    with using(c):
        model = model.to(c.device)
        w = {k: v.to(c.device) for k, v in weights.items()}
        _train_only(model, w, fed, cfg, "ft")  # warm-up
        if c.device.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); _train_only(model, w, fed, cfg, "ft")
        if c.device.type == "cuda": torch.cuda.synchronize()
        out[f"ft_{engine}_s"] = round(time.perf_counter() - t, 3)
    n = sum(len(cl.train) for cl in fed.clients)
    flops = ft_flops_per_sample(build_model(cfg.model, fed.input_shape, fed.num_classes, 0), fed.input_shape, 32)
    out[f"ft_{engine}_gflops"] = round(flops * n * cfg.personalize.epochs / out[f"ft_{engine}_s"] / 1e9, 2)
with using(resolve(device, "fp32")):
    peak = matmul_peak()
out["matmul_peak_gflops_fp32"] = round(peak / 1e9, 1)
out["ft_fraction_of_peak"] = round(max(out["ft_loop_gflops"], out["ft_batched_gflops"]) * 1e9 / peak, 4)
out["batched_speedup_over_loop"] = round(out["ft_loop_s"] / out["ft_batched_s"], 3)
print(json.dumps(out))
PY
cat "$OUT/engine.json"

$PY - "$OUT" "$tests_rc" "$mw_rc" "$mw_s" "$(( $(date +%s) - start ))" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
load = lambda p: json.loads(p.read_text()) if p.is_file() else None
bench = {k: (load(out / f"bench_{k}" / "bench.json") or {}).get("precision") for k in ("bf16", "tf32")}
result = {
    "device": load(out / "device.json"), "tests_rc": int(sys.argv[2]),
    "quickstart": load(out / "quickstart.json"), "bench": bench,
    "mnist_writers": {"rc": int(sys.argv[3]), "wall_s": int(sys.argv[4]),
                      "run": load(out / "mnist_writers" / "run.json")},
    "engine": load(out / "engine.json"), "total_s": int(sys.argv[5]),
}
(out / "device_check.json").write_text(json.dumps(result, indent=1))
print(json.dumps({k: v for k, v in result.items() if k != "mnist_writers"}, indent=1)[:3000])
PY
