"""contrastive: reference JAX implementations for studying the contrastive loss.

`import contrastive` gives the pure kernels and analyses (JAX only); the trainer
(`contrastive.train`), the paper studies (`contrastive.experiments`, which import
matplotlib) and the rest are imported on their own.
"""

from contrastive import analysis
from contrastive import losses
from contrastive import metrics
from contrastive import numerics
from contrastive import pairs

__all__ = ["analysis", "losses", "metrics", "numerics", "pairs"]
