"""contrastive: reference JAX implementations for studying the contrastive loss.

`import contrastive` gives the pure kernels and analyses (JAX only); every other
module (the trainer `contrastive.train`, the paper studies `contrastive.experiments`,
which import matplotlib, `contrastive.results`, ...) is imported on first use, as an
attribute (`contrastive.experiments.names()`) or by its own import.
"""

import importlib
import pkgutil

from contrastive import analysis
from contrastive import losses
from contrastive import metrics
from contrastive import numerics
from contrastive import pairs

__version__ = "0.1.0"  # pyproject.toml reads it from here
__all__ = ["analysis", "losses", "metrics", "numerics", "pairs"]


def __getattr__(name: str):
  """`contrastive.NAME` for any submodule NAME, imported on first access."""
  if name in {m.name for m in pkgutil.iter_modules(__path__)}:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
