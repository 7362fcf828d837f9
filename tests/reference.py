"""Float64 NumPy references written directly from the papers' equations.

Deliberately naive (explicit loops over anchors and pairs, no max-shift: float64
holds exp(+-100), enough down to tau = 0.01 on similarities in [-1, 1]) and
independent of the package's code, so that a shared bug cannot hide.
"""

import math

import numpy as np


def _valid(neg, mask):
  return np.ones(neg.shape, bool) if mask is None else np.asarray(mask, bool)


def contrastive(pos, neg, tau, mask=None):
  """Wang & Liu Eq. 1, per anchor."""
  pos, neg, mask = np.float64(pos), np.float64(neg), _valid(neg, mask)
  out = np.zeros(len(pos))
  for i in range(len(pos)):
    num = math.exp(pos[i] / tau)
    den = num + sum(math.exp(s / tau) for s in neg[i][mask[i]])
    out[i] = -math.log(num / den)
  return out


def dcl(pos, neg, tau, mask=None):
  """Yeh et al.'s decoupled contrastive loss, per anchor: Eq. 1 without the positive
  in the denominator."""
  pos, neg, mask = np.float64(pos), np.float64(neg), _valid(neg, mask)
  out = np.zeros(len(pos))
  for i in range(len(pos)):
    out[i] = -pos[i] / tau + math.log(sum(math.exp(s / tau) for s in neg[i][mask[i]]))
  return out


def probabilities(pos, neg, tau, mask=None):
  """P_ii and P_ij of Eq. 2 (P_ij = 0 where masked)."""
  pos, neg, mask = np.float64(pos), np.float64(neg), _valid(neg, mask)
  p_pos, p_neg = np.zeros(len(pos)), np.zeros(neg.shape)
  for i in range(len(pos)):
    den = math.exp(pos[i] / tau) + sum(math.exp(s / tau) for s in neg[i][mask[i]])
    p_pos[i] = math.exp(pos[i] / tau) / den
    for j in range(neg.shape[1]):
      if mask[i, j]:
        p_neg[i, j] = math.exp(neg[i, j] / tau) / den
  return p_pos, p_neg


def contrastive_grads(pos, neg, tau, mask=None):
  """Eq. 4: dL_i/ds_ii = -(1/tau) sum_k P_ik; dL_i/ds_ij = P_ij / tau."""
  _, p_neg = probabilities(pos, neg, tau, mask)
  return -p_neg.sum(axis=1) / tau, p_neg / tau


def relative_penalty(neg, tau, mask=None):
  """Eq. 5: exp(s_ij/tau) / sum_k exp(s_ik/tau) over valid negatives."""
  neg, mask = np.float64(neg), _valid(neg, mask)
  r = np.zeros(neg.shape)
  for i in range(neg.shape[0]):
    den = sum(math.exp(s / tau) for s in neg[i][mask[i]])
    for j in range(neg.shape[1]):
      if mask[i, j]:
        r[i, j] = math.exp(neg[i, j] / tau) / den
  return r


def _hard_mask(neg, mask, num_hard):
  """Eq. 9's selection: valid negatives with s >= the num_hard-th largest."""
  neg, mask = np.float64(neg), _valid(neg, mask)
  keep = np.zeros(neg.shape, bool)
  for i in range(neg.shape[0]):
    vals = np.sort(neg[i][mask[i]])[::-1]
    if len(vals) == 0:
      continue
    s_alpha = vals[min(num_hard, len(vals)) - 1]
    keep[i] = mask[i] & (neg[i] >= s_alpha)
  return keep


def hard_contrastive(pos, neg, tau, num_hard, mask=None):
  """Eq. 9 (inputs must have no ties at s_alpha)."""
  return contrastive(pos, neg, tau, _hard_mask(neg, mask, num_hard))


def simple(pos, neg, mask=None, weight=None):
  """Eq. 3 with lambda = 1 / (number of valid negatives) unless given."""
  pos, neg, mask = np.float64(pos), np.float64(neg), _valid(neg, mask)
  out = np.zeros(len(pos))
  for i in range(len(pos)):
    vals = neg[i][mask[i]]
    w = weight if weight is not None else 1.0 / max(len(vals), 1)
    out[i] = -pos[i] + w * vals.sum()
  return out


def hard_simple(pos, neg, num_hard, mask=None, weight=None):
  return simple(pos, neg, _hard_mask(neg, mask, num_hard), weight)


def macl_tau(pos, tau0, alpha, a0, schedule):
  a = float(np.mean(np.float64(pos)))
  return tau0 * (1 + alpha * (a - a0)) if schedule == "linear" else tau0 * alpha**a


def macl(pos, neg, tau0, alpha, a0=0.0, schedule="linear", mask=None):
  """The official MACLa/MACLb: -(1 / sum_{j != i} P_ij) * log P_ii, per anchor."""
  tau = macl_tau(pos, tau0, alpha, a0, schedule)
  p_pos, p_neg = probabilities(pos, neg, tau, mask)
  return -np.log(p_pos) / p_neg.sum(axis=1)


def normalize(z):
  z = np.float64(z)
  return z / np.linalg.norm(z, axis=1, keepdims=True)


def nt_xent(z1, z2, tau):
  """SimCLR NT-Xent by explicit loops over the 2N anchors."""
  z = normalize(np.concatenate([z1, z2]))
  n2 = len(z)
  total = 0.0
  for i in range(n2):
    partner = (i + n2 // 2) % n2
    den = sum(math.exp(z[i] @ z[k] / tau) for k in range(n2) if k != i)
    total += -math.log(math.exp(z[i] @ z[partner] / tau) / den)
  return total / n2


def generalized(z1, z2, distribution, weight, tau, normalize_views, projection=None, prior=None):
  """Chen et al.'s official `generalized_contrastive_loss`, given the SWD draws."""
  h1, h2 = (normalize(z1), normalize(z2)) if normalize_views else (np.float64(z1), np.float64(z2))
  align = np.mean((h1 - h2) ** 2) / 2
  h = np.concatenate([h1, h2])
  if distribution == "logsumexp":
    scores = h @ h.T / tau
    lse = np.array([math.log(sum(math.exp(x) for x in row)) for row in scores])
    dist = np.mean(lse - math.log(h.shape[1]))
  else:
    w = np.float64(projection)
    hw = np.sort((h @ w).T, axis=1)
    pw = np.sort((np.float64(prior) @ w).T, axis=1)
    dist = np.mean((pw - hw) ** 2)
  return align + weight * dist


def uniformity(z, t=2.0):
  z = normalize(z)
  vals = [
    math.exp(-t * np.sum((z[i] - z[j]) ** 2)) for i in range(len(z)) for j in range(i + 1, len(z))
  ]
  return math.log(np.mean(vals))


def tolerance(z, labels):
  z = normalize(z)
  vals = [
    z[i] @ z[j] for i in range(len(z)) for j in range(len(z)) if i != j and labels[i] == labels[j]
  ]
  return float(np.mean(vals))


def alignment(z1, z2, alpha=2.0):
  z1, z2 = normalize(z1), normalize(z2)
  return float(np.mean(np.linalg.norm(z1 - z2, axis=1) ** alpha))


def local_separation(z1, z2, k=10):
  z1, z2 = normalize(z1), normalize(z2)
  rows = []
  for i in range(len(z1)):
    negs = sorted((z1[i] @ z2[j] for j in range(len(z2)) if j != i), reverse=True)
    rows.append([z1[i] @ z2[i]] + negs[:k])
  return np.mean(np.array(rows), axis=0)


def isogclr_objective(neg, tau, rho, mask=None):
  """iSogCLR's temperature objective of each anchor, F_i = tau_i (log g_i + rho), with
  g_i = mean over valid negatives of exp(s_ik / tau_i) (Qiu et al., ICML 2023, Eq. 5)."""
  neg, mask = np.float64(neg), _valid(neg, mask)
  out = np.zeros(len(neg))
  for i in range(len(neg)):
    t = float(tau[i])
    values = [math.exp(s / t) for s in neg[i][mask[i]]]
    out[i] = t * (math.log(sum(values) / len(values)) + rho)
  return out
