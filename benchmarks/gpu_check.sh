#!/usr/bin/env bash
# Every CUDA test and benchmark in one go, for a machine with an NVIDIA GPU and nvcc:
# builds nerfacc's extension (cached by torch after the first time), runs the tests that
# skip without a GPU, then the CUDA benchmarks. Prints what it runs; exits non-zero if a
# test fails.
#     bash benchmarks/gpu_check.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD/server${PYTHONPATH:+:$PYTHONPATH}

$PY - <<'PY'
import time, torch
assert torch.cuda.is_available(), "no CUDA device: nothing to check here"
print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))
start = time.perf_counter()
from nerfacc.cuda import _backend
assert _backend._C is not None, "nerfacc's CUDA extension did not build (is nvcc on PATH?)"
print(f"nerfacc extension ready in {time.perf_counter() - start:.1f} s")
PY

echo "== CUDA tests =="
$PY -m pytest -q -p no:cacheprovider -rs \
    tests/distill/test_field_and_render.py tests/distill/test_distiller.py tests/prior/test_cuda.py \
    tests/prior/test_loading.py -k "cuda or nerfacc"

echo "== CUDA benchmarks =="
$PY benchmarks/bench_prior.py
$PY benchmarks/bench_distill.py --fit --preset preview --oracle head --device cuda
$PY benchmarks/bench_distill.py --fit --preset standard --oracle head --device cuda
