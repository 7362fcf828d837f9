"""Contrastive loss kernels: pure, jit-, grad- and vmap-compatible.

Two levels:

* Similarity level. `pos: [N]` holds each anchor's positive similarity s_ii,
  `neg: [N, K]` its candidate negative similarities s_ik, and the optional
  `neg_mask: [N, K]` (bool, False = not a negative of that anchor) says which of
  them count. Each kernel returns the per-anchor loss `[N]`; reduce it as you like.
  `contrastive.pairs` builds these arrays for SimCLR's in-batch layout, the
  cross-view layout and an NPID memory bank.
* Embedding level. `z1, z2: [N, D]` views, L2-normalised inside; each returns a
  scalar (`nt_xent`, `generalized_contrastive_loss`).

Hyperparameters are keyword-only. `temperature` may be a traced scalar, so an
analysis can `jax.vmap` a kernel over a temperature grid; a concrete one must be
> 0 (checked before any compute). The similarity-level contrastive kernels
(`contrastive_loss`, `hard_contrastive_loss`, `relative_penalty`) also take one
temperature per anchor, `[N]` (a learned per-sample temperature). Every kernel
computes in float32 (or float64 for float64 inputs) whatever its input dtype, and
every softmax-type kernel is max-shifted, so it is finite at temperature 0.01 with
similarities at exactly +1 and -1, in float32 and with bfloat16 inputs.

The kernels live a family a module in `contrastive.kernels`: `infonce` (the
contrastive loss, DCL, the hard and simple losses, the relative penalty), `views`
(NT-Xent, the hard loss and DCL on a batch's two views, dense or tiled), `macl`
(Huang et al.), `generalized` (Chen, Luo & Li) and `bank` (the contrastive and hard
losses against an NPID memory bank, dense or tiled). This module names every public
one (`losses.nt_xent`): the API to import.
"""

from contrastive.kernels.bank import bank_nt_xent
from contrastive.kernels.bank import hard_bank_nt_xent
from contrastive.kernels.generalized import GENERALIZED_DISTRIBUTIONS
from contrastive.kernels.generalized import generalized_contrastive_loss
from contrastive.kernels.generalized import sliced_wasserstein
from contrastive.kernels.generalized import swd_draws
from contrastive.kernels.infonce import DEFAULT_NUM_HARD
from contrastive.kernels.infonce import contrastive_loss
from contrastive.kernels.infonce import dcl_loss
from contrastive.kernels.infonce import hard_contrastive_loss
from contrastive.kernels.infonce import hard_simple_loss
from contrastive.kernels.infonce import relative_penalty
from contrastive.kernels.infonce import resolve_num_hard
from contrastive.kernels.infonce import simple_loss
from contrastive.kernels.macl import MACL_MIN_TEMPERATURE_RATIO
from contrastive.kernels.macl import MACL_SCHEDULES
from contrastive.kernels.macl import check_macl_schedule
from contrastive.kernels.macl import macl_loss
from contrastive.kernels.macl import macl_nt_xent
from contrastive.kernels.macl import macl_temperature
from contrastive.kernels.views import dcl
from contrastive.kernels.views import hard_nt_xent
from contrastive.kernels.views import nt_xent

__all__ = [
  "DEFAULT_NUM_HARD",
  "GENERALIZED_DISTRIBUTIONS",
  "MACL_MIN_TEMPERATURE_RATIO",
  "MACL_SCHEDULES",
  "bank_nt_xent",
  "check_macl_schedule",
  "contrastive_loss",
  "dcl",
  "dcl_loss",
  "generalized_contrastive_loss",
  "hard_bank_nt_xent",
  "hard_contrastive_loss",
  "hard_nt_xent",
  "hard_simple_loss",
  "macl_loss",
  "macl_nt_xent",
  "macl_temperature",
  "nt_xent",
  "relative_penalty",
  "resolve_num_hard",
  "simple_loss",
  "sliced_wasserstein",
  "swd_draws",
]
