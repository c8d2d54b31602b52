"""How close generated images are to real ones, in the feature space of an in-domain classifier.

- MedFID: the Frechet distance (Heusel et al. 2017) between Gaussians fitted to real and generated features,
  as torchmetrics' FrechetInceptionDistance computes it, but with the feature network of features.py (a
  classifier trained on the same medical images) instead of ImageNet's Inception: the MedFID proposal.
- KID (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, averaged over subsets
  (torchmetrics' KernelInceptionDistance on the same features); unbiased at small sample sizes, where FID is not.
- Precision and recall of generated images (Kynkaenniemi et al. 2019, k-NN manifolds, k = 3): precision = the
  share of generated samples inside the real manifold (fidelity), recall = the share of real samples inside the
  generated one (coverage). Mode collapse shows as recall near 0 while precision can stay high.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

PR_NEIGHBOURS = 3
KID_SUBSETS, KID_SUBSET_SIZE = 50, 100    # torchmetrics' defaults are 100 x 1000, more images than small sets have


@dataclass(frozen=True)
class SampleStats:
    medfid: float
    kid: float
    precision: float
    recall: float

    def as_dict(self) -> dict[str, float]:
        return {"medfid": self.medfid, "kid": self.kid, "precision": self.precision, "recall": self.recall}


def min_real_images(num_features: int) -> int:
    """Real images the statistics need: more than the feature dimension, so the covariance has full rank
    (FID's matrix square root is meaningless otherwise), and enough for k-NN radii."""
    return max(num_features + 1, 2 * PR_NEIGHBOURS + 2)


class Reference:
    """The real images' features, computed once per trial (and the torchmetrics states that hold them)."""

    def __init__(self, features: nn.Module, real01: torch.Tensor, batch_size: int = 256) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        self.features, self.batch_size = features, batch_size
        self.real_features = embed(features, real01, batch_size)
        n = len(real01)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False, normalize=True)
        with warnings.catch_warnings():   # KID keeps every feature vector: a small set's few MB, so no warning
            warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer")
            self.kid = KernelInceptionDistance(feature=features, reset_real_features=False, normalize=True,
                                               subsets=KID_SUBSETS, subset_size=min(n, KID_SUBSET_SIZE))
        for start in range(0, n, batch_size):
            batch = real01[start:start + batch_size]
            self.fid.update(batch, real=True)
            self.kid.update(batch, real=True)

    def score(self, fake01: torch.Tensor) -> SampleStats:
        """MedFID, KID, precision and recall of generated images in [0, 1] against the reference."""
        self.fid.reset()
        self.kid.reset()
        for start in range(0, len(fake01), self.batch_size):
            batch = fake01[start:start + self.batch_size]
            self.fid.update(batch, real=False)
            self.kid.update(batch, real=False)
        self.kid.subset_size = min(len(self.real_features), len(fake01), KID_SUBSET_SIZE)
        with torch.random.fork_rng():   # KID draws its subsets from torch's RNG: the same ones every time
            torch.manual_seed(0)
            kid_mean, _ = self.kid.compute()
        precision, recall = precision_recall(self.real_features, embed(self.features, fake01, self.batch_size))
        return SampleStats(float(self.fid.compute()), float(kid_mean), precision, recall)


@torch.no_grad()
def embed(features: nn.Module, images01: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([features(images01[i:i + batch_size]) for i in range(0, len(images01), batch_size)]).double()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_NEIGHBOURS) -> tuple[float, float]:
    """Improved precision/recall (Kynkaenniemi et al. 2019) between feature sets (N, D) and (M, D)."""
    return _coverage(real, fake, k), _coverage(fake, real, k)


def _coverage(manifold: torch.Tensor, queries: torch.Tensor, k: int) -> float:
    """Share of `queries` within the k-NN radius of at least one point of `manifold`."""
    within = torch.cdist(manifold, manifold)
    radii = within.kthvalue(k + 1, dim=1).values       # the k-th neighbour, not counting the point itself
    between = torch.cdist(queries, manifold)
    return float((between <= radii.unsqueeze(0)).any(dim=1).double().mean())
