"""The trainer: device parity, config errors, NaN stop, an end-to-end run, the probe."""

import dataclasses
import functools
import json
import math
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive import build
from contrastive import checkpoint
from contrastive import checks
from contrastive import config as config_lib
from contrastive import evaluate
from contrastive import logs
from contrastive import objective
from contrastive import optim
from contrastive import probes
from contrastive import recipes
from contrastive import step as step_lib
from contrastive import temperature as temperature_lib
from contrastive import train
from contrastive.data import augment
from contrastive.data import datasets
from contrastive.data import pipeline
from contrastive.data import sources
from tests import reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.heavy(seconds=57)
def test_four_devices_give_the_same_step_as_one(tmp_path):
  # Both at once: compilation is mostly single-threaded, so two processes share the
  # 2 cores better than one after the other.
  procs = {
    n: subprocess.Popen(
      [sys.executable, "tests/device_parity.py", str(n), str(tmp_path / f"p{n}.npz")],
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for n in (1, 4)
  }
  outs = []
  for n, proc in procs.items():
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    outs.append(np.load(tmp_path / f"p{n}.npz"))
  one, four = outs
  assert one.files == four.files and len(one.files) > 40
  for out in outs:  # unlogged steps skip the diagnostics, and only the diagnostics
    for name in ("nt_xent", "hard_bank", "macl", "nt_xent_blockwise"):
      assert not out[f"{name}/diagnostics_change_params"], name
      assert out[f"{name}/skipped_stats_nan"] and out[f"{name}/logged_stats_finite"], name
  for key in one.files:  # losses, every parameter and the memory bank, after 2 steps
    np.testing.assert_allclose(four[key], one[key], rtol=1e-5, atol=1e-5, err_msg=key)
  for key in one.files:  # the blockwise loss trains as the dense one does
    if key.startswith("nt_xent/"):
      tiled = one[key.replace("nt_xent/", "nt_xent_blockwise/", 1)]
      np.testing.assert_allclose(tiled, one[key], rtol=1e-5, atol=1e-5, err_msg=key)


def _run(tmp_path, *overrides, env=None):
  workdir = tmp_path / "work"
  proc = subprocess.run(
    [
      sys.executable,
      "run.py",
      "--config=configs/quickstart.py",
      f"--workdir={workdir}",
      *overrides,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
    env={**os.environ, **(env or {})},
  )
  return proc, workdir


@pytest.mark.parametrize(
  "overrides,env,message",
  [
    (
      ["--config.loss.name=infonce"],
      None,
      "Unknown loss (loss.name) 'infonce'; valid: contrastive, hard_contrastive",
    ),
    (["--config.loss.temperature=0"], None, "loss.temperature must be > 0"),
    # Impossible on the data: caught once it is loaded, before anything is written.
    (
      ["--config.data.batch_size=20000"],
      None,
      "data.batch_size=20000 is more than shapes's 10,000 training examples",
    ),
    (
      ["--config.data.image_size=64"],
      None,
      "data.image_size=64, but shapes's images are 32 px and are not resized",
    ),
    (
      ["--config.data.batch_size=6"],
      {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
      "data.batch_size=6 is not divisible by the 4 devices",
    ),
    (
      ["--config.data.name=cifar10", "--config.data.data_dir=/nonexistent/tfds"],
      None,
      "tfds build cifar10 --data_dir=/nonexistent/tfds",
    ),
    (
      ["--config=configs/imagenet100.py", "--config.data.data_dir=/nonexistent/tfds"],
      None,
      "/nonexistent/tfds/downloads/manual, then run: tfds build imagenet2012 "
      "--data_dir=/nonexistent/tfds",
    ),
    (
      ["--config.data.name=imagenet100", "--config.data.randbit_bits=3"],
      None,
      "data.randbit_bits=3 needs an in-memory dataset; data.name='imagenet100' streams",
    ),
    # Command-line mistakes: caught while parsing, before the config is used.
    (["--config.nonexistent_key=1"], None, "No config key 'nonexistent_key'"),
    (["--config.train.num_steps=30"], None, "No config key 'train.num_steps'"),
    (["--config.loss.temprature=0.5"], None, "No config key 'loss.temprature'"),
    (["--config.train.num_epochs=abc"], None, "train.num_epochs=abc: expected an integer"),
    (["--config.loss.temperature"], None, "write config overrides as --config.KEY=VALUE"),
    (["--no_such_flag=1"], None, "Unknown command line flag 'no_such_flag'"),
    (["--config=configs/no_such_config.py"], None, "No config file 'configs/no_such_config.py'"),
    (["--config=configs/quickstart.py:foo=1"], None, "No config key 'foo'"),
    (
      ["--config=configs/experiments/macl.py:scale=huge"],
      None,
      "Unknown scale 'huge'; valid: latent, small, medium, paper",
    ),
  ],
)
def test_bad_configs_fail_with_one_line_before_compute(tmp_path, overrides, env, message):
  proc, workdir = _run(tmp_path, *overrides, env=env)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
  assert not workdir.exists()


def _tiny_config():
  config = recipes.quickstart()
  config.data.name, config.data.image_size, config.data.augment = "digits", 28, "randbit"
  config.data.batch_size = 64
  config.model.encoder, config.model.out_dim = "convn", 32
  config.train.num_epochs, config.train.log_every, config.train.tensorboard = 1, 5, False
  config.eval.linear_epochs, config.eval.linear_decay_epochs = 5, ()
  return config


def test_temperature_schedules_follow_their_formulas():
  loss = recipes.quickstart().loss
  loss.temperature_schedule, loss.temperature_min, loss.temperature_max = "cosine", 0.1, 1.0
  loss.temperature_half_period_epochs = 2.0
  per_epoch = 10
  period = 2 * 2 * per_epoch  # T: steps of a whole period
  tau = temperature_lib.schedule(loss, per_epoch)

  def cosine(step):  # Kukleva et al.'s formula, epoch = step / steps per epoch
    return 0.1 + 0.5 * (1.0 - 0.1) * (1 + math.cos(math.pi * (step / per_epoch) / 2.0))

  steps = (0, period // 4, period // 2, period, 2 * period)
  got = [float(tau(s)) for s in steps]
  np.testing.assert_allclose(got, [cosine(s) for s in steps], rtol=1e-6)
  np.testing.assert_allclose(got, [1.0, 0.55, 0.1, 1.0, 1.0], rtol=1e-6)
  loss.temperature_schedule, loss.temperature_warm_epochs, loss.temperature = "linear", 3.0, 0.2
  tau = temperature_lib.schedule(loss, per_epoch)
  got = [float(tau(s)) for s in (0, 15, 30, 60)]
  np.testing.assert_allclose(got, [1.0, 0.6, 0.2, 0.2], rtol=1e-6)
  loss.temperature_schedule = "constant"
  assert temperature_lib.schedule(loss, per_epoch) is None


def test_a_scheduled_temperature_is_traced_into_one_step_and_logged():
  config = _tiny_config()
  config.loss.temperature_schedule, config.loss.temperature_half_period_epochs = "cosine", 0.1
  run = build.build_run(config)
  step_fn = step_lib.jit_train_step(run.setup)
  state, logged = run.state, []
  for step in range(4):
    state, metrics = step_fn(state, run.data.train, run.root, diagnose=True)
    want = run.setup.temperature.schedule(step)  # the step's own tau, by its index
    logged.append((float(metrics["temperature"]), float(want)))
  assert step_fn.jitted._cache_size() == 1  # one program for every tau of the schedule
  np.testing.assert_allclose(*zip(*logged, strict=True), rtol=1e-6)
  assert len({t for t, _ in logged}) == 4 and logged[0][0] == pytest.approx(1.0)
  line = build.describe(config, run)
  assert "contrastive (simclr, tau cosine 0.1..1), 23 steps" in line


def _float64_model(config):
  """The model `config` names, computing in float64 (a reference; under jax.enable_x64)."""
  model = config.model.copy_and_resolve_references()
  model.dtype = "float64"
  return build.make_model(model)


def _wide(tree):
  """`tree` with its float32 arrays as float64 NumPy arrays, the rest as NumPy arrays."""
  return jax.tree.map(
    lambda a: np.float64(a) if np.asarray(a).dtype == np.float32 else np.asarray(a), tree
  )


def test_the_cpu_training_programs_compile_to_float64_accurate_gradients():
  # step.CPU_COMPILER_OPTIONS (XLA's own convolutions and dots, YNNPACK's reductions): the
  # first batch's gradient, compiled as the training programs are, within 1e-5 of a
  # float64 one (relative, all parameters; here 1.6e-6 with these options, 1.8e-6 with
  # JAX's defaults, 6.7e-4 with XLA's own reductions too; colour 32 px images, where
  # BatchNorm's sums are long and far from zero). Other platforms get no options.
  config = _tiny_config()
  config.data.update(name="shapes", image_size=32, augment="simclr_cifar")
  run = build.build_run(config)
  setup = run.setup
  options = step_lib.compiler_options(setup.mesh)
  assert options == step_lib.CPU_COMPILER_OPTIONS
  # The first batch's views: inputs here, compiled as the run-once programs are (the
  # augmentation's bits are the same; its compile 0.7 of JAX's defaults').
  run_once = step_lib.compiler_options(setup.mesh, step_lib.CPU_RUN_ONCE_COMPILER_OPTIONS)
  views = jax.device_get(
    jax.jit(lambda d, r: step_lib.batch(d, r, 0, setup), compiler_options=run_once)(
      run.data.train, run.root
    )
  )

  def grads(model, variables, views, options):
    s = dataclasses.replace(setup, model=model)

    def loss_fn(params):
      _, z1, z2, _ = step_lib.forward_views(s, params, variables["batch_stats"], views)
      return objective.loss(setup.loss, z1, z2, indices=views["index"], bank=None, key=None)

    return jax.jit(jax.grad(loss_fn), compiler_options=options)(variables["params"])

  variables = {"params": run.state.params, "batch_stats": run.state.batch_stats}
  got = jax.device_get(grads(setup.model, variables, views, options))
  with jax.enable_x64(True):
    model = _float64_model(config)
    want = jax.device_get(grads(model, _wide(jax.device_get(variables)), _wide(views), None))
  flat = lambda tree: np.concatenate([np.ravel(np.float64(a)) for a in jax.tree.leaves(tree)])  # noqa: E731
  error = np.linalg.norm(flat(got) - flat(want)) / np.linalg.norm(flat(want))
  assert error < 1e-5, error
  gpu = types.SimpleNamespace(platform="gpu")
  assert step_lib.compiler_options(types.SimpleNamespace(devices=np.array([gpu]))) is None


def test_the_evaluation_encoder_is_float64_accurate_over_padded_chunks():
  # evaluate.encode: the eval-mode encoder (compiled with the training programs' CPU
  # options) in chunks of 64, the last one padded, against one float64 pass over all rows.
  config = _tiny_config()
  config.data.update(name="shapes", image_size=32, augment="simclr_cifar")
  run = build.build_run(config)
  images = np.asarray(datasets.clean_inputs(run.data.test, 100))
  got = evaluate.encode(run.setup.model, run.state, images, batch_size=64)
  with jax.enable_x64(True):
    variables = _wide(
      jax.device_get({"params": run.state.params, "batch_stats": run.state.batch_stats})
    )
    want = _float64_model(config).apply(variables, _wide(images), train=False)
  for g, w in zip(got, jax.device_get(want), strict=True):
    assert g.shape == w.shape and g.shape[0] == 100
    error = np.linalg.norm(g - w) / np.linalg.norm(w)
    assert error < 1e-5, error
  assert step_lib.compiler_options("cpu") == step_lib.CPU_COMPILER_OPTIONS
  assert step_lib.compiler_options("gpu") is None


def test_the_cpu_initial_state_program_has_the_bits_of_jax_defaults():
  # step.CPU_RUN_ONCE_COMPILER_OPTIONS (LLVM's level 1: a faster compile) must not move a bit
  # of the initial state: every parameter, BatchNorm's statistics, the optimizer's state,
  # the memory bank and the online probe, against the same program with JAX's defaults
  # (level 0 fails this: the truncated normals' arithmetic compiles differently).
  config = _tiny_config()
  config.loss.update(name="hard_contrastive", layout="memory_bank", num_hard=10)
  setup = build.build_run(config, abstract_state=True).setup
  shape, num_train, key = (28, 28, 1), 640, jax.random.key(3)
  assert step_lib.compiler_options(setup.mesh, step_lib.CPU_RUN_ONCE_COMPILER_OPTIONS) == {
    "xla_backend_optimization_level": 1
  }
  got = step_lib.create_state(setup, key, shape, num_train)
  want = jax.jit(lambda k: step_lib.initial_state(setup, k, shape, num_train))(key)
  assert got.bank.shape == (num_train, 32) and got.probe_params is not None
  got, want = jax.device_get((got, want))
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    assert a.dtype == b.dtype and np.array_equal(a, b)


def test_the_cpu_evaluation_views_program_has_the_bits_of_jax_defaults():
  # The evaluation's augmented views compile with the same options (`step.jit_on`) and
  # must not move a bit either: NPID's ImageNet recipe has every step a view takes (crop,
  # flip, colour jitter with hue, grayscale, blur), on `shapes`' 3-channel images.
  split = sources.load("shapes").test
  data = pipeline.to_device(sources.Split(split.images[:96], split.labels[:96]))
  config, key = augment.preset("npid_imagenet", 24), jax.random.key(5)
  program = step_lib.jit_on(pipeline.eval_views, "cpu", 2, run_once=True)
  assert program is step_lib.jit_on(pipeline.eval_views, "cpu", 2, run_once=True)  # one each
  got = program(data, key, config)
  want = pipeline.eval_views(data, key, config)  # jitted with JAX's defaults
  assert got[0].shape == (96, 24, 24, 3) and not np.array_equal(got[0], got[1])
  for a, b in zip(got, want, strict=True):
    assert np.array_equal(a, b)


def test_nan_loss_stops_naming_the_step(tmp_path):
  config = _tiny_config()
  config.optimizer.learning_rate, config.optimizer.schedule = 1e30, "constant"
  with pytest.raises(train.NonFiniteLossError, match=r"at step \d+; training stopped"):
    train.train_and_evaluate(config, str(tmp_path))


@pytest.mark.heavy(seconds=17)
def test_train_and_evaluate_end_to_end(tmp_path, capsys):
  config = _tiny_config()
  assert config.eval.online_probe  # the quickstart's training-time probes, monitor every 10
  config.eval.monitor_every = 10
  results = train.train_and_evaluate(config, str(tmp_path))
  start = capsys.readouterr().out.splitlines()
  assert start[:3] == [  # what and where, where from, then the evaluation as it starts
    f"run: -> {tmp_path} | digits 1,497 train / 300 test 28x28x1, convn float32, contrastive "
    "(simclr, tau 0.2), "
    "23 steps | cpu (cpu) x 1 devices, 1 process, batch 64 (64 per device)",
    "starting from scratch",
    "evaluating: kNN and a 5-epoch linear probe on 1,497 + 300 images",
  ]
  assert start[3].startswith("evaluated in ") and start[3].endswith(" s")
  on_disk = json.loads((tmp_path / "results.json").read_text())
  for key in (
    "knn_accuracy",
    "linear_accuracy",
    "uniformity",
    "tolerance",
    "alignment",
    "pixel_knn_accuracy",
    "final_loss",
    "wall_time_s",
    "config",
  ):
    assert key in on_disk
  assert on_disk["knn_accuracy"] == results["knn_accuracy"]
  (origin,) = on_disk["provenance"]  # one segment: where the result came from
  head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
  if head.returncode == 0:  # run from a git checkout
    assert origin["code"]["commit"] == head.stdout.strip()
  import flax  # noqa: PLC0415
  import jax  # noqa: PLC0415

  versions = {"jax": jax.__version__, "numpy": np.__version__, "flax": flax.__version__}
  assert {k: origin["packages"][k] for k in versions} == versions
  assert (origin["platform"], origin["device_count"], origin["process_count"]) == ("cpu", 1, 1)
  assert origin["start_step"] == 0 and origin["started"] <= origin["ended"]
  times = on_disk["time_s"]  # where the wall time went
  assert list(times) == ["setup", "first_step", "train", "evaluate"]
  assert all(v >= 0 for v in times.values()) and sum(times.values()) <= on_disk["wall_time_s"] + 0.5
  assert 0 <= results["knn_accuracy"] <= 1 and np.isfinite(results["final_loss"])
  assert results["pixel_knn_accuracy"] == pytest.approx(0.93, abs=0.02)  # raw digits pixels
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [5, 10, 15, 20, 23]  # 1497 // 64 = 23 steps
  for key in (
    "loss",
    "learning_rate",
    "pos_sim",
    "neg_sim",
    "penalty_entropy",
    "temperature",
    "batch_alignment",
    "batch_uniformity",
    "images_per_s",
  ):
    assert key in rows[-1]
  assert all(np.isfinite(r["penalty_entropy"]) for r in rows)  # computed on logged steps
  # The probes: the online probe's batch accuracy in every row, the kNN monitor in the
  # rows of steps 10 and 20, the online probe's test accuracy in the results.
  assert all(0 <= r["probe_accuracy"] <= 1 and r["probe_loss"] > 0 for r in rows)
  assert [r["step"] for r in rows if "knn_monitor" in r] == [10, 20]
  assert all(0 < r["knn_monitor"] <= 1 for r in rows if "knn_monitor" in r)
  assert 0.2 < results["online_linear_accuracy"] <= 1  # ten classes: chance is 0.1
  again = train.train_and_evaluate(config, str(tmp_path))  # nothing left to train
  assert capsys.readouterr().out.splitlines()[1] == (
    f"resuming from step 23 ({tmp_path}/checkpoints/23)"
  )
  assert again["final_loss"] == results["final_loss"]
  # Neither probe touches the backbone: the same run without them ends bit-identical.
  config.eval.online_probe, config.eval.monitor_every = False, 0
  plain = train.train_and_evaluate(config, str(tmp_path / "plain"))
  probed = checkpoint.read_latest(str(tmp_path / "checkpoints"))[0]
  unprobed = checkpoint.read_latest(str(tmp_path / "plain" / "checkpoints"))[0]
  assert "probe_params" in probed and unprobed.get("probe_params") is None
  for key in ("params", "batch_stats", "opt_state"):
    for a, b in zip(jax.tree.leaves(probed[key]), jax.tree.leaves(unprobed[key]), strict=True):
      np.testing.assert_array_equal(a, b)
  assert "online_linear_accuracy" not in plain
  assert {k: plain[k] for k in ("knn_accuracy", "linear_accuracy", "final_loss")} == {
    k: results[k] for k in ("knn_accuracy", "linear_accuracy", "final_loss")
  }


def test_evaluation_leaves_the_backbone_unchanged():
  # The probe trains on features computed once; nothing may write to (or donate)
  # the backbone's parameters or BatchNorm statistics while it runs.
  import jax

  config = _tiny_config()
  config.data.train_examples = 256
  run = build.build_run(config)
  state = step_lib.create_state(run.setup, jax.random.key(1), run.data.image_shape, 256)
  before = jax.tree.map(np.array, (state.params, state.batch_stats))
  first = evaluate.evaluate_state(config, run, state)
  after = jax.tree.map(np.array, (state.params, state.batch_stats))
  jax.tree.map(np.testing.assert_array_equal, before, after)
  again = evaluate.evaluate_state(config, run, state)
  assert again["knn_accuracy"] == first["knn_accuracy"]
  assert again["linear_accuracy"] == first["linear_accuracy"]


def test_digits_on_images_are_pasted_and_probed():
  from contrastive.data import sources

  config = _tiny_config()
  config.data.update(train_examples=256, digits_pool=16, digits_size=12)
  run = build.build_run(config)
  plain = sources.load("digits", train_examples=256)
  probe = run.data.probes["digit"]
  train_digits, test_digits = probe.train_labels, probe.test_labels
  assert train_digits.shape == (256,) and test_digits.shape == (300,)
  pool_labels = set(sources.load("digits").train.labels[:16].tolist())
  assert set(train_digits.tolist()) <= pool_labels and len(set(train_digits.tolist())) > 1
  # Pasting by max only brightens, and every image gets a digit.
  pasted = np.asarray(run.data.train.images)[:256].astype(int) - plain.train.images
  assert pasted.min() >= 0 and (pasted.reshape(256, -1).max(axis=1) > 0).all()
  with pytest.raises(config_lib.ConfigError, match="digits_pool"):
    bad = _tiny_config()
    bad.data.digits_pool = -1
    checks.check(bad)
  results = evaluate.evaluate_state(config, run, run.state)
  assert 0 <= results["digit_linear_accuracy"] <= 1 and 0 <= results["digit_knn_accuracy"] <= 1


def test_linear_probe_separates_separable_features():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, 600)
  centres = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]])
  feats = centres[labels] + 0.3 * rng.normal(size=(600, 3))
  probe = functools.partial(
    probes.linear_probe, num_classes=3, epochs=20, learning_rate=0.1, batch_size=50
  )
  acc = probe(feats[:500], labels[:500], feats[500:], labels[500:])
  assert acc == 1.0
  chance = probe(feats[:500], rng.permutation(labels[:500]), feats[500:], labels[500:])
  assert chance < 0.6


def test_weight_decay_mask_and_schedules():
  params = {
    "conv": {"kernel": np.ones((3, 3, 1, 2))},
    "bn": {"scale": np.ones(2), "bias": np.ones(2)},
  }
  mask = optim.decay_mask(params, exclude_bn_and_bias=True)
  assert mask == {"conv": {"kernel": True}, "bn": {"scale": False, "bias": False}}
  cfg = recipes.quickstart().optimizer
  cfg.schedule, cfg.learning_rate, cfg.decay_epochs, cfg.decay_factor = (
    "step",
    0.03,
    (160, 190),
    0.1,
  )
  sched = optim.learning_rate_schedule(cfg, steps_per_epoch=10, num_steps=2000)
  np.testing.assert_allclose(
    [sched(0), sched(1599), sched(1600), sched(1900)], [0.03, 0.03, 0.003, 0.0003], rtol=1e-6
  )


@pytest.mark.heavy(seconds=40)
def test_cifar10_config_end_to_end_under_mock_data(tmp_path):
  # The real cifar10 config (memory bank, hard negatives, NPID augmentation), with a
  # tiny model and mock data: train, checkpoint, resume with more epochs, evaluate.
  import tensorflow_datasets as tfds

  from configs import cifar10

  config = cifar10.get_config("loss=hard_contrastive,temperature=0.7")
  config.data.data_dir = str(tmp_path / "tfds")
  config.data.batch_size = 32
  config.model.width, config.model.out_dim = 4, 16
  config.loss.num_hard = 20
  config.train.update(num_epochs=1, log_every=2, checkpoint_every=2, tensorboard=False)
  config.eval.update(linear_epochs=2, linear_decay_epochs=())
  workdir = str(tmp_path / "work")
  with tfds.testing.mock_data(num_examples=96):
    first = train.train_and_evaluate(config, workdir)
    assert first["steps"] == 3
    config.train.num_epochs = 2
    second = train.train_and_evaluate(config, workdir)
  assert second["steps"] == 6
  steps = [json.loads(line)["step"] for line in open(os.path.join(workdir, "metrics.jsonl"))]
  assert steps == [2, 3, 4, 6]  # the second run resumed at step 3, not from scratch
  for key in ("knn_accuracy", "linear_accuracy", "uniformity", "tolerance", "alignment"):
    assert np.isfinite(second[key])


def _three_steps_saved_restored_three_more(config, step_fn, workdir):
  """A fresh run's state after 3 steps, a checkpoint, a restore into another fresh
  state and 3 more steps: equal to 6 uninterrupted steps if resuming is exact."""
  run = build.build_run(config)
  ckpt = checkpoint.Checkpointer(str(workdir), every=3, keep=1)
  state = run.state
  for _ in range(3):
    state, _ = step_fn(state, run.data.train, run.root, diagnose=False)
  ckpt.save(3, state)
  state = ckpt.restore_latest(build.build_run(config).state)
  ckpt.close()
  for _ in range(3):
    state, _ = step_fn(state, run.data.train, run.root, diagnose=False)
  return state


def test_a_learned_global_temperature_follows_its_gradient_within_its_range(tmp_path):
  config = _tiny_config()
  config.loss.temperature_learned, config.loss.temperature_learning_rate = "global", 0.05
  config.loss.temperature_min, config.loss.temperature, config.loss.temperature_max = 0.1, 0.2, 0.5
  run = build.build_run(config)
  assert float(run.state.log_temperature) == pytest.approx(math.log(0.2))
  # The gradient the step takes for log tau is the loss's: a central finite difference.
  z1, z2 = (jax.random.normal(k, (16, 8)) for k in jax.random.split(jax.random.key(0), 2))

  def loss(log_tau):
    return objective.loss(config.loss, z1, z2, indices=None, bank=None, key=None,
                          temperature=jnp.exp(log_tau))  # fmt: skip

  x, h = math.log(0.2), 1e-3
  grad = float(jax.grad(loss)(jnp.float32(x)))
  fd = (float(loss(jnp.float32(x + h))) - float(loss(jnp.float32(x - h)))) / (2 * h)
  assert grad == pytest.approx(fd, rel=1e-2) and abs(grad) > 1e-3
  step_fn = step_lib.jit_train_step(run.setup)
  state, taus = run.state, []
  for _ in range(6):
    state, metrics = step_fn(state, run.data.train, run.root, diagnose=True)
    taus.append(float(metrics["temperature"]))
  assert taus[0] == pytest.approx(0.2) and len(set(taus)) > 1  # it moves, step by step
  assert all(0.1 - 1e-6 <= t <= 0.5 + 1e-6 for t in taus)
  # Its range holds whatever the gradient says.
  far = temperature_lib.clip_log_temperature(config.loss, jnp.asarray([-10.0, 0.0, 10.0]))
  np.testing.assert_allclose(np.exp(far), [0.1, 0.5, 0.5], rtol=1e-6)
  assert "contrastive (simclr, tau learned from 0.2)" in build.describe(config, run)
  # Checkpointed and resumed exactly (log tau and its Adam state included).
  resumed = _three_steps_saved_restored_three_more(config, step_fn, tmp_path)
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(state), strict=True):
    np.testing.assert_array_equal(a, b)
  assert float(resumed.log_temperature) == float(state.log_temperature)


def test_per_sample_temperatures_move_by_isogclr_stay_in_range_and_resume_exactly(tmp_path):
  config = _tiny_config()
  config.loss.update(temperature_learned="per_sample", temperature=0.1, temperature_min=0.09,
                     temperature_max=0.12, temperature_sample_learning_rate=0.5)  # fmt: skip
  checks.check(config)
  run = build.build_run(config)
  assert "contrastive (simclr, tau per sample from 0.1)" in build.describe(config, run)
  step_fn = step_lib.jit_train_step(run.setup)
  state = run.state
  for _ in range(6):
    state, metrics = step_fn(state, run.data.train, run.root, diagnose=True)
  tau = np.asarray(state.sample_temperature["tau"])
  assert tau.shape == (run.data.train.num_examples,)
  assert np.all((tau >= 0.09 - 1e-7) & (tau <= 0.12 + 1e-7))  # the range holds...
  assert np.any(tau <= 0.09 + 1e-7) or np.any(tau >= 0.12 - 1e-7)  # ...and binds
  visited = np.isfinite(np.asarray(state.sample_temperature["log_s"]))
  assert visited.sum() == 6 * 64 and np.all(tau[~visited] == np.float32(0.1))
  assert np.all(tau[visited] != np.float32(0.1)) and len(np.unique(tau[visited])) > 10
  assert metrics[temperature_lib.SAMPLE_TEMPERATURES].shape == tau.shape
  assert float(metrics["sample_temperature_mean"]) == pytest.approx(tau.mean(), rel=1e-5)
  # A first visit is iSogCLR's rule on dF/dtau (a central difference of the float64
  # reference), the instance's two anchors averaged: momentum = beta * clip(grad),
  # tau <- clip(tau - eta * momentum).
  z1, z2 = (jax.random.normal(k, (8, 4)) for k in jax.random.split(jax.random.key(3), 2))
  rows = jnp.asarray([5, 0, 9, 2, 7, 11, 3, 1])
  start = temperature_lib.init_sample_temperatures(config.loss, 12)
  start["tau"] = jnp.linspace(0.09, 0.12, 12)
  moved = temperature_lib.update_sample_temperatures(
    config.loss, start, z1, z2, indices=rows, bank=None
  )
  _, neg, mask = objective.layout("simclr", z1, z2, None, rows)
  t = np.concatenate([np.asarray(start["tau"])[rows]] * 2).astype(np.float64)
  h = 1e-6
  fd = (reference.isogclr_objective(neg, t + h, 0.4, mask)
        - reference.isogclr_objective(neg, t - h, 0.4, mask)) / (2 * h)  # fmt: skip
  grad = np.clip((fd[:8] + fd[8:]) / 2, -3, 3)
  np.testing.assert_allclose(moved["momentum"][rows], 0.5 * grad, rtol=1e-4, atol=1e-5)
  want = np.clip(t[:8] - 0.5 * 0.5 * grad, 0.09, 0.12)
  np.testing.assert_allclose(moved["tau"][rows], want, rtol=1e-5, atol=1e-6)
  untouched = np.setdiff1d(np.arange(12), np.asarray(rows))
  np.testing.assert_array_equal(moved["tau"][untouched], start["tau"][untouched])
  # Checkpointed and resumed exactly (tau, momentum and s of every instance).
  resumed = _three_steps_saved_restored_three_more(config, step_fn, tmp_path)
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(state), strict=True):
    np.testing.assert_array_equal(a, b)
  results = temperature_lib.results(state)["sample_temperature"]
  assert results["min"] >= 0.09 - 1e-7 and results["max"] <= 0.12 + 1e-7
  assert results["p10"] <= results["p50"] <= results["p90"]
  # The per-sample temperatures are a histogram in TensorBoard.
  writer = logs.MetricWriter(str(tmp_path / "tb"), tensorboard=True)
  writer.write(6, {"loss": 1.0}, {temperature_lib.SAMPLE_TEMPERATURES: tau})
  writer.close()
  import tensorflow as tf  # noqa: PLC0415

  (events,) = (tmp_path / "tb" / "tensorboard").iterdir()
  histograms = [
    tf.make_ndarray(v.tensor)
    for e in tf.compat.v1.train.summary_iterator(str(events))
    for v in e.summary.value
    if v.tag == temperature_lib.SAMPLE_TEMPERATURES
  ]
  assert len(histograms) == 1 and histograms[0][:, 2].sum() == len(tau)  # every instance
  # Two writers on one logdir opened in the same second (a run resumed in this process)
  # write a file each, and neither truncates the other's events.
  first, second = (logs.MetricWriter(str(tmp_path / "two"), tensorboard=True) for _ in range(2))
  first.write(6, {"loss": 1.0})
  first.close()
  second.close()
  files = sorted((tmp_path / "two" / "tensorboard").iterdir())
  counts = [sum(1 for _ in tf.compat.v1.train.summary_iterator(str(f))) for f in files]
  assert sorted(counts) == [1, 2]  # the file version alone; the version and step 6's loss
  for bad, message in (
    ({"layout": "cross_view"}, "per-sample temperature serves"),
    ({"block_size": 16}, "unset loss.block_size"),
    ({"temperature_gamma": 0.0}, "loss.temperature_gamma must be in"),
  ):
    wrong = _tiny_config()
    wrong.loss.update(temperature_learned="per_sample", temperature=0.1, **bad)
    with pytest.raises(config_lib.ConfigError, match=message):
      checks.check(wrong)


@pytest.mark.heavy(seconds=20)
def test_a_loss_scaled_to_nt_xent_has_its_gradient_norm_on_other_batches():
  # The scale is NT-Xent's gradient norm over the loss's, at initialisation on the first
  # batch; on three other batches the scaled generalized loss's gradient norm is within
  # 10% of NT-Xent's (tau 0.2).
  for loss in (
    dict(name="generalized", distribution="logsumexp", temperature=1.0, weight=0.1),
    dict(name="generalized", distribution="swd_hypersphere", weight=5.0, normalize=True),
  ):
    config = _tiny_config()
    config.loss.update(**loss)
    run = build.build_run(config)
    reference = config_lib.from_saved(config.to_dict()).loss
    reference.update(name="contrastive", temperature=0.2)
    args = (run.state, run.data.train, run.root, (0, 3, 7, 11))
    ours, nt_xent = step_lib.gradient_norms(run.setup, (config.loss, reference), *args)
    scale = nt_xent[0] / ours[0]
    assert scale > 10  # ~ d / tau: the generalized losses' gradients are that much smaller
    for a, b in zip(ours[1:], nt_xent[1:], strict=True):
      assert scale * a == pytest.approx(b, rel=0.10), (loss, ours, nt_xent)
  # The run's calibration is that ratio (the last loss's), and the step uses it.
  config.loss.scale_reference = "nt_xent"
  checks.check(config)
  run = build.build_run(config)
  assert run.setup.loss_scale == pytest.approx(scale, rel=1e-6)
  assert f"x {scale:.4g})" in build.describe(config, run)
  _, metrics = step_lib.jit_train_step(run.setup)(run.state, run.data.train, run.root)
  assert float(metrics["grad_norm"]) == pytest.approx(nt_xent[0], rel=1e-4)  # first step
  wrong = _tiny_config()
  wrong.loss.update(scale_reference="nt_xent", scale=2.0)
  with pytest.raises(config_lib.ConfigError, match="keep one"):
    checks.check(wrong)


def test_values_legal_but_surely_not_meant_on_the_data_warn_in_one_line(capsys):
  config = _tiny_config()
  split = types.SimpleNamespace(num_examples=1000)
  data = types.SimpleNamespace(train=split, image_shape=(28, 28, 1), latents=None)
  config.loss.update(name="hard_contrastive", num_hard=500, hard_fraction=None)
  checks.check_data(config, data)  # 2 x 64 - 2 = 126 negatives per anchor
  config.eval.knn_k = 5000
  checks.check_data(config, data)
  warnings = [line for line in capsys.readouterr().err.splitlines() if line]
  assert len(warnings) == 3, warnings
  assert all(line.startswith("warning: ") for line in warnings)
  assert "loss.num_hard=500 is more than the 126 negatives an anchor has" in warnings[0]
  assert "eval.knn_k=5000 is more than" in warnings[2]
  config.loss.update(layout="memory_bank")  # the bank's 999 negatives: nothing to say
  config.eval.knn_k = 200
  checks.check_data(config, data)
  config.loss.update(layout="simclr", num_hard=100)
  checks.check_data(config, data)
  assert capsys.readouterr().err == ""
  data.latents = ((), ())  # generated vectors: no image side to match
  config.data.image_size = 64
  checks.check_data(config, data)
  data.latents = None
  with pytest.raises(config_lib.ConfigError, match="images are 28 px"):
    checks.check_data(config, data)


def test_runs_that_differ_in_their_seed_share_the_programs_and_get_their_own_results():
  config = _tiny_config()
  config.loss.update(name="generalized", distribution="swd_gaussian", normalize=False,
                     scale_reference="nt_xent")  # fmt: skip
  first = build.build_run(config)
  config.seed = 1
  second = build.build_run(config)
  assert first.setup.fingerprint == second.setup.fingerprint
  assert first.setup.loss_scale != second.setup.loss_scale  # calibrated per seed
  # The calibration's program is shared too: a fresh one gives the second seed's scale.
  alone_scale = build.calibrate_loss_scale(
    config, dataclasses.replace(second.setup, fingerprint=None, loss_scale=1.0), second.state,
    second.data.train, second.root,
  )  # fmt: skip
  assert alone_scale == second.setup.loss_scale
  shared = step_lib.jit_train_step(second.setup)
  assert shared.jitted is step_lib.jit_train_step(first.setup).jitted  # traced once
  alone = step_lib.jit_train_step(dataclasses.replace(second.setup, fingerprint=None))
  assert alone.jitted is not shared.jitted
  state = jax.tree.map(jnp.copy, second.state)  # the step donates its state
  (got, m1), (want, m2) = (
    shared(second.state, second.data.train, second.root),
    alone(state, second.data.train, second.root),
  )
  assert float(m1["loss"]) == float(m2["loss"])
  jax.tree.map(np.testing.assert_array_equal, got.params, want.params)
