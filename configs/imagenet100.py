"""Wang & Liu (CVPR 2021) on ImageNet-100: NPID memory bank, ResNet-50, 224x224, 200 epochs.

Command (loss and temperature as arguments; Table 1's grid):
  python run.py --config=configs/imagenet100.py:loss=contrastive,temperature=0.3 \
    --config.data.data_dir=DIR --workdir=DIR

The published numbers: `contrastive.experiments.wang_liu_table1` (PUBLISHED["imagenet100"]).
The recipe (spec 1.4): `contrastive.recipes.wang_liu_imagenet100`. ImageNet-100 is CMC's
100-class subset of ImageNet-1k (`contrastive.data.sources.IMAGENET100_CLASSES`), streamed
from a prepared TFDS imagenet2012 (crops on the host, colour on the device; each host reads
its shard): put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in DIR/downloads/manual,
then run: tfds build imagenet2012 --data_dir=DIR. On a Cloud TPU pod slice DIR may be a
gs:// bucket (README).
"""

from contrastive import config
from contrastive import recipes


def get_config(arg=None):
  return config.apply(recipes.wang_liu_imagenet100(), arg)
