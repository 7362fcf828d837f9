"""The same SimCLR training step in PyTorch: a peer to compare our step with.

  python benchmarks/peer_torch.py step [--batch 256] [--repeats 5] [--dtype float32]
                                       [--width 64] [--encoder resnet18|convn]
                                       [--ours PYTHON] [--json out.json]
  python benchmarks/peer_torch.py loader [--batch 256] [--steps 10] [--workers 2] [...]

Runs only where torch (and, for `loader`, torchvision) is installed; neither is a
dependency of this project (`pip install torch torchvision` into any environment).
The recipe is `benchmarks/train_step.py`'s: ResNet-18 with the CIFAR stem (3x3
stem, no max-pool) at --width (or, --encoder convn, the quickstart's ConvN), a
2-layer projection head (512 hidden, BN, ReLU, 128 out), NT-Xent over the global
batch at tau 0.2, SGD momentum 0.9 at lr 0.03.

step: the step on views augmented beforehand (random tensors: no augmentation in
the step), eager and `torch.compile`d, timed round-robin in one process (medians of
--repeats after a warm-up), channels_last, bfloat16 by autocast with --dtype
bfloat16. With --ours PYTHON (an interpreter with this project installed), our
`benchmarks/train_step.py` runs next, with the same batch, dtype and width, twice:
as training runs it (the on-device augmentation in the step, which the peer's does not
have) and with `--augment none` (the batch's gather and an identity crop left, the
nearest to the peer's work); the table holds all.
loader: end to end as lightly and solo-learn users run it without DALI: uint8
images through a DataLoader with --workers processes applying torchvision's v2
SimCLR CIFAR augmentation (random resized crop 0.08-1, flip, colour jitter 0.4 /
0.4 / 0.4 / 0.1 with p 0.8, grayscale p 0.2) to two views, then the eager step;
images/s over --steps steps after one warm-up step.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

try:
  import torch
  from torch import nn
  import torch.nn.functional as F
except ImportError:  # pragma: no cover - the message is the point
  sys.exit("benchmarks/peer_torch.py needs PyTorch: pip install torch torchvision")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import common  # noqa: E402

TEMPERATURE = 0.2
LEARNING_RATE = 0.03


class BasicBlock(nn.Module):
  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.shortcut = nn.Sequential()
    if stride != 1 or cin != cout:
      self.shortcut = nn.Sequential(
        nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
      )

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def _resnet18(width):
  """ResNet-18 with the CIFAR stem: (encoder, feature width)."""
  layers = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
  cin = width
  for i, n in enumerate((2, 2, 2, 2)):
    cout = width * 2**i
    for j in range(n):
      layers.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
      cin = cout
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
  return nn.Sequential(*layers), cin


def _convn(size=32):
  """The RandBit notebook's ConvN (`models.ConvN`): 3 conv3x3 stride-2 (32, 64, 64;
  conv-BN-ReLU, no bias), flatten, Dense 128-BN-ReLU: (encoder, feature width)."""
  layers, cin = [], 3
  for f in (32, 64, 64):
    layers += [nn.Conv2d(cin, f, 3, 2, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU()]
    cin, size = f, (size + 1) // 2
  layers += [nn.Flatten(), nn.Linear(cin * size * size, 128, bias=False), nn.BatchNorm1d(128),
             nn.ReLU()]  # fmt: skip
  return nn.Sequential(*layers), 128


class Model(nn.Module):
  """ResNet-18 (CIFAR stem) or the ConvN, and SimCLR's 2-layer projection head."""

  def __init__(self, width=64, hidden=512, out=128, encoder="resnet18"):
    super().__init__()
    self.encoder, cin = _resnet18(width) if encoder == "resnet18" else _convn()
    self.head = nn.Sequential(
      nn.Linear(cin, hidden, bias=False),
      nn.BatchNorm1d(hidden),
      nn.ReLU(),
      nn.Linear(hidden, out, bias=False),
    )

  def forward(self, x):
    return self.head(self.encoder(x))


def nt_xent(z1, z2, temperature=TEMPERATURE):
  """SimCLR's NT-Xent, computed in float32: 2N anchors, 2N - 2 negatives each."""
  z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
  n = z1.shape[0]
  sim = z @ z.T / temperature
  sim.fill_diagonal_(float("-inf"))
  target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
  return F.cross_entropy(sim, target)


def make_step(model, opt, dtype):
  def step(v1, v2):
    with torch.autocast(v1.device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
      z = model(torch.cat([v1, v2]))
    loss = nt_xent(*z.chunk(2))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()

  return step


def _sync(device):
  if device.type == "cuda":
    torch.cuda.synchronize()


def _setup(args, device):
  torch.manual_seed(0)
  model = Model(args.width, encoder=args.encoder).to(device).to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
  return model, opt


def _machine(device) -> str:
  name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {os.cpu_count()} cores"
  return f"torch {torch.__version__}, {name}"


def step_mode(args, device):
  model, opt = _setup(args, device)
  views = [
    torch.rand(args.batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
    for _ in range(2)
  ]
  eager = make_step(model, opt, args.dtype)
  fns = {"torch eager": eager, "torch.compile": torch.compile(eager)}
  first = {}
  for name, fn in fns.items():  # warm-up (compilation for torch.compile)
    t = time.perf_counter()
    fn(*views)
    _sync(device)
    first[name] = time.perf_counter() - t
  times = {name: [] for name in fns}
  for _ in range(args.repeats):
    for name, fn in fns.items():
      t = time.perf_counter()
      fn(*views)
      _sync(device)
      times[name].append(time.perf_counter() - t)
  rows = [
    {
      "impl": name,
      "step_ms": round(statistics.median(times[name]) * 1e3, 1),
      "images_per_s": round(args.batch / statistics.median(times[name]), 1),
      "first_call_s": round(first[name], 1),
      "augmentation_in_step": False,
    }
    for name in fns
  ]
  if args.ours:  # as training runs it, then without its augmentation, as the peer's
    rows += [_ours(args, OUR_AUGMENT), _ours(args, "none")]
  return rows


OUR_AUGMENT = "simclr_cifar"  # benchmarks/train_step.py's default: the recipe's


def _ours(args, augment: str) -> dict:
  """Our train_step benchmark with the same batch, dtype and width, in --ours, with the
  augmentation preset `augment` (the recipe's, or `none`: an identity crop)."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_step.py")
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "ours.json")
    cmd = [args.ours, script, "--batch", str(args.batch), "--repeats", str(args.repeats),
           "--dtype", args.dtype, "--width", str(args.width), "--encoder", args.encoder,
           "--augment", augment, "--json", out]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    with open(out) as f:
      ours = json.load(f)
  return {
    "impl": "contrastive (JAX, jit)" + ("" if augment == OUR_AUGMENT else f", augment={augment}"),
    "step_ms": ours["step_ms"],
    "images_per_s": ours["images_per_s"],
    "augmentation_in_step": True if augment == OUR_AUGMENT else "identity crop only",
    "machine": ours["machine"],
  }


class _TwoViews:
  def __init__(self, images, transform):
    self.images, self.transform = images, transform

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    x = self.images[i]
    return self.transform(x), self.transform(x)


def loader_mode(args, device):
  from torchvision.transforms import v2  # noqa: PLC0415

  transform = v2.Compose([
    v2.RandomResizedCrop(32, scale=(0.08, 1.0), antialias=True),
    v2.RandomHorizontalFlip(),
    v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
    v2.RandomGrayscale(p=0.2),
    v2.ToDtype(torch.float32, scale=True),
  ])  # fmt: skip
  gen = torch.Generator().manual_seed(0)
  images = torch.randint(0, 256, ((args.steps + 1) * args.batch, 3, 32, 32), dtype=torch.uint8,
                         generator=gen)  # fmt: skip
  loader = torch.utils.data.DataLoader(
    _TwoViews(images, transform), batch_size=args.batch, num_workers=args.workers, drop_last=True,
    persistent_workers=args.workers > 0, pin_memory=device.type == "cuda",
  )  # fmt: skip
  model, opt = _setup(args, device)
  step = make_step(model, opt, args.dtype)
  it = iter(loader)
  v1, v2_ = next(it)
  step(v1.to(device), v2_.to(device))  # warm-up
  _sync(device)
  t = time.perf_counter()
  for v1, v2_ in it:
    step(v1.to(device, non_blocking=True), v2_.to(device, non_blocking=True))
  _sync(device)
  elapsed = time.perf_counter() - t
  return [{
    "impl": f"torch eager + DataLoader ({args.workers} workers, torchvision v2)",
    "images_per_s": round(args.steps * args.batch / elapsed, 1),
    "step_ms": round(elapsed / args.steps * 1e3, 1),
    "augmentation_in_step": True,
  }]  # fmt: skip


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("mode", choices=("step", "loader"))
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--encoder", default="resnet18", choices=("resnet18", "convn"))
  parser.add_argument("--ours", default=None, help="a Python with this project, to run ours too")
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  if args.repeats < 5 or args.steps < 1:
    parser.error("--repeats must be >= 5 for a meaningful median, and --steps >= 1.")
  device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  rows = step_mode(args, device) if args.mode == "step" else loader_mode(args, device)
  print(_machine(device))
  model = f"ResNet-18 width {args.width}" if args.encoder == "resnet18" else "ConvN"
  print(f"batch {args.batch}, {args.dtype}, {model}:")
  for r in rows:
    print(f"  {r['impl']:>60}: {r['step_ms']:9.1f} ms/step  {r['images_per_s']:9.1f} images/s")
  common.write_json(args.json, {"machine": _machine(device), "rows": rows})


if __name__ == "__main__":
  main()
