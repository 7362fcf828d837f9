"""The tiled losses over a 4-device mesh against the same kernels without one.

  python tests/mesh_parity.py OUT.json

Run by tests/test_blockwise.py in a subprocess (JAX reads the device count once, at
start). For NT-Xent, the hard loss, MACL, the generalized logsumexp loss and the hard
loss against a memory bank, with
the views sharded over the mesh's "data" axis: the loss and its gradients with
respect to both views and the temperature, and a vmap over temperatures, against
the tiled kernel on unsharded views (itself checked against the dense kernels and
float64 in test_blockwise.py); and the shapes the tiled kernel saw on the mesh
(each device's own rows against all columns).
"""

import functools
import json
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from contrastive import blockwise  # noqa: E402
from contrastive import losses  # noqa: E402

N, D, BLOCK = 48, 16, 10  # 2N = 96 anchors, 24 rows a device, tiles that do not divide
SEEN = []


def _recording(kernel):
  @functools.wraps(kernel)
  def wrapped(rows, cols, *args, **kwargs):
    SEEN.append([rows.shape[0], cols.shape[0]])
    return kernel(rows, cols, *args, **kwargs)

  return wrapped


blockwise.row_logsumexp = _recording(blockwise.row_logsumexp)
blockwise.row_hard_logsumexp = _recording(blockwise.row_hard_logsumexp)

LOSSES = {
  "nt_xent": lambda a, b, t, **kw: losses.nt_xent(a, b, temperature=t, **kw),
  "hard": lambda a, b, t, **kw: losses.hard_nt_xent(a, b, temperature=t, num_hard=20, **kw),
  "macl": lambda a, b, t, **kw: losses.macl_nt_xent(a, b, temperature=t, alpha=0.5, **kw),
  "nt_xent_cross_view": lambda a, b, t, **kw: losses.nt_xent(
    a, b, temperature=t, layout="cross_view", **kw
  ),
  "logsumexp": lambda a, b, t, **kw: losses.generalized_contrastive_loss(
    a, b, distribution="logsumexp", weight=0.5, temperature=t, **kw
  ),
  # A memory bank of M = 70 entries, replicated; each device its rows against all.
  "bank_hard": lambda a, b, t, **kw: losses.hard_bank_nt_xent(
    a, b, BANK, INDICES, temperature=t, num_hard=20, **kw
  ),
}
_bank_rng = np.random.default_rng(1)
BANK = _bank_rng.normal(size=(70, D)).astype(np.float32)
INDICES = _bank_rng.choice(70, size=N, replace=False).astype(np.int32)


def main():
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  rng = np.random.default_rng(0)
  z1 = rng.normal(size=(N, D)).astype(np.float32)
  z2 = (z1 + 0.5 * rng.normal(size=z1.shape)).astype(np.float32)
  sharded = [jax.device_put(z, NamedSharding(mesh, P("data"))) for z in (z1, z2)]
  out = {}
  for name, loss in LOSSES.items():
    plain = jax.jit(
      jax.value_and_grad(functools.partial(loss, block_size=BLOCK), argnums=(0, 1, 2))
    )
    tiled = jax.jit(
      jax.value_and_grad(functools.partial(loss, block_size=BLOCK, mesh=mesh), argnums=(0, 1, 2))
    )
    SEEN.clear()
    jax.block_until_ready(tiled(*sharded, 0.2))  # traces the mesh's program
    shapes = list(SEEN)
    errors = []
    for tau in (0.01, 0.2, 1.0):
      (v_want, g_want), (v_got, g_got) = plain(z1, z2, tau), tiled(*sharded, tau)
      errors.append(abs(float(v_got) - float(v_want)) / abs(float(v_want)))
      for a, b in zip(g_got, g_want, strict=True):
        errors.append(float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(np.asarray(b)))))
    if name not in ("nt_xent", "hard"):  # a vmap over tau: once per kernel suffices
      out[name] = {"max_error": max(errors), "kernel_shapes": shapes}
      continue
    taus = jnp.asarray([0.1, 0.5])
    over = jax.jit(jax.vmap(functools.partial(loss, block_size=BLOCK, mesh=mesh),
                            in_axes=(None, None, 0)))  # fmt: skip
    each = [float(loss(z1, z2, t, block_size=BLOCK)) for t in (0.1, 0.5)]
    errors.append(float(np.max(np.abs(np.asarray(over(*sharded, taus)) - each))))
    out[name] = {"max_error": max(errors), "kernel_shapes": shapes}
  with open(sys.argv[1], "w") as f:
    json.dump(out, f)


if __name__ == "__main__":
  main()
