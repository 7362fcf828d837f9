#!/usr/bin/env bash
# The `medium` studies of issues 14 and 15 on one GPU, as several processes sharing it.
#
#   bash benchmarks/medium.sh OUT [LANES] [DEADLINE_S]
#
# Each of LANES processes runs the same sweep commands in turn (generalized_losses'
# selection stage, temperature_choice, then generalized_losses' test stage once the
# selection is complete); a sweep's runs are claimed by their directory's lock, so every
# run trains once and the GPU is shared by LANES runs at a time. At DEADLINE_S seconds
# (counted from the start) whatever still trains gets SIGTERM (it saves a checkpoint, so
# the same command on the same WORK resumes it); the reports are written from the
# finished runs and OUT/medium.tgz holds every study's directory without its
# checkpoints. Two lanes are enough on an H200: one ResNet-18 run fills it, and six
# trained no faster together than one alone (BENCHMARKS.md). SCALE and EXTRA
# (environment) change the scale and add config-argument overrides, e.g. SCALE=small
# EXTRA=,epochs=1 for a rehearsal on a CPU; WORK (default /tmp/medium) holds the runs.
set -u
out=${1:?usage: bash benchmarks/medium.sh OUT [LANES] [DEADLINE_S]}
lanes=${2:-2}
deadline=${3:-540}
scale=${SCALE:-medium}
extra=${EXTRA:-}
work=${WORK:-/tmp/medium}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$out" "$work"
cd "$(dirname "$0")/.."

echo "start $(date -u +%FT%TZ), $lanes lanes, deadline ${deadline} s, scale=$scale$extra"
python3 -c "import flax, jax, optax, orbax.checkpoint as o; print(jax.devices(), 'jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
# The data once, before the lanes (each would otherwise generate `objects` itself).
python3 -c "
from contrastive import recipes
from contrastive.data import sources
name = recipes.$scale().data.name
sources.load(name)
print('data ready:', name)
" || exit 1
echo "data at $SECONDS s"

study() {  # study NAME ARG DIR
  python3 run.py "--config=configs/experiments/$1.py:scale=$scale,train.tensorboard=False$extra$2" \
    --workdir="$work/$3"
}
selection_done() {
  python3 -c "
import json, sys
s = json.load(open('$work/gl/selection/sweep.json'))
sys.exit(len(s['runs']) != s['declared_runs'])" 2>/dev/null
}
lane() {
  study generalized_losses "" gl/selection
  study temperature_choice "" tc
  until selection_done; do sleep 5; done
  study generalized_losses ",selection=$work/gl/selection" gl
}

pids=()
for i in $(seq "$lanes"); do
  lane >"$work/lane$i.log" 2>&1 &
  pids+=($!)
  sleep 3
done
while ((SECONDS < deadline)); do
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  ((alive)) || break
  sleep 5
done
echo "lanes stopped at $SECONDS s"
kill "${pids[@]}" 2>/dev/null
pkill -TERM -f "run.py --config=configs/experiments" 2>/dev/null
sleep 3
pkill -KILL -f "run.py --config=configs/experiments" 2>/dev/null

for d in gl/selection tc gl; do
  [[ -f "$work/$d/sweep.json" ]] || continue
  python3 -c "from contrastive import experiments; print(experiments.write_report('$work/$d').paths['report'])" \
    >"$work/report_${d//\//_}.log" 2>&1 &
done
wait
for d in gl/selection tc gl; do
  [[ -f "$work/$d/sweep.json" ]] && python3 -c "
import json
s = json.load(open('$work/$d/sweep.json'))
print('$d', len(s['runs']), 'of', s['declared_runs'], 'runs finished')
for r in s['runs']:
  x = r['results']
  print(f\"  {r['name']}: linear {x['linear_accuracy']:.4f} knn {x['knn_accuracy']:.4f} wall {x['wall_time_s']} s\")"
done
tar czf "$out/medium.tgz" --exclude=checkpoints --exclude=populations -C "$work" .
echo "done at $SECONDS s"
