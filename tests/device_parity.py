"""Runs two train steps on N simulated CPU devices and saves loss and parameters.

  python tests/device_parity.py N OUT.npz

Used by tests/test_train.py in subprocesses (JAX reads the device count once, at
start), for each loss family: NT-Xent (SimCLR layout), hard contrastive with a
memory bank, MACL, and NT-Xent computed blockwise. The first step skips the logged
diagnostics (diagnose=False), as unlogged steps do; a second pair of steps from the
same start computes them both times, and NAME/diagnostics_change_params records
whether that changed any parameter (it must not).
"""

import os
import sys

os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={int(sys.argv[1])}"

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from contrastive import build  # noqa: E402
from contrastive import recipes  # noqa: E402
from contrastive import step as step_lib  # noqa: E402
from contrastive.data import pipeline  # noqa: E402
from contrastive.data import sources  # noqa: E402

VARIANTS = {
  "nt_xent": dict(name="contrastive", layout="simclr"),
  "hard_bank": dict(name="hard_contrastive", layout="memory_bank", num_hard=50),
  "macl": dict(name="macl", layout="simclr"),
  # NT-Xent over 12 x 12 tiles of the 32 x 32 similarity matrix (12 does not divide 32).
  "nt_xent_blockwise": dict(name="contrastive", layout="simclr", block_size=12),
}


def main():
  assert jax.device_count() == int(sys.argv[1]), jax.devices()
  # The test session's cache ($CONTRASTIVE_CACHE, tests/conftest.py): the variants whose
  # initial-state programs are the same (all but the memory bank's) compile theirs once.
  step_lib.enable_compilation_cache()
  source = sources.load("digits")
  out = {}
  for name, loss in VARIANTS.items():
    config = recipes.quickstart()
    config.model.encoder, config.model.out_dim = "convn", 32
    config.data.batch_size, config.data.augment, config.data.image_size = 16, "randbit", 28
    config.loss.update(loss)
    config.eval.online_probe = False  # the contrastive step alone (its stats NaN when skipped)
    mesh = build.make_mesh()
    data = pipeline.to_device(source.train, mesh=mesh)
    setup, _ = build.make_setup(config, mesh, data.num_examples)
    root = jax.random.key(0)
    step = step_lib.jit_train_step(setup)
    runs = []
    for diagnose_first in (False, True):
      state = step_lib.create_state(
        setup, jax.random.fold_in(root, 0), source.image_shape, len(source.train.labels)
      )
      state, first = step(state, data, root, diagnose=diagnose_first)
      state, metrics = step(state, data, root)
      runs.append((jax.device_get(state.params), first, metrics))
    (params, skipped, metrics), (logged_params, _, _) = runs
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), params, logged_params)
    out[f"{name}/diagnostics_change_params"] = np.asarray(any(jax.tree.leaves(changed)))
    out[f"{name}/skipped_stats_nan"] = np.asarray(
      all(
        np.isnan(v) for k, v in skipped.items() if k not in ("loss", "learning_rate", "grad_norm")
      )
    )
    out[f"{name}/logged_stats_finite"] = np.asarray(
      all(np.isfinite(v) for v in jax.device_get(metrics).values())
    )
    out[f"{name}/loss"] = np.asarray(metrics["loss"])
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in leaves:
      out[f"{name}/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    if state.bank is not None:
      out[f"{name}/bank"] = np.asarray(state.bank)
  np.savez(sys.argv[2], **out)


if __name__ == "__main__":
  main()
