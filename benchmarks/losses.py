"""Forward + backward time of the loss kernels against plain jnp and optax.

  python benchmarks/losses.py [--sizes 512,2048,8192] [--repeats 7] [--json out.json]

For 2N in --sizes views of dimension D = 128 (N positive pairs), times the gradient
of the mean loss with respect to both views, jitted, for:
  * NT-Xent: `losses.nt_xent`, a plain jnp implementation (diagonal masked to -inf,
    cross-entropy on log_softmax) and `optax.ntxent`;
  * hard contrastive (alpha = 0.0819 of the 2N-2 negatives, the paper's fraction):
    `losses.hard_contrastive_loss` on `pairs.simclr_pairs`, and a plain jnp
    implementation that thresholds each row at its sorted alpha-quantile;
  * Chen et al.'s generalized loss with the sliced Wasserstein term (Gaussian prior,
    lambda 1, no normalisation; one fixed key): `losses.generalized_contrastive_loss`
    (its sorts by `numerics.sort_columns`), and the official notebook's formula in
    plain jnp (`jnp.sort`).
Implementations are timed round-robin in one process, so they share the machine's
state; medians of --repeats runs after one warm-up, and their ratios, are printed.
"""

import argparse
import math
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402
from contrastive import losses  # noqa: E402
from contrastive import pairs  # noqa: E402
from contrastive.kernels import generalized  # noqa: E402

HARD_FRACTION = 0.0819
SWD_SEED = 0


def plain_nt_xent(z1, z2, temperature):
  """The textbook jnp NT-Xent: full logits, diagonal at -inf, cross-entropy."""
  z = jnp.concatenate([z1, z2])
  z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
  n2 = z.shape[0]
  logits = z @ z.T / temperature
  logits = jnp.where(jnp.eye(n2, dtype=bool), -jnp.inf, logits)
  labels = (jnp.arange(n2) + n2 // 2) % n2
  log_p = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=-1))


def optax_nt_xent(z1, z2, temperature):
  n = z1.shape[0]
  labels = jnp.concatenate([jnp.arange(n), jnp.arange(n)])
  return optax.ntxent(jnp.concatenate([z1, z2]), labels, temperature)


def ours_nt_xent(z1, z2, temperature):
  return losses.nt_xent(z1, z2, temperature=temperature)


def plain_hard(z1, z2, temperature):
  """Hard contrastive in plain jnp: keep negatives >= the row's alpha-quantile."""
  z = jnp.concatenate([z1, z2])
  z = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
  n2 = z.shape[0]
  sim = z @ z.T
  partner = (jnp.arange(n2) + n2 // 2) % n2
  is_neg = ~jnp.eye(n2, dtype=bool) & (jnp.arange(n2)[None, :] != partner[:, None])
  num_hard = math.ceil(round(HARD_FRACTION * (n2 - 2), 6))
  masked = jnp.where(is_neg, sim, -jnp.inf)
  s_alpha = -jnp.sort(-jax.lax.stop_gradient(masked), axis=-1)[:, num_hard - 1]
  keep = is_neg & (sim >= s_alpha[:, None])
  pos = jnp.take_along_axis(sim, partner[:, None], axis=-1)[:, 0]
  logits = jnp.where(keep, sim / temperature, -jnp.inf)
  lse = jnp.logaddexp(pos / temperature, jax.nn.logsumexp(logits, axis=-1))
  return jnp.mean(lse - pos / temperature)


def ours_hard(z1, z2, temperature):
  pos, neg, mask = pairs.simclr_pairs(z1, z2)
  num_hard = losses.resolve_num_hard(z1.shape[0] * 2 - 2, hard_fraction=HARD_FRACTION)
  return jnp.mean(
    losses.hard_contrastive_loss(
      pos, neg, temperature=temperature, num_hard=num_hard, neg_mask=mask
    )
  )


def plain_swd(z1, z2, temperature):
  """alignment + the sliced Wasserstein distance to Gaussian samples, in jnp as the
  official notebook writes it (`tf.sort` of both projections along the batch)."""
  del temperature
  h = jnp.concatenate([z1, z2])
  projection, prior = generalized.swd_draws(
    jax.random.key(SWD_SEED), h.shape, distribution="swd_gaussian", normalize=False
  )
  align = jnp.mean(jnp.square(z1 - z2)) / 2
  hw, pw = jnp.sort(h @ projection, axis=0), jnp.sort(prior @ projection, axis=0)
  return align + jnp.mean(jnp.square(pw - hw))


def ours_swd(z1, z2, temperature):
  del temperature
  return losses.generalized_contrastive_loss(
    z1, z2, distribution="swd_gaussian", weight=1.0, normalize=False,
    key=jax.random.key(SWD_SEED),
  )  # fmt: skip


GROUPS = {
  "nt_xent": {"ours": ours_nt_xent, "plain_jnp": plain_nt_xent, "optax": optax_nt_xent},
  "hard_contrastive": {"ours": ours_hard, "plain_jnp": plain_hard},
  "generalized_swd": {"ours": ours_swd, "plain_jnp": plain_swd},
}


def _fwd_bwd(fn):
  return jax.jit(jax.value_and_grad(lambda a, b: fn(a, b, 0.2), argnums=(0, 1)))


# optax.ntxent forms a [2N, 2N, D] float32 tensor for its cosine similarities;
# sizes where that exceeds this many bytes are skipped and reported as such.
OPTAX_MAX_BYTES = 4 * 2**30


def _time_round_robin(compiled, args, repeats):
  """Median seconds of each function, timed in turns so they share conditions."""
  times = {name: [] for name in compiled}
  for _ in range(repeats):
    for name, f in compiled.items():
      start = time.perf_counter()
      jax.block_until_ready(f(*args))
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def bench(sizes, repeats, dim=128):
  rows = []
  for two_n in sizes:
    key1, key2 = jax.random.split(jax.random.key(two_n))
    z1 = jax.random.normal(key1, (two_n // 2, dim))
    z2 = z1 + 0.3 * jax.random.normal(key2, (two_n // 2, dim))
    for group, impls in GROUPS.items():
      compiled = {name: _fwd_bwd(fn) for name, fn in impls.items()}
      # optax's multi-GB intermediates disturb whatever runs next, so it is timed
      # in a block of its own, after ours and plain jnp have been timed in turns.
      separate = {k: compiled.pop(k) for k in list(compiled) if k == "optax"}
      values = {name: float(f(z1, z2)[0]) for name, f in compiled.items()}
      med = _time_round_robin(compiled, (z1, z2), repeats)
      for name, f in separate.items():
        if 4 * two_n * two_n * dim > OPTAX_MAX_BYTES:
          med[name] = None
          continue
        values[name] = float(f(z1, z2)[0])
        med.update(_time_round_robin({name: f}, (z1, z2), repeats))
      for name, v in values.items():  # a speed-up that changes the loss is no speed-up
        if abs(v - values["ours"]) > 1e-4 * max(1.0, abs(values["ours"])):
          raise SystemExit(f"{group} 2N={two_n}: {name} gives {v}, ours {values['ours']}")
      row = {
        "loss": group,
        "2N": two_n,
        "median_ms": {k: None if v is None else round(v * 1e3, 2) for k, v in med.items()},
        "ratio_ours_to": {
          k: None if v is None else round(med["ours"] / v, 3) for k, v in med.items() if k != "ours"
        },
        "loss_values": values,
      }
      rows.append(row)
      cells = [
        f"{k}={'skipped (memory)' if v is None else f'{v:.2f} ms'}"
        for k, v in row["median_ms"].items()
      ]
      ratios = [
        f"ours/{k}={'-' if v is None else f'{v:.2f}'}" for k, v in row["ratio_ours_to"].items()
      ]
      print(f"{group:17s} 2N={two_n:5d}  " + "  ".join(cells + ratios), flush=True)
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="512,2048,8192")
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--json", default=None, help="also write the results here")
  args = parser.parse_args()
  common.check_repeats(parser, args.repeats)
  print(common.machine())
  rows = bench([int(s) for s in args.sizes.split(",")], args.repeats)
  common.write_json(args.json, {"machine": common.machine(), "rows": rows})


if __name__ == "__main__":
  main()
