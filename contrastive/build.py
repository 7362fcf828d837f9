"""Everything a run builds before its first step: the mesh, the data, the step's setup,
the initial state and the loss's calibration (`build_run` -> `Run`), and the line
that describes it.

The public seams, for the trainer, sweeps, benchmarks, notebooks and tests:
`build_run(config)`, `make_setup`, `make_mesh`, `describe`.
"""

import dataclasses
import json

import jax
from jax.experimental import multihost_utils
import ml_collections
import optax

from contrastive import checks
from contrastive import models
from contrastive import optim
from contrastive import step as step_lib
from contrastive import temperature
from contrastive.data import augment
from contrastive.data import datasets
from contrastive.data import pipeline
from contrastive.data import streaming


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None):
  """`jax.distributed.initialize`, then a barrier over every device, so the processes'
  first collective (it opens the CPU collectives' connections, Gloo, with a 30 s
  connect timeout) runs while all of them are up: later, one process may be busy
  compiling or loading data for longer than that (seen on a loaded 2-core machine:
  "Gloo context initialization failed ... Connect timeout")."""
  jax.distributed.initialize(coordinator_address, num_processes, process_id)
  multihost_utils.sync_global_devices("contrastive: every process has started")


def make_mesh():
  """A 1-D ('data',) mesh over every device, with automatic sharding propagation."""
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def make_model(model_config) -> models.ContrastiveModel:
  """The encoder + head that `model_config` (a config's `model`) names."""
  return models.create(
    model_config.encoder,
    stem=model_config.stem,
    width=model_config.width,
    out_dim=model_config.out_dim,
    hidden_dim=model_config.hidden_dim,
    head_depth=model_config.head_depth,
    dtype=models.DTYPES[model_config.dtype],
  )


def make_setup(
  config, mesh, num_train: int, per_epoch: int | None = None, num_classes: int | None = None
) -> tuple[step_lib.Setup, int]:
  """The step's static objects for `config` on `mesh`, and the run's number of steps.

  `per_epoch`: steps per epoch, where they are not num_train // batch (a streamed
  dataset's, `streaming.StreamData.steps_per_epoch`); `num_classes`: the labels'
  (the online probe's outputs, with eval.online_probe)."""
  model = make_model(config.model)
  probe = config.eval.get("online_probe", False)
  if probe and not num_classes:
    raise ValueError("eval.online_probe needs make_setup(..., num_classes=the labels' count).")
  if per_epoch is None:
    per_epoch = pipeline.steps_per_epoch(num_train, config.data.batch_size)
  num_steps = config.train.num_epochs * per_epoch
  schedule = optim.learning_rate_schedule(config.optimizer, per_epoch, num_steps)
  return step_lib.Setup(
    model=model,
    tx=optim.create_optimizer(config.optimizer, schedule),
    schedule=schedule,
    loss=config.loss,
    augment=augment.preset(config.data.augment, config.data.image_size),
    batch_size=config.data.batch_size,
    data_seed=config.seed,
    bank_momentum=config.loss.bank_momentum,
    loss_scale=config.loss.get("scale", 1.0),
    mesh=mesh,
    temperature=temperature.create(config.loss, per_epoch),
    probe_tx=optax.sgd(config.eval.online_probe_learning_rate, momentum=0.9) if probe else None,
    probe_classes=num_classes or 0,
    fingerprint=fingerprint(config, mesh, num_train, per_epoch, num_classes),
  ), num_steps


def fingerprint(config, mesh, *sizes) -> str:
  """What a run's programs depend on (`step.Setup.fingerprint`): its config but the
  seeds (the run's and the data's, arguments of the programs) and the config file's
  name, the mesh's devices and the data's sizes."""
  c = config.to_dict()
  c.pop("seed", None)
  c.pop("config_file", None)
  c.pop("sweep", None)
  c.get("data", {}).pop("seed", None)
  devices = [d.id for d in mesh.devices.flat]
  return json.dumps([c, devices, sizes], sort_keys=True, default=str)


@dataclasses.dataclass(frozen=True)
class Run:
  """What a run builds before its first step: the step's setup, the initial state,
  the data (train, test, probes), the root key and the number of steps."""

  setup: step_lib.Setup
  state: step_lib.TrainState
  data: datasets.RunData
  root: jax.Array
  num_steps: int


def build_run(config, *, abstract_state: bool = False) -> Run:
  """Everything `config`'s run needs before its first step, on a mesh of all devices.

  abstract_state=True: the state as shapes, dtypes and shardings only (nothing
  compiled or computed: a target to restore a checkpoint into), and no loss
  calibration."""
  mesh = make_mesh()
  data = datasets.prepare(config.data, mesh=mesh)
  checks.check_data(config, data)
  per_epoch = None
  if isinstance(data.train, streaming.StreamData):
    per_epoch = data.train.steps_per_epoch(config.data.batch_size)
  setup, num_steps = make_setup(
    config, mesh, data.train.num_examples, per_epoch, num_classes=data.num_classes
  )
  root = jax.random.key(config.seed)
  create = lambda key: step_lib.create_state(  # noqa: E731
    setup, key, data.image_shape, data.train.num_examples
  )
  key = jax.random.fold_in(root, 0)
  state = jax.eval_shape(create, key) if abstract_state else create(key)
  if config.loss.get("scale_reference", "none") == "nt_xent" and not abstract_state:
    scale = calibrate_loss_scale(config, setup, state, data.train, root)
    setup = dataclasses.replace(setup, loss_scale=scale)
  return Run(setup, state, data, root, num_steps)


def calibrate_loss_scale(config, setup: step_lib.Setup, state: step_lib.TrainState, data,
                         root_key) -> float:  # fmt: skip
  """The multiplier that gives the configured loss NT-Xent's gradient norm at
  initialisation (loss.scale_reference="nt_xent"): ||grad NT-Xent|| / ||grad loss||, at
  `state`'s parameters on the first batch, NT-Xent at loss.scale_reference_temperature
  in SimCLR's layout. Chen et al.'s generalized losses have gradients about tau / d of
  NT-Xent's (their 1/d alignment term), so under one SGD learning rate they would
  train at a fraction of its step size; their notebooks' `loss_scaling` is this knob.
  Deterministic in the config and seed, so a resumed run computes the same scale."""
  reference = ml_collections.ConfigDict(config.loss.to_dict())
  reference.update(name="contrastive", layout="simclr", block_size=None,
                   temperature=config.loss.scale_reference_temperature)  # fmt: skip
  (ours,), (target,) = step_lib.gradient_norms(
    setup, (config.loss, reference), state, data, root_key
  )
  return target / ours


def describe(config, run: Run, temperatures=None, workdir=None) -> str:
  """One line on what `run` trains and where: its config file and `workdir`, data,
  model, loss (`temperatures`: a population's), then the platform, devices, processes
  and the global and per-device batch. Printed at a run's start, so a pod slice that
  came up short says so."""
  devices = jax.devices()
  kind = devices[0].device_kind if devices[0].platform != "cpu" else "cpu"
  train, test = run.data.train.num_examples, run.data.test.num_examples
  shape = "x".join(str(n) for n in run.data.image_shape)
  batch = config.data.batch_size
  tau = run.setup.temperature.describe(temperatures)
  scaled = f", x {run.setup.loss_scale:.4g}" if run.setup.loss_scale != 1.0 else ""
  loss = f"{config.loss.name} ({config.loss.layout}, tau {tau}{scaled})"
  where = " ".join(filter(None, (config.get("config_file"), workdir and f"-> {workdir}")))
  return (
    f"run: {where + ' | ' if where else ''}"
    f"{config.data.name} {train:,} train / {test:,} "
    f"{'held out' if config.data.get('holdout_fraction') else 'test'} {shape}, "
    f"{config.model.encoder} {config.model.dtype}, {loss}, {run.num_steps:,} steps | "
    f"{devices[0].platform} ({kind}) x {len(devices)} devices, "
    f"{jax.process_count()} process{'es' if jax.process_count() > 1 else ''}, "
    f"batch {batch:,} ({batch // len(devices):,} per device)"
  )
