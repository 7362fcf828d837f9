"""Wang & Liu (CVPR 2021) Fig. 8: the positive and the 10 nearest negatives across tau.

Command (a sweep of 6 runs):
  python run.py --config=configs/experiments/local_separation.py:scale=small --workdir=DIR
  python run.py --config=configs/experiments/local_separation.py:scale=paper --workdir=DIR

Writes DIR/report.md: each run's mean similarity to the positive and to its 10
nearest negatives on the test images, the claim "smaller tau gives a larger gap
between the positive and the nearest negative" checked on our numbers,
similarity_profile.png and embedding.png (2-D test embeddings coloured by label).

Grid: the contrastive loss at tau in {0.07, 0.2, 0.3, 0.5, 0.7, 1.0}
(`loss=hard_contrastive` for the hard loss). `paper`: configs/cifar10.py (ResNet-18,
memory bank, 200 epochs). `small`: the Table 1 small settings (embedded `shapes`,
the quickstart's ConvN, in-batch negatives, 6 epochs per run).
"""

from configs import cifar10
from configs import common
from configs.experiments import wang_liu_table1
from contrastive import sweep


def get_config(arg=None):
  args = common.experiment_arguments(arg)
  loss = args.pop("loss", "contrastive")
  return common.experiment(
    common.join_arguments(args),
    small=wang_liu_table1.small,
    paper=cifar10.get_config,
    runs=sweep.grid(loss__name=(loss,), loss__temperature=wang_liu_table1.TEMPERATURES),
    report="local_separation",
  )
