"""Helper for tests/test_sweep.py: a tau population against separate runs.

Usage: python tests/population_parity.py DTYPE STEPS LEARNING_RATE TAU,TAU,...
Prints a JSON line: the largest |population member - separate run| over all
parameters for each tau, and the smallest parameter difference between members.
Run with JAX_ENABLE_X64=1 for DTYPE float64.
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from contrastive import build  # noqa: E402
from contrastive import population  # noqa: E402
from contrastive import recipes  # noqa: E402
from contrastive import step as step_lib  # noqa: E402


def main(dtype, steps, learning_rate, taus):
  # The separate runs differ only in temperature, an argument of the compiled step:
  # the second and third load the first's program from the persistent cache.
  step_lib.enable_compilation_cache(tempfile.mkdtemp(prefix="population_parity_"))
  config = recipes.quickstart()
  config.data.update(name="digits", image_size=28, augment="randbit", batch_size=16)
  config.data.train_examples = 320
  config.model.update(encoder="convn", out_dim=32, dtype=dtype)
  config.optimizer.learning_rate = learning_rate
  run = build.build_run(config)
  states = population.stack_population(run.state, len(taus))
  step = population.jit_population_step(run.setup, jnp.asarray(taus))
  for _ in range(steps):
    states, _ = step(states, run.data.train, run.root)
  members = [jax.tree.map(lambda x, i=i: np.asarray(x[i]), states.params) for i in range(len(taus))]

  def max_diff(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)))

  to_separate = []
  for i, tau in enumerate(taus):
    config.loss.temperature = tau
    single = build.build_run(config)
    step_fn = step_lib.jit_train_step(single.setup)
    state = single.state
    for _ in range(steps):
      state, _ = step_fn(state, single.data.train, single.root)
    to_separate.append(max_diff(members[i], jax.tree.map(np.asarray, state.params)))
  between = min(max_diff(members[i], members[i + 1]) for i in range(len(taus) - 1))
  print(json.dumps({"to_separate": to_separate, "between_members": between}))


if __name__ == "__main__":
  main(
    sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), [float(t) for t in sys.argv[4].split(",")]
  )
