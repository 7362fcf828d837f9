#!/usr/bin/env bash
# The rehearsed script for a lent GPU: every item in priority order, each writing under
# OUT and stopped before DEADLINE_S seconds (counted from the start) have passed.
#
#   bash benchmarks/gpu.sh OUT DEADLINE_S             # on the GPU machine
#   bash benchmarks/gpu.sh --dry-run OUT DEADLINE_S   # the same items, tiny, on a CPU
#
# Items, in priority order ((a) the performance figures, then (b) the studies):
#   train_step        ResNet-18 bfloat16 step at batch 1024: images/s and MFU
#                     (train_step.json), and beside it in one run eager and compiled
#                     PyTorch (peer_torch.json; skipped with a line where PyTorch is absent)
#   augment           augmentation's share of the step (augment.json)
#   blockwise_memory  nt_xent tiled at 2N = 1,048,576: peak device memory (blockwise_memory.json)
#   blockwise_speed   nt_xent tiled at 2N = 65,536 and 8,192: time per 2N^2 (blockwise_speed.json)
#   run30             one 30-epoch `medium` run: its wall against its training time (run30.json)
#   medium            the `medium` studies' missing runs, continuing from the committed
#                     results/medium/ (the generalized losses' test stage once their
#                     selection stage is complete; OUT/medium.tgz: unpack into results/medium/
#                     and run `python -m contrastive.results`; the test stage's report names
#                     WORK's selection: redraw it, training nothing, with `python run.py
#                     --config=configs/experiments/generalized_losses.py:scale=medium,selection=results/medium/generalized_losses
#                     --workdir=results/medium/generalized_losses_test`)
# ITEMS="train_step augment" runs only those. A training run that the deadline stops gets
# SIGTERM and saves a checkpoint; the same command resumes it. Everything an item prints
# goes to OUT/gpu.log, with each item's start, end and exit status. At most 8 files come
# back from a lent machine: OUT holds gpu.log and the 7 files named above.
#
# --dry-run: tiny sizes (a ConvN or a width-4 ResNet-18, a few steps, one seed, an epoch)
# on whatever JAX finds, under 10 minutes on 2 CPU cores; it logs what each item would
# run on a GPU. PYTHON (default python3) is the interpreter; WORK (default
# /tmp/contrastive-gpu-work, outside OUT so that only the 8 files come back) holds the runs.
set -u
dry=0
if [[ ${1:-} == --dry-run ]]; then
  dry=1
  shift
fi
out=${1:?usage: bash benchmarks/gpu.sh [--dry-run] OUT DEADLINE_S}
deadline=${2:?usage: bash benchmarks/gpu.sh [--dry-run] OUT DEADLINE_S}
py=${PYTHON:-python3}
items=${ITEMS:-train_step augment blockwise_memory blockwise_speed run30 medium}
cd "$(dirname "$0")/.."
if ! "$py" -c "import jax, contrastive" 2> /dev/null; then
  echo "error: $py cannot import jax and contrastive: activate the project's environment" \
    "(. .venv/bin/activate) or set PYTHON=/path/to/its/python, then rerun." >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=${WORK:-/tmp/contrastive-gpu-work}
mkdir -p "$work"
log=$out/gpu.log
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
# H100 / H200 dense bfloat16 peak (TFLOP/s) for the MFU.
peak=${PEAK_TFLOPS:-989}

say() { echo "[$SECONDS s] $*" | tee -a "$log"; }

# run NAME MIN_S CMD...: CMD under the time left (SIGTERM at the deadline less a reserve
# for packing, SIGKILL 30 s later); skipped when fewer than MIN_S seconds are left (status
# 1), else CMD's exit status.
reserve=30
run() {
  local name=$1 need=$2
  shift 2
  local left=$((deadline - SECONDS - reserve))
  if ((left < need)); then
    say "$name: skipped, ${left} s left (needs ${need})"
    return 1
  fi
  say "$name: $* (up to ${left} s)"
  timeout --signal=TERM --kill-after=30 "$left" "$@" >>"$log" 2>&1
  local rc=$?
  say "$name: exit $rc"
  return $rc
}

want() { [[ " $items " == *" $1 "* ]]; }

say "start $(date -u +%FT%TZ), deadline ${deadline} s, dry run: $dry, items: $items"
"$py" -c "import jax; print(jax.devices(), 'jax', jax.__version__)" >>"$log" 2>&1
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$log" 2>&1
fi

# The GPU's sizes; --dry-run replaces them with tiny ones below and logs these.
gpu_step_args=(--encoder resnet18 --dtype bfloat16 --batch 1024 --repeats 5 --peak_tflops "$peak")
gpu_peer_args=(--encoder resnet18 --dtype bfloat16 --batch 1024 --width 64 --repeats 5)
gpu_augment_args=(--batch 512 --repeats 5)
gpu_memory_cases=block4096:1048576
gpu_speed_args=(--size 65536 --blocks 4096 --repeats 5)
gpu_speed_small=(--size 8192 --blocks 4096 --repeats 5)
gpu_run30_args=(--config=configs/simclr_cifar10.py:dataset=objects --config.model.dtype=bfloat16
  --config.train.num_epochs=30 --config.train.tensorboard=False)
gpu_study_arg=scale=medium
if ((dry)); then
  {
    echo "on a GPU this script runs, in this order:"
    echo "  benchmarks/train_step.py ${gpu_step_args[*]}"
    echo "  benchmarks/peer_torch.py step ${gpu_peer_args[*]} --ours PYTHON (where PyTorch is installed)"
    echo "  benchmarks/augment.py ${gpu_augment_args[*]}"
    echo "  benchmarks/blockwise.py memory --cases $gpu_memory_cases"
    echo "  benchmarks/blockwise.py speed ${gpu_speed_args[*]}; then ${gpu_speed_small[*]}"
    echo "  run.py ${gpu_run30_args[*]}"
    echo "  run.py --config=configs/experiments/STUDY.py:$gpu_study_arg for each study, from results/medium/"
    echo "  run.py --config=configs/experiments/generalized_losses.py:$gpu_study_arg,selection=WORK/medium/generalized_losses (its test stage)"
  } | tee -a "$log"
  step_args=(--encoder convn --batch 8 --repeats 5)
  peer_args=(--encoder convn --batch 4 --width 4 --repeats 5 --steps 1)
  augment_args=(--batch 4 --width 4 --repeats 5 --setting 32x32)
  memory_cases=block64:1024
  speed_args=(--size 512 --blocks 128 --repeats 5)
  speed_small=(--size 128 --blocks 128 --repeats 5)
  run30_args=(--config=configs/quickstart.py --config.train.num_epochs=1
    --config.eval.linear_epochs=1 --config.eval.monitor_every=0)
  study_arg=scale=small,epochs=1
else
  step_args=("${gpu_step_args[@]}")
  peer_args=("${gpu_peer_args[@]}")
  augment_args=("${gpu_augment_args[@]}")
  memory_cases=$gpu_memory_cases
  speed_args=("${gpu_speed_args[@]}")
  speed_small=("${gpu_speed_small[@]}")
  run30_args=("${gpu_run30_args[@]}")
  study_arg=$gpu_study_arg
fi

if want train_step; then
  run train_step 60 "$py" benchmarks/train_step.py "${step_args[@]}" --json "$out/train_step.json"
  if "$py" -c "import torch" 2>/dev/null; then
    run peer_torch 60 "$py" benchmarks/peer_torch.py step "${peer_args[@]}" --ours "$py" \
      --json "$out/peer_torch.json"
  else
    say "peer_torch: skipped, PyTorch is not installed (pip install torch, or carry its wheel)"
  fi
fi
if want augment; then
  run augment 60 "$py" benchmarks/augment.py "${augment_args[@]}" --json "$out/augment.json"
fi
if want blockwise_memory; then
  run blockwise_memory 60 "$py" benchmarks/blockwise.py memory --cases "$memory_cases" \
    --json "$out/blockwise_memory.json"
fi
if want blockwise_speed; then
  run blockwise_speed 60 "$py" benchmarks/blockwise.py speed "${speed_args[@]}" \
    --json "$work/speed_large.json"
  run blockwise_speed 30 "$py" benchmarks/blockwise.py speed "${speed_small[@]}" \
    --json "$work/speed_small.json"
  "$py" - "$work/speed_large.json" "$work/speed_small.json" "$out/blockwise_speed.json" <<'EOF'
import json, os, sys
large, small, out = sys.argv[1:]
rows = {os.path.basename(p): json.load(open(p)) for p in (large, small) if os.path.exists(p)}
json.dump(rows, open(out, "w"), indent=1)
EOF
fi
if want run30; then
  rm -rf "$work/run30/results.json"
  run run30 120 "$py" run.py "${run30_args[@]}" --workdir="$work/run30"
  [[ -f $work/run30/results.json ]] && cp "$work/run30/results.json" "$out/run30.json"
fi
if want medium; then
  studies=(wang_liu_table1 generalized_losses temperature_choice macl local_separation randbit
    digits_on_images)
  tier=$([[ $study_arg == scale=small* ]] && echo small || echo medium)
  for s in "${studies[@]}" generalized_losses_test; do  # continue from what is committed
    if [[ -d results/$tier/$s && ! -d $work/medium/$s ]]; then
      mkdir -p "$work/medium"
      cp -r "results/$tier/$s" "$work/medium/$s"
      # The dry run rehearses training a study's missing runs: its copy of randbit loses
      # the 20-bit runs' results (seed 0), which it then trains (an epoch each).
      ((dry)) && [[ $s == randbit ]] && rm -f "$work/medium/$s"/*data.randbit_bits=20/results.json
    fi
  done
  for s in "${studies[@]}"; do
    # The dry run rehearses two: randbit (training) and the generalized losses' two stages.
    ((dry)) && [[ $s != randbit && $s != generalized_losses ]] && continue
    run "medium $s" 120 "$py" run.py "--config=configs/experiments/$s.py:$study_arg,train.tensorboard=False" \
      --workdir="$work/medium/$s" || continue
    if [[ $s == generalized_losses ]]; then  # its test stage, on the values it chose
      run "medium generalized_losses_test" 120 "$py" run.py \
        "--config=configs/experiments/$s.py:$study_arg,selection=$work/medium/$s,train.tensorboard=False" \
        --workdir="$work/medium/generalized_losses_test"
    fi
  done
  if [[ -d $work/medium ]]; then
    tar czf "$out/medium.tgz" --exclude=checkpoints --exclude=populations --exclude='*.lock' \
      --exclude=events -C "$work/medium" .
  fi
fi
say "done, $(find "$out" -maxdepth 1 -type f | wc -l) files in $out"
