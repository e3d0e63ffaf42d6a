#!/usr/bin/env bash
# Wheels of this project's packages that a bare GPU machine with torch lacks, for benchmarks/gpu.sh:
#   bash benchmarks/gpu_wheels.sh [PYVER]     # into a fresh .whl/ (add /.whl/ to .git/info/exclude)
# PYVER: the GPU machine's Python (default 3.12). Versions are this checkout's environment's
# (pip here must be able to reach a package index). imagecodecs (27 MB) is left out: it is
# optional (octseg reads LZW/Deflate TIFFs with Pillow without it).
set -eu
PYVER=${1:-3.12}
# the project's environment: its versions are the ones the wheels must have (a python3 without
# the packages would take the newest of each, e.g. omegaconf 2.4 with antlr 4.13, which hydra-core
# 1.3 cannot load: "Could not deserialize ATN with version 3 (expected 4)", seen on the H200)
PY=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
pkgs="monai pydicom pylibjpeg pylibjpeg-libjpeg pylibjpeg-rle pyjpegls highdicom albumentations
  albucore simsimd stringzilla pydantic pydantic_core annotated-types typing-inspection hydra-core
  omegaconf pingouin pandas-flavor"
get() {
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl "$1"
}
"$PY" -m pip --version >/dev/null || { echo "gpu_wheels.sh: $PY has no pip" >&2; exit 1; }
declare -A version
for p in $pkgs; do  # every package's version here, checked before .whl/ is touched
    version[$p]=$("$PY" -m pip show "$p" 2>/dev/null | sed -n 's/^Version: //p')
    [[ -n ${version[$p]} ]] || { echo "gpu_wheels.sh: $p is not installed for $PY (make setup, or PYTHON=...)" >&2; exit 1; }
done
rm -rf .whl  # two versions of one package would stop the install there
mkdir -p .whl
for p in $pkgs; do  # this environment's version (the newest if that version has no wheel for PYVER)
    get "$p==${version[$p]}" 2>/dev/null || { echo "$p ${version[$p]}: no wheel for $PYVER, taking the newest"; get "$p"; }
done
# omegaconf's parser runtime is published as a source archive only: build it (pure Python)
v=$("$PY" -m pip show antlr4-python3-runtime | sed -n 's/^Version: //p')
"$PY" -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==$v"
du -sh .whl
