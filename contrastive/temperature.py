"""Every way a run sets the temperature, in one place.

A run's tau is set in exactly one of four ways, its *mode* (`mode`; the config's
checks allow no two at once, `check`):
  "fixed": loss.temperature, or a population member's (the step's `fixed` argument,
    vmapped over the members: `population.train_population`);
  "schedule": a function of the step, loss.temperature_schedule "cosine" (Kukleva et
    al.) or "linear" (a warm start from tau_max);
  "learned": one global log tau, a parameter trained by Adam on the loss's gradient
    (loss.temperature_learned="global", as CLIP's logit scale);
  "per_sample": tau_i per training instance, moved by iSogCLR's rule
    (loss.temperature_learned="per_sample").
`Temperature.value` gives the step the tau of its mode; `Temperature.update` moves
the learned ones after the step. Whatever the mode, a loss may adapt the tau it is
given to the batch before applying it (MACL: `objective.LossSpec.applied_temperature`);
the logs' `temperature` is the tau the loss applied, `objective.diagnostics`'.
`describe` says the mode in the run's start line; `results` gives what a learned tau
ended at, for results.json.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from contrastive import config
from contrastive import numerics
from contrastive import objective
from contrastive.kernels import infonce

SCHEDULES = ("constant", "cosine", "linear")
LEARNED = ("none", "global", "per_sample")
MODES = ("fixed", "schedule", "learned", "per_sample")
# The layouts a per-sample temperature serves (one tau_i per anchor, an instance's
# two views sharing it); the losses, those whose spec says so.
PER_SAMPLE_LAYOUTS = ("simclr", "memory_bank")
# iSogCLR's clip on the per-sample temperature gradient (their code's grad_clip).
PER_SAMPLE_GRADIENT_CLIP = 3.0
# The step metric holding every per-sample temperature: logged as a histogram.
SAMPLE_TEMPERATURES = "sample_temperatures"


def mode(cfg) -> str:
  """The loss config's way of setting tau, one of `MODES`."""
  learned = cfg.get("temperature_learned", "none")
  if learned == "per_sample":
    return "per_sample"
  if learned == "global":
    return "learned"
  if cfg.get("temperature_schedule", "constant") != "constant":
    return "schedule"
  return "fixed"


def schedule(cfg, steps_per_epoch: int):
  """The loss config's temperature as a function of the (traced) step, or None for a
  constant `cfg.temperature` (`cfg.temperature_schedule`).

  "cosine" is Kukleva et al.'s schedule (ICLR 2023; their code's
  `min_tau + 0.5 (max_tau - min_tau) (1 + cos(pi epoch / t_max))`), with the epoch
  counted continuously from 0 here (step / steps_per_epoch; theirs steps once per
  epoch, counted from 1): tau_max at step 0, tau_min after the half period, tau_max
  again after a whole one. "linear" falls from tau_max to `cfg.temperature` over
  `cfg.temperature_warm_epochs`, then stays. Both are functions of the step alone,
  so a resumed run continues the schedule exactly.
  """
  name = cfg.temperature_schedule
  if name == "constant":
    return None
  low, high = cfg.temperature_min, cfg.temperature_max

  def epoch(step):
    return jnp.asarray(step, jnp.float32) / steps_per_epoch

  if name == "cosine":
    half = cfg.temperature_half_period_epochs
    return lambda step: low + 0.5 * (high - low) * (1 + jnp.cos(jnp.pi * epoch(step) / half))
  if name == "linear":
    warm, final = cfg.temperature_warm_epochs, cfg.temperature
    return lambda step: high + (final - high) * jnp.clip(epoch(step) / warm, 0.0, 1.0)
  raise ValueError(f"Unknown temperature schedule {name!r}; valid: {SCHEDULES}.")


@dataclasses.dataclass(frozen=True)
class Temperature:
  """How one run sets tau: its mode and what that mode needs, built by `create`."""

  mode: str
  cfg: Any  # the loss config
  schedule: Any = None  # step -> tau ("schedule")
  tx: Any = None  # log tau's optimizer ("learned")

  def init(self, num_train: int) -> dict:
    """The train state's temperature fields at step 0: `log_temperature` and
    `temperature_opt_state` ("learned"), `sample_temperature` ("per_sample",
    `init_sample_temperatures`); None where the mode has none."""
    fields = dict(log_temperature=None, temperature_opt_state=None, sample_temperature=None)
    if self.mode == "learned":
      log_tau = jnp.log(jnp.asarray(self.cfg.temperature, jnp.float32))
      fields.update(log_temperature=log_tau, temperature_opt_state=self.tx.init(log_tau))
    elif self.mode == "per_sample":
      fields["sample_temperature"] = init_sample_temperatures(self.cfg, num_train)
    return fields

  def value(self, state, *, fixed, log_tau, indices):
    """The tau the loss takes this step, by the mode: `fixed` (a scalar: the config's
    or a population member's), the schedule at `state.step`, exp(`log_tau`) (the
    learned parameter, passed in so the caller can differentiate it), or the batch's
    per-sample tau_i, [2B] in the order `objective.layout` gives its anchors (both
    views of instance i: tau_i)."""
    if self.mode == "schedule":
      return self.schedule(state.step)
    if self.mode == "learned":
      return jnp.exp(log_tau)
    if self.mode == "per_sample":
      tau = state.sample_temperature["tau"][indices]
      return jnp.concatenate([tau, tau])
    return fixed

  def update(self, state, tau_grad, z1, z2, *, indices) -> tuple[dict, dict]:
    """The temperature fields after this step's update, and the step's metrics of it.

    "learned": an Adam step of log tau on `tau_grad` (the loss's gradient w.r.t. log
    tau), clipped to [log temperature_min, log temperature_max]; "per_sample":
    `update_sample_temperatures` on the batch (with the bank before it moves: the
    negatives the loss saw), its mean, spread and every tau_i (a histogram at logged
    steps); the other modes: unchanged, no metrics.
    """
    if self.mode == "learned":
      step, opt_state = self.tx.update(tau_grad, state.temperature_opt_state, state.log_temperature)
      log_tau = clip_log_temperature(self.cfg, state.log_temperature + step)
      return dict(log_temperature=log_tau, temperature_opt_state=opt_state), {}
    if self.mode == "per_sample":
      sample = update_sample_temperatures(
        self.cfg, state.sample_temperature, z1, z2, indices=indices, bank=state.bank
      )
      metrics = {
        "sample_temperature_mean": jnp.mean(sample["tau"]),
        "sample_temperature_std": jnp.std(sample["tau"]),
        SAMPLE_TEMPERATURES: sample["tau"],
      }
      return dict(sample_temperature=sample), metrics
    return {}, {}

  def describe(self, fixed=None) -> str:
    """The mode for the run's start line: "0.2" (or a population's "0.1, 0.2"),
    "cosine 0.1..1", "linear 1 -> 0.2", "learned from 0.2", "per sample from 0.1"."""
    cfg = self.cfg
    if self.mode == "schedule" and cfg.temperature_schedule == "cosine":
      return f"cosine {cfg.temperature_min:g}..{cfg.temperature_max:g}"
    if self.mode == "schedule":
      return f"linear {cfg.temperature_max:g} -> {cfg.temperature:g}"
    if self.mode == "learned":
      return f"learned from {cfg.temperature:g}"
    if self.mode == "per_sample":
      return f"per sample from {cfg.temperature:g}"
    return ", ".join(f"{t:g}" for t in (fixed if fixed is not None else [cfg.temperature]))


def create(cfg, steps_per_epoch: int) -> Temperature:
  """The `Temperature` of loss config `cfg` (a run of `steps_per_epoch` steps an epoch)."""
  m = mode(cfg)
  tx = optax.adam(cfg.temperature_learning_rate) if m == "learned" else None
  return Temperature(m, cfg, schedule=schedule(cfg, steps_per_epoch), tx=tx)


def results(state) -> dict:
  """The learned temperatures a state ends with, for results.json: the global one
  ("learned_temperature"), or the per-sample ones' distribution ("sample_temperature":
  mean, std, min, 10/50/90th percentiles, max); {} where tau is not learned."""
  if state.log_temperature is not None:
    return {"learned_temperature": float(np.exp(np.asarray(state.log_temperature)))}
  if state.sample_temperature is None:
    return {}
  tau = np.asarray(state.sample_temperature["tau"], np.float64)
  p10, p50, p90 = np.percentile(tau, [10, 50, 90])
  stats = dict(mean=tau.mean(), std=tau.std(), min=tau.min(), p10=p10, p50=p50, p90=p90,
               max=tau.max())  # fmt: skip
  return {"sample_temperature": {k: float(v) for k, v in stats.items()}}


def init_sample_temperatures(cfg, num_train: int) -> dict:
  """A per-sample temperature's state, a row per training instance like the memory
  bank: tau_i (from loss.temperature), the momentum of its updates, and log s_i, the
  moving estimate of g_i (-inf: unvisited)."""
  return {
    "tau": jnp.full((num_train,), cfg.temperature, jnp.float32),
    "momentum": jnp.zeros((num_train,), jnp.float32),
    "log_s": jnp.full((num_train,), -jnp.inf, jnp.float32),
  }


def clip_log_temperature(cfg, log_tau):
  """A learned log-temperature held in [log temperature_min, log temperature_max]."""
  return jnp.clip(log_tau, jnp.log(cfg.temperature_min), jnp.log(cfg.temperature_max))


def isogclr_gradient(neg, neg_mask, *, temperature, rho, log_s=None, gamma=1.0):
  """The gradient of iSogCLR's per-sample temperature objective, and its estimate s.

  Anchor i's temperature tau_i minimises F_i(tau) = tau (log g_i(tau) + rho), with
  g_i(tau) = mean_{k valid} exp(s_ik / tau) (the dual of a KL-constrained DRO over the
  negatives, radius rho). dF_i/dtau = log g_i + rho - mean_k w_ik s_ik / tau, with
  w_ik = exp(s_ik / tau) / g_i: that is rho - KL(softmax_k(s_ik / tau) || uniform), so
  tau_i settles where its negatives' weights are rho nats from uniform (a larger rho,
  a lower tau_i). iSogCLR replaces g_i by a moving average over the
  visits of instance i, s_i = (1 - gamma) s_i + gamma g_i (s_i = g_i on the first
  visit, and always for gamma = 1, where this is exactly dF_i/dtau).

  Args:
    neg: [N, K] negative similarities; neg_mask: [N, K] bool or None.
    temperature: [N] (or a scalar) tau_i > 0.
    rho: the DRO radius (iSogCLR's unimodal default 0.4).
    log_s: [N] log s_i before this batch, -inf where never visited; None: g_i.
    gamma: the moving average's weight on this batch.

  Returns:
    (dF/dtau [N], log s_i after this batch [N]); in log space, so finite down to
    tau = 0.01 with s_ik = 1, where exp(s / tau) overflows float32.

  References:
    Qiu et al., "Not All Semantics are Created Equal: Contrastive Self-supervised
    Learning with Automatic Temperature Individualization", ICML 2023, Eq. 5 and
    their code's SogCLR_DRO_Loss.
  """
  neg = numerics.as_compute(neg)
  mask = jnp.ones(neg.shape, bool) if neg_mask is None else jnp.asarray(neg_mask, bool)
  t = infonce.per_anchor(temperature, neg.dtype)
  x = jnp.where(mask, neg / t, -jnp.inf)
  count = jnp.maximum(jnp.sum(mask, axis=-1), 1)
  log_g = jax.nn.logsumexp(x, axis=-1) - jnp.log(count)
  if log_s is not None:
    mixed = jnp.logaddexp(jnp.log1p(-gamma) + log_s, jnp.log(gamma) + log_g) if gamma < 1 else log_g
    log_g = jnp.where(jnp.isfinite(log_s), mixed, log_g)
  weights = jnp.exp(x - log_g[:, None])
  grad = log_g + rho - jnp.sum(jnp.where(mask, weights * x, 0.0), axis=-1) / count
  return grad, log_g


def update_sample_temperatures(cfg, sample: dict, z1, z2, *, indices, bank) -> dict:
  """iSogCLR's step on the batch's per-sample temperatures (Qiu et al., ICML 2023).

  For each anchor, the gradient of F(tau) = tau (log s + rho) (`isogclr_gradient`, s
  the moving estimate with weight cfg.temperature_gamma); an instance's two anchors
  are averaged (and their s), clipped to +-PER_SAMPLE_GRADIENT_CLIP, folded into a
  momentum u = (1 - beta) u + beta grad (beta = cfg.temperature_momentum), and
  tau_i <- clip(tau_i - eta u, temperature_min, temperature_max), eta =
  cfg.temperature_sample_learning_rate: their code's `SogCLR_DRO_Loss` update. No
  gradient reaches the network from here.
  """
  z1, z2 = jax.lax.stop_gradient(z1), jax.lax.stop_gradient(z2)
  _, neg, mask = objective.layout(cfg.layout, z1, z2, bank, indices)
  log_s = sample["log_s"][indices]
  tau = sample["tau"][indices]
  grad, log_s_new = isogclr_gradient(
    neg,
    mask,
    temperature=jnp.concatenate([tau, tau]),
    rho=cfg.temperature_rho,
    log_s=jnp.concatenate([log_s, log_s]),
    gamma=cfg.temperature_gamma,
  )
  b = indices.shape[0]
  limit = PER_SAMPLE_GRADIENT_CLIP
  grad = jnp.clip((grad[:b] + grad[b:]) / 2, -limit, limit)
  beta = cfg.temperature_momentum
  momentum = (1 - beta) * sample["momentum"][indices] + beta * grad
  tau = tau - cfg.temperature_sample_learning_rate * momentum
  tau = jnp.clip(tau, cfg.temperature_min, cfg.temperature_max)
  log_s = jnp.logaddexp(log_s_new[:b], log_s_new[b:]) - jnp.log(2.0)  # (s1 + s2) / 2
  return {
    "tau": sample["tau"].at[indices].set(tau),
    "momentum": sample["momentum"].at[indices].set(momentum),
    "log_s": sample["log_s"].at[indices].set(log_s),
  }


# ----------------------------------------------------------------------------------
# The config's checks of the temperature keys.


def check(cfg, *, population: bool) -> None:
  """Raises `config.ConfigError` where the loss config's temperature keys cannot work
  (`population`: the run is a temperature population, sweep.population)."""
  if not cfg.temperature > 0:
    raise config.ConfigError(f"loss.temperature must be > 0, got {cfg.temperature}.")
  config.check_choice("learned temperature (loss.temperature_learned)", cfg.temperature_learned,
                      LEARNED)  # fmt: skip
  config.check_choice("temperature schedule (loss.temperature_schedule)",
                      cfg.temperature_schedule, SCHEDULES)  # fmt: skip
  learned = cfg.temperature_learned != "none"
  scheduled = cfg.temperature_schedule != "constant"
  if learned and scheduled:
    raise config.ConfigError(
      "loss.temperature_learned and loss.temperature_schedule both set tau; keep one "
      "(loss.temperature_schedule='constant' or loss.temperature_learned='none')."
    )
  if (learned or scheduled) and population:
    what = "learned" if learned else f"{cfg.temperature_schedule!r} temperature schedule"
    raise config.ConfigError(
      f"sweep.population trains members that differ in loss.temperature, which a {what} "
      f"{'temperature ' if learned else ''}replaces; set sweep.population=False."
    )
  if learned:
    if not 0 < cfg.temperature_min <= cfg.temperature <= cfg.temperature_max:
      raise config.ConfigError(
        f"a learned temperature starts at loss.temperature={cfg.temperature} inside "
        f"[loss.temperature_min, loss.temperature_max] = [{cfg.temperature_min}, "
        f"{cfg.temperature_max}]; change one of them."
      )
    if not cfg.temperature_learning_rate > 0:
      raise config.ConfigError(
        f"loss.temperature_learning_rate must be > 0, got {cfg.temperature_learning_rate}."
      )
  if cfg.temperature_learned == "per_sample":
    _check_per_sample(cfg)
  if not scheduled:
    return
  if not 0 < cfg.temperature_min <= cfg.temperature_max:
    raise config.ConfigError(
      f"loss.temperature_min and loss.temperature_max must satisfy 0 < min <= max, got "
      f"{cfg.temperature_min} and {cfg.temperature_max}."
    )
  key = {"cosine": "temperature_half_period_epochs", "linear": "temperature_warm_epochs"}[
    cfg.temperature_schedule
  ]
  if not cfg[key] > 0:
    raise config.ConfigError(f"loss.{key} must be > 0, got {cfg[key]}.")


def _check_per_sample(cfg) -> None:
  served = tuple(name for name, s in objective.SPECS.items() if s.per_sample_temperature)
  if cfg.name not in served or cfg.layout not in PER_SAMPLE_LAYOUTS:
    raise config.ConfigError(
      f"a per-sample temperature serves loss.name in {served} with loss.layout in "
      f"{PER_SAMPLE_LAYOUTS}, not {cfg.name!r} with {cfg.layout!r}; change them or set "
      "loss.temperature_learned='global'."
    )
  if cfg.block_size is not None:
    raise config.ConfigError(
      "a per-sample temperature needs the dense kernels; unset loss.block_size."
    )
  ranges = {
    "loss.temperature_sample_learning_rate": (cfg.temperature_sample_learning_rate, "> 0"),
    "loss.temperature_gamma": (cfg.temperature_gamma, "in (0, 1]"),
    "loss.temperature_momentum": (cfg.temperature_momentum, "in (0, 1]"),
  }
  for key, (value, want) in ranges.items():
    ok = value > 0 if want == "> 0" else 0 < value <= 1
    if not ok:
      raise config.ConfigError(f"{key} must be {want}, got {value}.")
