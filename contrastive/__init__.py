"""contrastive: reference JAX implementations for studying the contrastive loss.

`import contrastive` gives the pure kernels and analyses (JAX only); figures live
in `contrastive.report` (imports matplotlib) and are imported on their own.
"""

from contrastive import analysis
from contrastive import losses
from contrastive import metrics
from contrastive import numerics
from contrastive import pairs

__all__ = ["analysis", "losses", "metrics", "numerics", "pairs"]
