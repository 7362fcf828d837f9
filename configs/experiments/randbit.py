"""Chen, Luo & Li (NeurIPS 2021) Fig. 5a: RandBit bits suppress the digit feature.

Command (a sweep: tau in {0.05, 0.1, 0.2} x bits in {0, 5, 10, 15, 20}):
  python run.py --config=configs/experiments/randbit.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/randbit.py:scale=paper,dataset=mnist --workdir=DIR

Writes DIR/sweep.json and DIR/report.md: linear accuracy against bits per tau
beside the published MNIST numbers, and whether accuracy falls as bits grow for
every tau. `paper`: the official notebook's settings (configs/randbit.py: batch
1000, 10 epochs). `small`: the embedded `digits` (MNIST cannot be downloaded
here), batch 128, 20 epochs; 15 runs, under 30 minutes on 2 CPU cores.
"""

from configs import common
from configs import randbit
from contrastive import sweep

TEMPERATURES = (0.05, 0.1, 0.2)
BITS = (0, 5, 10, 15, 20)


def small():
  c = randbit.get_config()
  c.data.update(name="digits", batch_size=128)
  c.train.num_epochs = 20
  return c


def get_config(arg=None):
  return common.experiment(
    arg,
    small=small,
    paper=randbit.get_config,
    runs=sweep.grid(loss__temperature=TEMPERATURES, data__randbit_bits=BITS),
    report="randbit",
  )
