#!/usr/bin/env bash
# Issue 24's comparison on one machine: FT and LP-FT on mnist-writers seed 0 with the full matrix and
# sampled (the defaults), each method timed by its run.json; then (with --all) the whole sampled run
# of all 14 methods. The global checkpoint is trained once (cached) and not counted.
#   PFTLAB_DATA=../shared/data bash scripts/time_sampled_mnist_writers.sh OUT [--all]
set -euo pipefail
out=${1:?usage: time_sampled_mnist_writers.sh OUT [--all]}
config=configs/benchmarks/mnist-writers.toml
two='personalize.methods=["ft","lp-ft"]'
for mode in full sampled; do
  pftlab run "$config" --set "$two" --set "evaluate.mode=\"$mode\"" --set runtime.threads=2 --no-progress --out "$out/two-$mode"
done
if [[ "${2:-}" == "--all" ]]; then
  all=$(python - <<'PY'
import json, tomllib
from pathlib import Path
plan = Path("configs/all_methods.toml")
print(json.dumps(tomllib.loads(plan.read_text())["personalize"]["methods"]))
PY
)
  pftlab run "$config" --set "personalize.methods=$all" --set 'evaluate.mode="sampled"' --set runtime.threads=2 --no-progress --out "$out/all-sampled"
fi
python - "$out" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for run in sorted(out.iterdir()):
    if (run / "run.json").is_file():
        seconds = json.loads((run / "run.json").read_text())["seconds"]
        print(run.name, {k: round(v) for k, v in seconds.items()}, "total", round(sum(v for k, v in seconds.items() if k != "global")))
PY
