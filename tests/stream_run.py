"""Trains the tiny configs/imagenet100.py of tests/test_streaming.py on TFDS mock data
as one of several processes: `python tests/stream_run.py WORKDIR DATA_DIR PORT N I`
(process I of N, joined through 127.0.0.1:PORT by `jax.distributed`)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from contrastive import build  # noqa: E402

if __name__ == "__main__":
  workdir, data_dir, port, count, index = sys.argv[1:6]
  build.initialize_distributed(f"127.0.0.1:{port}", int(count), int(index))
  import tensorflow_datasets as tfds  # noqa: PLC0415

  from contrastive import train  # noqa: PLC0415
  from tests import test_streaming  # noqa: PLC0415

  with tfds.testing.mock_data(num_examples=test_streaming.MOCK_EXAMPLES):
    train.train_and_evaluate(test_streaming.tiny_config(data_dir), workdir)
