#!/usr/bin/env bash
# The wheels pftlab needs on the GPU machine that its image lacks (pydantic and its parts, tomli-w),
# for Python 3.12 on x86-64, into .whl/ (git-ignored via .git/info/exclude). Run here, where pip
# reaches PyPI; scripts/device_check.sh installs them there with --no-index.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || echo '/.devdata/' >> .git/info/exclude
mkdir -p .whl
PY=${PYTHON:-.venv/bin/python}
versions=$("$PY" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "tomli-w")))
PY
)
for spec in $versions; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
done
# the data the check reads (../shared does not travel): MNIST's training files and QMNIST, 11 MB
DATA=${PFTLAB_DATA:-../shared/data}
mkdir -p .devdata/mnist .devdata/qmnist
cp "$DATA"/mnist/train-*.gz .devdata/mnist/
cp "$DATA"/qmnist/qmnist-train-labels.tsv.gz .devdata/qmnist/
ls .whl .devdata/*
