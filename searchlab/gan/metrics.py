"""How close generated images are to real ones, in the feature space of an in-domain classifier.

- MedFID: the Frechet distance (Heusel et al. 2017) between Gaussians fitted to real and generated features,
  as torchmetrics' FrechetInceptionDistance computes it, but with the feature network of features.py (a
  classifier trained on the same medical images) instead of ImageNet's Inception: the MedFID proposal.
- KID (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, averaged over subsets
  (torchmetrics' KernelInceptionDistance on the same features); unbiased at small sample sizes, where FID is not.
- Precision and recall of generated images (Kynkaenniemi et al. 2019, k-NN manifolds, k = 3): precision = the
  share of generated samples inside the real manifold (fidelity), recall = the share of real samples inside the
  generated one (coverage). Recall rests on the generated samples' own k-NN radii, so one outlying sample whose
  radius spans the real set makes it jump (0 to 0.58 between two draws of one generator).
- Density and coverage (Naeem et al. 2020, k = 5): the same questions asked with the real images' radii only,
  which generated outliers cannot inflate: density = mean count of real k-NN balls a sample falls in, over k
  (about 1 for samples distributed as the real ones); coverage = share of real images whose k-NN ball holds a
  sample (mode dropping lowers it).
- Memorisation, which every score above rewards (a copy of the train set has MedFID 0, precision = recall = 1):
  `copying` = share of samples nearer their nearest training image than COPY_FRACTION of that image's own
  distance to its nearest other training image (the authenticity test of Alaa et al. 2022 with a stricter
  radius; Meehan et al. 2020 compare the same distances); `duplicates` = share of samples with another sample
  nearer than DUPLICATE_FRACTION of the training images' median nearest-neighbour distance (collapse onto a few
  images). Real images give the floors: held-out ones for copying, the training images themselves (as many as
  the samples) for duplicates.
- Label agreement (conditional generators): how often the feature network's own classifier head puts a sample
  in the class it was asked for, balanced over classes; its accuracy on held-out real images is the floor.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
from torch import nn

PR_NEIGHBOURS = 3
DC_NEIGHBOURS = 5                         # Naeem et al.'s k
KID_SUBSETS, KID_SUBSET_SIZE = 50, 100    # torchmetrics' defaults are 100 x 1000, more images than small sets have
# Radii as fractions of real nearest-neighbour distances, measured on BreastMNIST (feature network of seed 0):
# a sample within a quarter of its training image's own neighbour distance is a near-copy. Held-out images:
# 0.013 (val) and 0.026 (test) of them are; samples of two trained DCGANs and a StyleGAN2 (3 draws each): 0
# (99% of them are at >= 0.6 of it); a copy of the train set: 1. (At the radius itself, Alaa's test, held-out
# images score 0.53 and GANs 0.17-0.43: too close for partial copying to show.)
COPY_FRACTION = 0.25
# Near-duplicates among samples at a quarter of the median: train images 0.011, trained GANs 0, blurred train
# images 0.095, ten train images repeated 546 times 1.0.
DUPLICATE_FRACTION = 0.25


@dataclass(frozen=True)
class SampleStats:
    medfid: float
    kid: float
    precision: float
    recall: float
    density: float = float("nan")
    coverage: float = float("nan")
    copying: float = float("nan")
    duplicates: float = float("nan")
    label_agreement: float | None = None   # conditional generators only

    def as_dict(self) -> dict[str, float]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def min_real_images(num_features: int) -> int:
    """Real images the statistics need: more than the feature dimension, so the covariance has full rank
    (FID's matrix square root is meaningless otherwise), and enough for k-NN radii."""
    return max(num_features + 1, 2 * DC_NEIGHBOURS + 2)


class Reference:
    """The real images' features, computed once per trial (and the torchmetrics states that hold them)."""

    def __init__(self, features: nn.Module, real01: torch.Tensor, batch_size: int = 256) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        self.features, self.batch_size = features, batch_size
        self.real_features = embed(features, real01, batch_size)
        self.own_nn = nearest(self.real_features, self.real_features, skip_self=True)[0]
        self.duplicate_radius = DUPLICATE_FRACTION * float(self.own_nn.median())
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

    def score(self, fake01: torch.Tensor, labels: torch.Tensor | None = None) -> SampleStats:
        """Every statistic of generated images in [0, 1] against the reference; `labels` (the classes the
        samples were asked for) adds label_agreement."""
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
        fake = embed(self.features, fake01, self.batch_size)
        precision, recall = precision_recall(self.real_features, fake)
        density, coverage = density_coverage(self.real_features, fake)
        agreement = None if labels is None else label_agreement(self.features, fake01, labels)
        return SampleStats(float(self.fid.compute()), float(kid_mean), precision, recall, density, coverage,
                           self.copying(fake), duplicate_share(fake, self.duplicate_radius), agreement)

    def copying(self, queries: torch.Tensor) -> float:
        """Share of `queries` (features) near-copies of a training image (see COPY_FRACTION)."""
        distance, index = nearest(queries, self.real_features)
        return float((distance <= COPY_FRACTION * self.own_nn[index]).double().mean())

    def duplicates(self, queries: torch.Tensor) -> float:
        return duplicate_share(queries, self.duplicate_radius)

    def floors(self, held_out01: torch.Tensor, held_out_labels: torch.Tensor) -> dict[str, float]:
        """What real images score, to read a trial's numbers against: held-out images against the train images
        (MedFID, copying, the classifier's balanced accuracy as label_agreement_floor) and the train images
        among themselves for duplicates (as many images as a trial's samples: nearest distances shrink with
        more images)."""
        stats = self.score(held_out01, held_out_labels)
        # FID falls as images grow (its bias roughly as 1/images), and a trial scores as many samples as train
        # images: the floor's count says how far to read it as a floor
        floors = {"medfid_floor": stats.medfid, "medfid_floor_images": float(len(held_out01)),
                  "copying_floor": stats.copying, "duplicates_floor": self.duplicates(self.real_features)}
        if stats.label_agreement is not None:
            floors["label_agreement_floor"] = stats.label_agreement
        return floors


@torch.no_grad()
def embed(features: nn.Module, images01: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([features(images01[i:i + batch_size]) for i in range(0, len(images01), batch_size)]).double()


def nearest(queries: torch.Tensor, points: torch.Tensor, skip_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's distance to its nearest point and that point's index. Exact distances (not the matrix-product
    shortcut, which puts an image's copy at 1e-7 from it instead of 0); skip_self when queries are the points."""
    distances = torch.cdist(queries, points, compute_mode="donot_use_mm_for_euclid_dist")
    if skip_self:
        distances.fill_diagonal_(float("inf"))
    return distances.min(dim=1)


def duplicate_share(features: torch.Tensor, radius: float) -> float:
    """Share of points with another point of the same set within `radius` (near-copies of one another)."""
    if len(features) < 2:
        return 0.0
    return float((nearest(features, features, skip_self=True)[0] <= radius).double().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_NEIGHBOURS) -> tuple[float, float]:
    """Improved precision/recall (Kynkaenniemi et al. 2019) between feature sets (N, D) and (M, D)."""
    return _coverage(real, fake, k), _coverage(fake, real, k)


def _coverage(manifold: torch.Tensor, queries: torch.Tensor, k: int) -> float:
    """Share of `queries` within the k-NN radius of at least one point of `manifold`."""
    between = torch.cdist(queries, manifold)
    return float((between <= _radii(manifold, k).unsqueeze(0)).any(dim=1).double().mean())


def _radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest other point."""
    return torch.cdist(points, points).kthvalue(k + 1, dim=1).values   # +1: the point itself is at 0


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = DC_NEIGHBOURS) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, eqs. for density and coverage) with the real k-NN radii."""
    inside = torch.cdist(real, fake) < _radii(real, k).unsqueeze(1)    # (N real, M fake)
    return float(inside.double().sum() / (k * fake.shape[0])), float(inside.any(dim=1).double().mean())


@torch.no_grad()
def label_agreement(features: nn.Module, images01: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Per class, the share of images the feature network's classifier assigns to `labels`, averaged over the
    classes present (balanced: chance is 1 / classes whatever the class mix); None without a usable head."""
    predicted = features.classify(images01) if hasattr(features, "classify") else None
    if predicted is None:
        return None
    shares = [float((predicted[labels == c] == c).double().mean()) for c in labels.unique().tolist()]
    return sum(shares) / len(shares)
