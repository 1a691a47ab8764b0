#!/usr/bin/env bash
# All GPU measurements in one go (step limits sum to 570 s: fits in 10 minutes on one H200): run from the repository root as
#   bash benchmarks/gpu_all.sh [OUT_DIR]
# Writes OUT_DIR/*.json (default benchmarks/gpu-results) and prints the tables; paste the figures
# into benchmarks/RESULTS.md. Each step has its own time limit so one slow step cannot eat the rest.
# Few files come back from a device run: gpu.txt, logs.txt (every step's stderr) and one JSON per
# step, which each script rewrites after every case, so a step cut off by its limit keeps its figures.
# A dry run of the plumbing on a CPU: DEVICE=cpu EXTRA=--quick bash benchmarks/gpu_all.sh /tmp/dry
set -u
DEVICE="${DEVICE:-cuda}"
EXTRA="${EXTRA:-}"
OUT="${1:-${OUT:-benchmarks/gpu-results}}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-$(command -v python3 || command -v python)}"  # the GPU image's PyTorch is its python3
{ command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"; } | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
: > "$OUT/logs.txt"

step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2; shift 2
  echo "=== $name (limit ${limit}s)" | tee -a "$OUT/logs.txt"
  local start=$SECONDS
  timeout "$limit" "$@" 2>> "$OUT/logs.txt"; local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - start))s" | tee -a "$OUT/logs.txt"
  [ $rc -eq 0 ] || tail -5 "$OUT/logs.txt"
}

# 1. the device data path equals the CPU dataset on CUDA too, and train_sr trains from it (~25 s)
step 60 test_gpu_pipeline "$PY" -m pytest -q tests/test_gpu_pipeline.py
# 2. inference: fp32 eager / channels_last / pipeline, bf16 and fp16 autocast (~1 min), then
#    torch.compile at x4 on 256x256 (one compile per model, ~30-60 s each)
step 100 inference "$PY" benchmarks/bench_inference.py --device "$DEVICE" $EXTRA --scales 2 4 --sizes 128 256 \
  --modes eager channels_last pipeline bf16 fp16 --repeats 10 --json "$OUT/inference.json"
step 150 inference_compile "$PY" benchmarks/bench_inference.py --device "$DEVICE" $EXTRA --scales 4 --sizes 256 \
  --modes eager compile --repeats 10 --json "$OUT/inference_compile.json"
# 3. tiling: 4000x3000 tiled vs whole (the whole image fits in GPU memory); ~7 processes (~1.5 min)
step 120 tiling "$PY" benchmarks/bench_tiling.py --device "$DEVICE" $EXTRA --tile-sizes 256 512 --whole-large \
  --repeats 3 --json "$OUT/tiling.json"
# 4. training: SR (batch 16, gt 128) and DCGAN (batch 128) hfmagic loop vs bare, bf16 autocast; data
#    pipeline incl. the device-resident path vs the model's consumption (target >= 1.2x) and train_sr
#    fed by it (--data_on_device) (~2 min)
step 140 train "$PY" benchmarks/bench_train.py --device "$DEVICE" $EXTRA --mixed-precision bf16 --steps 20 \
  --json "$OUT/train.json"
ls -l "$OUT"
