"""The CIFAR-like procedural `objects` / `objects100`: deterministic, balanced, structured."""

import numpy as np

from contrastive.data import objects
from contrastive.data import sources


def _small(seed=0, fine_classes=True):
  return objects.generate(seed, fine_classes=fine_classes, num_train=400, num_test=100)


def test_generation_is_deterministic_balanced_and_shaped_like_cifar():
  (x, y, coarse), (xt, yt, coarse_t) = _small()
  (x2, y2, _), _ = _small()
  np.testing.assert_array_equal(x, x2)
  np.testing.assert_array_equal(y, y2)
  assert x.shape == (400, 32, 32, 3) and x.dtype == np.uint8 and xt.shape == (100, 32, 32, 3)
  assert np.bincount(y, minlength=100).tolist() == [4] * 100  # exactly balanced
  np.testing.assert_array_equal(coarse, y // objects.FINE_PER_SUPERCLASS)
  assert not np.array_equal(_small(seed=1)[0][0], x)  # another seed, other images
  (x10, y10, fine), _ = _small(fine_classes=False)
  assert np.bincount(y10).tolist() == [40] * 10
  np.testing.assert_array_equal(fine // objects.FINE_PER_SUPERCLASS, y10)
  # No two training images alike, and no test image a copy of a training one.
  assert objects.near_duplicate_fraction(x, xt) == 0.0
  assert objects.near_duplicate_fraction(x, x[:50]) == 1.0  # the measure does find copies


def test_fine_classes_share_their_superclass_structure():
  bp = objects.blueprints()
  sup = bp["superclass"]
  for s in range(objects.SUPERCLASSES):
    members = sup == s
    for key in ("body", "part", "num_parts", "body_aspect"):
      assert len(set(bp[key][members].tolist())) == 1, (s, key)  # shared
    assert len({tuple(a) for a in np.round(bp["angles"][members], 6)}) == 5  # each its own
  # Superclasses differ in their (body, part) pair.
  pairs = {(int(bp["body"][sup == s][0]), int(bp["part"][sup == s][0])) for s in range(20)}
  assert len(pairs) == 20


def test_objects100_source_keeps_the_superclasses(monkeypatch):
  def small_load(name, seed=0):
    (tr, trl, trc), (te, tel, tec) = _small(seed, fine_classes=name == "objects100")
    return (tr, trl), (te, tel), 100 if name == "objects100" else 10, (trc, tec)

  monkeypatch.setattr(objects, "load", small_load)
  source = sources.load("objects100", train_examples=200)
  assert source.num_classes == 100 and len(source.train.labels) == 200
  coarse_train, coarse_test, classes = source.label_sets["coarse"]
  assert classes == 20 and len(coarse_train) == 200 and len(coarse_test) == 100
  np.testing.assert_array_equal(coarse_train, source.train.labels // 5)
  shard = sources.load("objects", process_index=1, process_count=2)
  fine_train, _, classes = shard.label_sets["fine"]
  assert classes == 50 and len(fine_train) == len(shard.train.labels) == 200
  np.testing.assert_array_equal(fine_train // 5, shard.train.labels)
