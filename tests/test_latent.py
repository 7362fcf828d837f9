"""The latent test-bed: deterministic, the documented shapes, views of one instance,
its shortcuts and held-out split, and a run on it end to end."""

import json

import jax
import numpy as np

from contrastive import checks
from contrastive import config as config_lib
from contrastive import recipes
from contrastive import train
from contrastive.data import latent


def _data_config(**overrides):
  c = config_lib.base().data
  c.update(name="latent", latent_train=512, latent_test=128, **overrides)
  return c


def test_generation_is_deterministic_per_seed_with_documented_shapes():
  cfg = _data_config()
  a, b = latent.generate(cfg), latent.generate(cfg)
  for split in ("train", "test"):
    for key, value in a[split].items():
      if value is None:
        assert b[split][key] is None and key in ("factor", "factor_labels", "bits")
      else:
        np.testing.assert_array_equal(value, b[split][key])
  train, test = a["train"], a["test"]
  assert train["content"].shape == (512, 8) and test["content"].shape == (128, 8)
  np.testing.assert_allclose(np.linalg.norm(train["content"], axis=1), 1.0, rtol=1e-6)
  assert train["style"].shape == (512, 8)
  assert set(train["labels"].tolist()) <= set(range(20)) and a["num_classes"] == 20
  np.testing.assert_array_equal(train["coarse"], train["labels"] // 4)
  # the instances sit around their class centre (spread 0.3): nearest centre mostly right
  nearest = latent.nearest_centre_accuracy(train["content"], train["labels"], a["class_centres"])
  assert nearest > 0.9
  other = latent.generate(_data_config(seed=1))
  assert not np.allclose(other["train"]["content"], train["content"])


def test_views_keep_the_instance_latent_and_resample_the_nuisance():
  made = latent.generate(_data_config(latent_nuisance=0.0, latent_augment=0.0))
  data = latent.to_device(made["train"], made["weights"], _data_config(latent_nuisance=0.0,
                          latent_augment=0.0))  # fmt: skip
  idx = np.arange(0, 512, 7)
  v1, v2 = latent.views(data, jax.random.key(0), idx)
  obs = np.asarray(latent.observations(data))
  assert v1.shape == (len(idx), 64)
  # no perturbation and no nuisance: both views are the instance's observation
  np.testing.assert_allclose(v1, obs[idx], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(v2, obs[idx], rtol=1e-5, atol=1e-6)

  cfg = _data_config(latent_nuisance=0.0)  # only the content's perturbation (0.1)
  made = latent.generate(cfg)
  data = latent.to_device(made["train"], made["weights"], cfg)
  v1, v2 = (np.asarray(v) for v in latent.views(data, jax.random.key(0), idx))
  assert not np.allclose(v1, v2)
  # the two views of an instance are each other's nearest among the batch
  d = ((v1[:, None] - v2[None]) ** 2).sum(-1)
  assert np.mean(np.argmin(d, axis=1) == np.arange(len(idx))) > 0.9

  cfg = _data_config()  # the defaults: each view draws its nuisance
  made = latent.generate(cfg)
  data = latent.to_device(made["train"], made["weights"], cfg)
  v1, v2 = (np.asarray(v) for v in latent.views(data, jax.random.key(0), idx))
  w1, _ = (np.asarray(v) for v in latent.views(data, jax.random.key(1), idx))
  assert not np.allclose(v1, v2) and not np.allclose(v1, w1)  # per view and per step
  # the nuisance moves a view farther than the content's perturbation does
  assert np.mean((v1 - v2) ** 2) > 4 * np.mean(d[np.arange(len(idx)), np.arange(len(idx))]) / 64


def test_shortcuts_and_a_held_out_split():
  made = latent.generate(_data_config(randbit_bits=5, digits_pool=16))
  train = made["train"]
  assert train["bits"].shape == (512, 5) and set(np.unique(train["bits"])) <= {0.0, 1.0}
  assert train["factor"].shape == (512, 8) and train["factor_labels"].max() < 16
  cfg = _data_config(randbit_bits=5, digits_pool=16)
  data = latent.to_device(train, made["weights"], cfg)
  v1, v2 = latent.views(data, jax.random.key(0), np.arange(10))
  assert v1.shape == (10, 64 + 5)
  np.testing.assert_array_equal(v1[:, -5:], train["bits"][:10])  # shared by both views
  np.testing.assert_array_equal(v2[:, -5:], train["bits"][:10])

  plain = latent.generate(_data_config())
  held = latent.generate(_data_config(holdout_fraction=0.25))
  np.testing.assert_array_equal(held["train"]["content"], plain["train"]["content"][:384])
  np.testing.assert_array_equal(held["test"]["content"], plain["train"]["content"][384:])
  np.testing.assert_array_equal(held["test"]["labels"], plain["train"]["labels"][384:])


def test_a_run_on_the_test_bed_reports_the_ground_truth(tmp_path):
  c = recipes.latent()
  c.data.update(latent_train=1024, latent_test=256)
  c.train.update(num_epochs=2, log_every=4)
  c.eval.linear_epochs = 2
  checks.check(c)
  results = train.train_and_evaluate(c, str(tmp_path))
  assert 0.0 <= results["latent_r2"] <= 1.0 and 0.0 <= results["superclass_tolerance"] <= 1.0
  assert 1.0 / 20 < results["linear_accuracy"] <= 1.0  # above chance after 8 steps
  assert 1.0 / 5 < results["superclass_linear_accuracy"] <= 1.0  # the superclass probe
  assert json.loads((tmp_path / "results.json").read_text())["latent_r2"] == results["latent_r2"]
