"""Chen, Luo & Li's generalized contrastive loss (NeurIPS 2021): alignment + lambda x a
distribution-matching term (decoupled NT-Xent's log-sum-exp, or a sliced Wasserstein
distance to a prior)."""

import jax
import jax.numpy as jnp

from contrastive import blockwise
from contrastive import numerics
from contrastive import pairs

# Chen et al.'s distribution-matching terms: name -> (prior family, whether the
# prior samples are always L2-normalised).
GENERALIZED_DISTRIBUTIONS = {
  "logsumexp": (None, False),
  "swd_gaussian": ("normal", False),
  "swd_hypersphere": ("normal", True),
  "swd_hypercube": ("uniform", False),
}


def _logsumexp_distribution(h1, h2, temperature, block_size=None, mesh=None):
  # Official quirks: j runs over all 2n rows, i itself and its positive included
  # (no masking), and log(d) is subtracted (changes values, not gradients).
  h = jnp.concatenate([h1, h2], axis=0)
  if block_size is None:
    lse = jax.nn.logsumexp(h @ h.T / temperature, axis=-1)
  else:
    shift = jnp.zeros(h.shape[:1], h.dtype)
    lse = blockwise.views_logsumexp(
      h1, h2, shift, temperature, block_size=block_size, mask="all", mesh=mesh
    )
  return jnp.mean(lse - jnp.log(h.shape[-1]))


def swd_draws(key, shape, *, distribution, normalize):
  """The random projection and prior samples of the sliced Wasserstein term.

  Args:
    key: a PRNG key; drawn fresh for every call (a per-step key in training).
    shape: (2n, d), the shape of the stacked views.
    distribution: one of the "swd_*" names of `GENERALIZED_DISTRIBUTIONS`.
    normalize: the loss's `normalize` (the notebooks' `hidden_norm`). Quirk of the
      official code: when True, the prior samples are L2-normalised too, whatever
      the prior, so "swd_gaussian" with normalize=True equals "swd_hypersphere".

  Returns:
    projection: [d, d] random orthogonal matrix (as Keras' Orthogonal initializer).
    prior: [2n, d] prior samples: N(0, 1), or U(-1, 1) for the hypercube.
  """
  family, always_normalize = GENERALIZED_DISTRIBUTIONS[distribution]
  k_proj, k_prior = jax.random.split(key)
  d = shape[-1]
  projection = jax.nn.initializers.orthogonal()(k_proj, (d, d), jnp.float32)
  if family == "normal":
    prior = jax.random.normal(k_prior, shape, jnp.float32)
  else:
    prior = jax.random.uniform(k_prior, shape, jnp.float32, minval=-1.0, maxval=1.0)
  if normalize or always_normalize:
    prior = numerics.l2_normalize(prior)
  return projection, prior


def sliced_wasserstein(h, prior, projection) -> jax.Array:
  """Mean squared gap between sorted projections of `h` and of `prior`.

  Args:
    h: [B, d] samples; prior: [B, d] prior samples; projection: [d, d].

  Returns:
    Scalar: mean((sort(prior @ W) - sort(h @ W))^2), each projected dimension
    sorted across the batch.

  References:
    Chen, Luo & Li, NeurIPS 2021, Sec. 3 (`get_swd_loss` in the official notebook).
  """
  # In h's precision (float64 stays float64: the draws are float32 samples).
  h = numerics.as_compute(h)
  projection = jnp.asarray(projection, h.dtype)
  hw = numerics.sort_columns(h @ projection)
  pw = numerics.sort_columns(jnp.asarray(prior, h.dtype) @ projection)
  return jnp.mean(jnp.square(pw - hw))


def generalized_contrastive_loss(
  z1,
  z2,
  *,
  distribution,
  weight,
  temperature=1.0,
  normalize=True,
  key=None,
  scale=1.0,
  block_size=None,
  mesh=None,
) -> jax.Array:
  """Chen et al.'s generalized contrastive loss: alignment + weight * distribution.

  loss = scale * (L_align + weight * L_distribution), with the official notebooks'
  semantics, quirks included:
  * L_align = mean over all n*d elements of (h1 - h2)^2, divided by 2 (the mean
    over d makes `weight`'s meaning depend on the dimension);
  * "logsumexp" (decoupled NT-Xent): mean_i logsumexp_j(H_i . H_j / tau) - log(d)
    over H = concat(h1, h2), j over all 2n rows with no masking;
  * "swd_*": sliced Wasserstein distance from H to prior samples, projected by a
    fresh random orthogonal matrix (`swd_draws`, `sliced_wasserstein`).

  Args:
    z1: [n, d] first views.
    z2: [n, d] second views.
    distribution: "logsumexp", "swd_gaussian", "swd_hypersphere" or
      "swd_hypercube".
    weight: lambda, the distribution term's weight.
    temperature: tau of the logsumexp term (ignored by SWD).
    normalize: L2-normalise both views first (the notebooks' `hidden_norm`); the
      paper pairs the Gaussian and hypercube priors with False, the hypersphere
      with True.
    key: PRNG key, required by the SWD terms.
    scale: the notebooks' `loss_scaling`.
    block_size: for "logsumexp", None (dense) or the tile side of a blockwise
      computation (`contrastive.blockwise`; memory O(n d + block_size^2)). The SWD
      terms build no n x n matrix and ignore it.
    mesh: with block_size, as `nt_xent`.

  Returns:
    Scalar loss.

  References:
    Chen, Luo & Li, "Intriguing Properties of Contrastive Losses", NeurIPS 2021,
    Eqs. 2-4; SimCLR repository, colabs/intriguing_properties.
  """
  if distribution not in GENERALIZED_DISTRIBUTIONS:
    raise ValueError(
      f"Unknown distribution {distribution!r}; valid: {', '.join(GENERALIZED_DISTRIBUTIONS)}."
    )
  pairs.check_views(jnp.asarray(z1), jnp.asarray(z2))
  if normalize:
    h1, h2 = numerics.l2_normalize(z1), numerics.l2_normalize(z2)
  else:
    h1, h2 = numerics.as_compute(z1), numerics.as_compute(z2)
  align = jnp.mean(jnp.square(h1 - h2)) / 2
  if distribution == "logsumexp":
    numerics.check_positive("temperature", temperature)
    dist = _logsumexp_distribution(h1, h2, temperature, block_size, mesh)
  else:
    h = jnp.concatenate([h1, h2], axis=0)
    if key is None:
      raise ValueError(f"distribution {distribution!r} needs a PRNG key: pass key=.")
    projection, prior = swd_draws(key, h.shape, distribution=distribution, normalize=normalize)
    dist = sliced_wasserstein(h, prior, projection)
  return scale * (align + weight * dist)
