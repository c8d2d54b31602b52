"""Where studies/breastmnist_search.yaml's points_to_evaluate come from: recipes compared by cross-validation
over BreastMNIST train+val only (the test split is never read), in plain torch.

    python bench/recipe_cv.py EPOCHS WIDTH shift|roll|affine|jitter|erase [SEEDS] [INPUT_SCALE] [FOLDS] [fp32|bf16]
                              [FIRST_SEED] [SAVE.npy]
    python bench/recipe_cv.py score SAVE.npy [SAVE.npy ...]
    RECIPE_BLOCK=residual python bench/recipe_cv.py ...   (each stage's two convs as a residual block)
    RECIPE_SAM=0.05 python bench/recipe_cv.py ...         (sharpness-aware minimisation with that rho)
    RECIPE_DISTILL=0.5 python bench/recipe_cv.py ...      (half the loss from an inner-CV teacher's probabilities)
    RECIPE_SYNTH=1 python bench/recipe_cv.py ...          (plus as many images from a conditional GAN of the fold's;
                                                           RECIPE_SYNTH_WEIGHT, _UNTIL, _BALANCED, _ITERATIONS)
    RECIPE_SSL=1 python bench/recipe_cv.py ...            (each fold's trunk first pretrained by SimCLR on its
                                                           training images; RECIPE_SSL_EPOCHS, _TRUNK_LR, _CACHE)
    RECIPE_AVERAGE=0.98 python bench/recipe_cv.py ...     (the same models also scored as weight averages: an EMA
                                                           with that decay per step, and SWA of the last quarter)

FOLDS (default 4) outer folds over the 624 train+val images; on each, SEEDS models (default 4) of one recipe train
on the other folds (416 images with 3 folds, 468 with 4, 520 with 6: as much as each fold model of a study's bag
with that cv_folds sees; AdamW lr 1e-3, weight decay 1e-4, cosine, batch 32, label smoothing 0.05, a 3-stage
VGG-style CNN of the given width, last epoch kept; INPUT_SCALE 2: the 28-px input upsampled to 56 inside the net
and one more stage, 4: 112 px and two more, model.input_scale) and score the held-out fold with flip TTA, and with
flips x 2-pixel shifts on the same models. Prints, for each, the out-of-fold AUC of each seed's models, their mean,
and that of the seeds' average (a seed ensemble), then the same for accuracy at p > 0.5, and whether a threshold
tuned for accuracy on out-of-fold predictions beats 0.5 on other images. FIRST_SEED (default 0) lets runs on
separate cores train different seeds (seed s of fold o is torch seed 100 * o + s); SAVE writes the out-of-fold
probabilities (TTA x seed x image), and `score` prints the same table for the seeds of several such files together
(one seed ensemble; nothing trained). One core each; the study's numbers came from runs of 20/40 epochs, widths
16/32/48, shift/affine, input scale 1/2, 3/4/6 folds (~4-35 min each; "shift" then was today's "roll": flip_shift's
one wrap-around shift per batch, before it shifted each image with reflected borders), of shift vs jitter (shift,
then per-image contrast and brightness), and of input scale 4 at width 8 (20 and 40 epochs) and 3 at width 12
vs 2 at 16, and of residual stages (RECIPE_BLOCK=residual: the two convs plus the stage's input, through a 1x1
conv where the width changes) and of random erasing ("erase": flip_shift, then with p 0.5 one 4-10 px rectangle
per image set to that image's mean) beside the plain shift, and of SAM (RECIPE_SAM=0.05: each step's gradient taken
at the weights moved 0.05, in L2 norm, up the batch's gradient, then applied to the unmoved ones; twice the steps'
cost) beside it, and of distillation from out-of-fold teachers (RECIPE_DISTILL=0.5: half the loss from an inner
cross-validation bag's probabilities for the model's own training images) beside it, and of GAN-synthetic images
(RECIPE_SYNTH=1 RECIPE_SYNTH_WEIGHT=0.5 RECIPE_SYNTH_UNTIL=0.5 recipe_cv 40 16 shift 1 2 5 fp32 S, S = 0, 1: per
outer fold a class-conditional DCGAN with DiffAugment, bench/recipe_synth.py, 1200 steps on that fold's training
images only, then as many synthetic images as real ones in the real class mix, at half the loss weight, in the
first 20 epochs): AUC 0.916 0.906 vs 0.911 0.917, accuracy 0.875 0.872 vs 0.873 0.878, 2-seed ensemble 0.924 /
0.886 vs 0.921 / 0.889; plain seeds rerun on that machine (torch 2.14): 0.913 0.911, 0.873 0.870, ensemble 0.921 /
0.873. ~1.5-2.5x the time on a busy machine (1591, 1692 s vs 1101, 395 s; each GAN 33-179 s): no lift in AUC
(seed 0: 3 folds up, 2 down); the accuracies sit within the two plain runs' spread. The samples (grids
beside SAVE) are ultrasound texture with blurry dark blobs, far from real lesions, and 2400 steps looked no better
(that run, at full weight for all epochs, did not finish in time): from ~500 images this GAN adds nothing the
classifier's own augmentation lacks. And of self-supervised pretraining (RECIPE_SSL=1 RECIPE_SSL_EPOCHS=60
RECIPE_SSL_CACHE=DIR recipe_cv 40 16 shift 1 2 5 fp32 S, S = 0, 1: per outer fold SimCLR, bench/recipe_ssl.py, of
the network minus its Linear on that fold's training images only, unlabelled, 60 epochs of 2 x 256 views,
temperature 0.5; then each seed's model from that trunk, a new head, the recipe unchanged) beside plain reruns in
the same session (identical to the last ones): AUC 0.902 0.918 vs 0.913 0.911, accuracy 0.870 0.880 vs 0.873
0.870, 2-seed ensemble 0.917 / 0.875 vs 0.921 / 0.873; the trunk at 0.3 x the lr (RECIPE_SSL_TRUNK_LR=0.3, same
trunks): 0.904 0.919, 0.865 0.872, ensemble 0.917 / 0.878. Pretraining: 479-516 s a fold (~8 s an epoch on the
busy 2-core machine, 4 idle), one per fold shared by both seeds through the cache; runs 2104 s (3 folds pretrained
in it, 2 by a side process), 498 s (all read), 638, 643 s vs 625, 564 s plain. The trunk does learn something: a
label kNN on its own training images' features (a diagnostic) goes from 0.66-0.70 AUC at random init to
0.77-0.80; but fine-tuned, the models land where plain ones do (per fold 5 of 10 up, 5 down; seed 0 lower, seed 1
higher): no lift. 60 epochs (120 steps) is short for SimCLR; longer pretraining did not fit the session. And of
weight averages (RECIPE_AVERAGE=0.98 recipe_cv 40 16 shift 1 2 5 fp32 S, S = 0, 1; 716, 720 s on the busy
machine): the last epoch's weights of those runs give the plain numbers exactly (AUC 0.913 0.911, accuracy 0.873
0.870, 2-seed ensemble 0.921 / 0.873); their EMA (decay 0.98 a step, weights and BatchNorm statistics) 0.912 0.912,
0.865 0.872, ensemble 0.921 / 0.869; their SWA (the last 10 epochs' ends, BatchNorm recomputed) 0.911 0.912, 0.872
0.875, ensemble 0.921 / 0.880: no lift (the cosine schedule ends at lr 0, where an average would sit).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "bench")]
from _common import data_root  # noqa: E402

from searchlab.augment.policies import random_shift  # noqa: E402
from searchlab.imbalance import ImbalanceSpec, choose_threshold  # noqa: E402

from recipe_ssl import EPOCHS as SSL_EPOCHS, TEMPERATURE, knn_auc, pretrain  # noqa: E402
from recipe_synth import grid, synthetic_set  # noqa: E402

SCORE = sys.argv[1:2] == ["score"]   # score A.npy [B.npy ...]: the seeds of SAVE files as one ensemble
if len(sys.argv) < (3 if SCORE else 4):
    sys.exit("usage: python bench/recipe_cv.py EPOCHS WIDTH shift|roll|affine|jitter|erase [SEEDS] [INPUT_SCALE] "
             "[FOLDS] [fp32|bf16] [FIRST_SEED] [SAVE.npy]  (e.g. 40 16 shift 2 2 5: the study's first recipe), or "
             "python bench/recipe_cv.py score SAVE.npy [SAVE.npy ...]")
if not SCORE:
    EPOCHS, WIDTH, AUGMENT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    SEEDS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    INPUT_SCALE = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    FOLDS = int(sys.argv[6]) if len(sys.argv) > 6 else 4
    PRECISION = sys.argv[7] if len(sys.argv) > 7 else "fp32"   # bf16: autocast + channels_last (train.precision)
    FIRST_SEED = int(sys.argv[8]) if len(sys.argv) > 8 else 0
    SAVE = sys.argv[9] if len(sys.argv) > 9 else None
    STAGES = 3 + INPUT_SCALE.bit_length() - 1   # each doubling of the input adds a stage: the last is 7x7 again
RESIDUAL = os.environ.get("RECIPE_BLOCK", "plain") == "residual"   # each stage's two convs as a residual block
# RECIPE_SAM=RHO: sharpness-aware minimisation (Foret et al. 2021): each step's gradient is taken at the weights
# moved RHO (in L2 norm) up the batch's own gradient, then applied to the unmoved weights; twice the cost per step
SAM_RHO = float(os.environ.get("RECIPE_SAM", "0"))
# RECIPE_DISTILL=ALPHA: each model also learns, with weight ALPHA, a teacher's probabilities for its training images:
# out-of-fold ones, from a bag of the same recipe trained by an inner cross-validation over those images only (so a
# teacher never saw the image it labels, nor the held-out fold). Where the teacher doubts a label, the target is
# softened: label refinement for noisy labels, as a study could do with its best bag's out-of-fold predictions.
DISTILL = float(os.environ.get("RECIPE_DISTILL", "0"))
# RECIPE_SYNTH=K: each outer fold also trains a class-conditional GAN on its training images only
# (bench/recipe_synth.py), and its models train on those plus K times as many synthetic images, labelled in the real
# class proportions (half of each class with RECIPE_SYNTH_BALANCED=1), their loss weighted RECIPE_SYNTH_WEIGHT
# (default 1), for the first RECIPE_SYNTH_UNTIL (default 1: all) of the epochs; normalised as the real images.
SYNTH = float(os.environ.get("RECIPE_SYNTH", "0"))
SYNTH_BALANCED = os.environ.get("RECIPE_SYNTH_BALANCED", "0") == "1"
SYNTH_WEIGHT = float(os.environ.get("RECIPE_SYNTH_WEIGHT", "1"))
SYNTH_UNTIL = float(os.environ.get("RECIPE_SYNTH_UNTIL", "1"))
# RECIPE_SSL=1: each outer fold first pretrains the network's trunk (all but its final Linear) by SimCLR on the fold's
# training images alone, unlabelled (bench/recipe_ssl.py; RECIPE_SSL_EPOCHS, default 100, ~4 s each at width 16,
# input scale 2); each seed's model then starts from that trunk with a new head and the unchanged recipe, the trunk
# at RECIPE_SSL_TRUNK_LR (default 1) times the lr. One pretraining per fold (its seed the fold's alone), the same for
# every FIRST_SEED: with RECIPE_SSL_CACHE=DIR saved there and read back, so runs of other seeds skip it.
SSL = os.environ.get("RECIPE_SSL", "0") == "1"
SSL_TRUNK_LR = float(os.environ.get("RECIPE_SSL_TRUNK_LR", "1"))
SSL_CACHE = os.environ.get("RECIPE_SSL_CACHE")
# RECIPE_AVERAGE=DECAY: each model is also scored as two averages of its weights along the same training (which they
# leave as it is, so the plain rows stay those of a run without it): an exponential moving average of the weights
# and BatchNorm statistics, updated every step with that decay (timm's ModelEmaV2), and stochastic weight averaging
# (Izmailov et al. 2018) of the weights at the end of each of the last quarter of the epochs, its BatchNorm
# statistics then recomputed on the un-augmented training images.
AVERAGE_DECAY = float(os.environ.get("RECIPE_AVERAGE", "0"))
# Test-time views scored side by side on the same models: the flips the study's export uses, and flips x the
# 2-pixel rolls (the shifts the roll augmentation trains on).
TTA_VIEWS = {"flip": [(0, 0)], "flip+shift": [(dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2)]}
# the weights scored: the last epoch's, and with RECIPE_AVERAGE the two averages of them
WEIGHTS_SCORED = ("last", "EMA", "SWA") if AVERAGE_DECAY else ("last",)


def scored_name(tta: str, weights: str) -> str:
    return tta if weights == "last" else f"{tta}, {weights}"


SCORED = [scored_name(tta, weights) for weights in WEIGHTS_SCORED for tta in TTA_VIEWS]


class ResidualStage(nn.Module):
    """A stage's two 3x3 convs plus its input (a 1x1 conv where the width changes), then ReLU: a ResNet basic block."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                   nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.skip = (nn.Identity() if channels == width
                     else nn.Sequential(nn.Conv2d(channels, width, 1), nn.BatchNorm2d(width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.convs(x) + self.skip(x))


def stage(channels: int, width: int) -> list[nn.Module]:
    if RESIDUAL:
        return [ResidualStage(channels, width)]
    return [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]


def network() -> nn.Sequential:
    layers: list[nn.Module] = []
    if INPUT_SCALE > 1:
        layers.append(nn.Upsample(scale_factor=INPUT_SCALE, mode="bilinear", align_corners=False))
    channels = 1
    for index in range(STAGES):
        width = WIDTH * 2 ** index
        layers += [*stage(channels, width), nn.MaxPool2d(2) if index < STAGES - 1 else nn.Identity()]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(channels, 2))


def augment(x: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if AUGMENT == "shift":   # the flip_shift policy: a shift per image, borders reflected
        return random_shift(x)
    if AUGMENT == "jitter":   # flip_shift, then per-image contrast x[0.8, 1.2] and brightness +-0.1 (of the std)
        n = x.shape[0]
        x, mean = random_shift(x), x.mean((1, 2, 3), keepdim=True)
        contrast, brightness = 0.8 + 0.4 * torch.rand(n, 1, 1, 1), 0.2 * torch.rand(n, 1, 1, 1) - 0.1
        return (x - mean) * contrast + mean + brightness
    if AUGMENT == "erase":   # flip_shift, then with p 0.5 one 4-10 px rectangle per image set to its mean
        return random_erase(random_shift(x))
    if AUGMENT == "roll":   # flip_shift before: one wrap-around shift per batch
        dy, dx = torch.randint(-2, 3, (2,))
        return torch.roll(x, (int(dy), int(dx)), (2, 3))
    n = x.shape[0]   # affine: rotation +-15 degrees, zoom 1 +- 0.15, shift +- 10% of the side
    angle = (torch.rand(n) * 2 - 1) * np.pi / 12
    zoom = 1 + (torch.rand(n) * 2 - 1) * 0.15
    shift = (torch.rand(n, 2) * 2 - 1) * 0.2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)


def random_erase(x: torch.Tensor) -> torch.Tensor:
    x, side = x.clone(), x.shape[-1]
    for image in x:   # views into the clone: erased in place
        if torch.rand(()) >= 0.5:
            continue
        h, w = torch.randint(4, 11, (2,)).tolist()
        top, left = int(torch.randint(0, side - h + 1, ())), int(torch.randint(0, side - w + 1, ()))
        image[:, top:top + h, left:left + w] = image.mean()
    return x


def fit_and_score(images: torch.Tensor, labels: np.ndarray, train: np.ndarray, held: np.ndarray, seed: int,
                  teacher: np.ndarray | None = None, synth: tuple | None = None,
                  trunk: dict | None = None) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    mean, std = images[train].mean(), images[train].std()
    x, y = (images[train] - mean) / std, torch.from_numpy(labels[train]).long()
    if teacher is not None:   # targets: the hard label (smoothed as ever) and, weighted DISTILL, the teacher's
        y = torch.from_numpy(np.stack([labels[train], teacher], 1)).float()
    weights = torch.ones(len(train))
    if synth is not None:   # the fold's GAN images after the real ones, normalised as the real ones
        x, y = torch.cat([x, (synth[0] - mean) / std]), torch.cat([y, torch.from_numpy(synth[1]).long()])
        weights = torch.cat([weights, torch.full((len(synth[1]),), SYNTH_WEIGHT)])
    model = network()   # initialised as ever, so the seed's batches and augmentations match a plain run's
    params = model.parameters()
    if trunk is not None:   # the fold's self-supervised trunk under a new head
        model[:-1].load_state_dict(trunk)
        params = [{"params": model[:-1].parameters(), "lr": 1e-3 * SSL_TRUNK_LR}, {"params": model[-1].parameters()}]
    if PRECISION == "bf16":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(params, 1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    averages = weight_averages(model)
    for epoch in range(EPOCHS):
        model.train()
        used = len(x) if epoch < SYNTH_UNTIL * EPOCHS else len(train)   # synthetic images only up to SYNTH_UNTIL
        order = torch.randperm(used)
        for start in range(0, used, 32):
            batch = order[start:start + 32]
            inputs = augment(x[batch])
            opt.zero_grad()
            batch_loss(model, inputs, y[batch], weights[batch]).backward()
            if SAM_RHO > 0:
                sharpness_aware_gradient(model, inputs, y[batch])
            opt.step()
            if averages:
                averages["EMA"].update_parameters(model)
        schedule.step()
        if averages and epoch >= EPOCHS - max(1, EPOCHS // 4):
            averages["SWA"].update_parameters(model)
    if averages:   # SWA's BatchNorm statistics are those of its own weights, on the training images as trained on
        torch.optim.swa_utils.update_bn([x[start:start + 32] for start in range(0, len(train), 32)], averages["SWA"])
    models = {"last": model, **averages}
    for each in models.values():
        each.eval()
    held_x = (images[held] - mean) / std
    with torch.no_grad():
        return {scored_name(tta, weights): predict(models[weights], held_x, views)
                for weights in WEIGHTS_SCORED for tta, views in TTA_VIEWS.items()}


def weight_averages(model: nn.Module) -> dict[str, nn.Module]:
    """RECIPE_AVERAGE's two averages of the model's weights (none without it): updated as it trains."""
    if not AVERAGE_DECAY:
        return {}
    swa_utils = torch.optim.swa_utils
    return {"EMA": swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(AVERAGE_DECAY),
                                           use_buffers=True),
            "SWA": swa_utils.AveragedModel(model)}


def batch_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    with torch.autocast("cpu", torch.bfloat16, enabled=PRECISION == "bf16"):
        logits = model(inputs)
    if targets.dim() == 1 and weights is not None and bool((weights != 1).any()):   # synthetic images weighted
        losses = F.cross_entropy(logits, targets, label_smoothing=0.05, reduction="none")
        return (weights * losses).sum() / weights.sum()
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets, label_smoothing=0.05)
    hard, taught = targets[:, 0].long(), targets[:, 1]   # a label and a teacher's P(class 1) per image
    soft = F.cross_entropy(logits.float(), torch.stack([1 - taught, taught], 1))
    return (1 - DISTILL) * F.cross_entropy(logits, hard, label_smoothing=0.05) + DISTILL * soft


def teacher_probs(images: torch.Tensor, labels: np.ndarray, train: np.ndarray, outer_index: int) -> np.ndarray:
    """P(class 1) for each training image from the bag of an inner cross-validation over `train` alone (flip TTA;
    one seed per outer fold, shared by every FIRST_SEED, so runs on separate cores distil from the same teacher)."""
    probs = np.zeros(len(train))
    inner = np.array_split(np.random.default_rng(1 + outer_index).permutation(len(train)), FOLDS - 1)
    for i, held in enumerate(inner):
        rest = np.concatenate([f for j, f in enumerate(inner) if j != i])
        probs[held] = fit_and_score(images, labels, train[rest], train[held], 10_000 + 100 * outer_index + i)["flip"]
    return probs


def sharpness_aware_gradient(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Replace the gradients by those at the weights moved SAM_RHO up them (the weights are put back)."""
    params = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        norm = torch.norm(torch.stack([p.grad.norm() for p in params]))
        moves = [p.grad * (SAM_RHO / (norm + 1e-12)) for p in params]
        for p, move in zip(params, moves):
            p.add_(move)
    model.zero_grad()
    batch_loss(model, inputs, targets).backward()
    with torch.no_grad():
        for p, move in zip(params, moves):
            p.sub_(move)


def predict(model: nn.Module, x: torch.Tensor, shifts: list[tuple[int, int]]) -> np.ndarray:
    """P(class 1) averaged over left-right flips and the given (dy, dx) rolls."""
    views = [torch.roll(v, shift, (2, 3)) for v in (x, x.flip(3)) for shift in shifts]
    return torch.stack([model(v).softmax(1)[:, 1] for v in views]).mean(0).numpy()


def train_val() -> tuple[torch.Tensor, np.ndarray]:
    """BreastMNIST's train + val images (N x 1 x 28 x 28 in [0, 1]) and labels; the test split is never read."""
    npz = np.load(Path(data_root()) / "breastmnist.npz")
    images = torch.from_numpy(np.concatenate([npz["train_images"], npz["val_images"]])).float().unsqueeze(1) / 255
    return images, np.concatenate([npz["train_labels"], npz["val_labels"]]).ravel()


def outer_folds(count: int, folds: int) -> list[np.ndarray]:
    """The same seeded split of the images into `folds` held-out folds for every recipe compared."""
    return np.array_split(np.random.default_rng(0).permutation(count), folds)


def fold_synthetic(images: torch.Tensor, labels: np.ndarray, train: np.ndarray, seed: int,
                   fold: int) -> tuple[torch.Tensor, np.ndarray]:
    """SYNTH x len(train) labelled GAN images from a GAN trained on the fold's training images alone (never the
    held-out fold); one GAN per outer fold and FIRST_SEED. Its time, and a grid of its images, on the way."""
    fake, fake_labels, seconds = synthetic_set(images[train], labels[train], round(SYNTH * len(train)),
                                               SYNTH_BALANCED, seed)
    print(f"fold {fold}: GAN trained in {seconds:.0f} s, {len(fake_labels)} synthetic images "
          f"({int((fake_labels == 0).sum())} of class 0)", flush=True)
    if SAVE:   # real (1 row) over synthetic (2 rows) images, class 0 then class 1, to look at
        grid(images[train], labels[train], fake, fake_labels, f"{SAVE.removesuffix('.npy')}.fold{fold}.png")
    return fake, fake_labels


def fold_trunk(images: torch.Tensor, labels: np.ndarray, train: np.ndarray, fold: int) -> dict:
    """The fold's trunk after SimCLR on its training images alone (never the held-out fold; labels only for the
    printed kNN diagnostic, on those same images): from RECIPE_SSL_CACHE if there, else pretrained (and saved)."""
    name = (f"trunk_w{WIDTH}_s{INPUT_SCALE}{'_res' if RESIDUAL else ''}_f{FOLDS}-{fold}_e{SSL_EPOCHS}"
            f"_t{TEMPERATURE:g}.pt")
    path = Path(SSL_CACHE) / name if SSL_CACHE else None
    if path and path.exists():
        print(f"fold {fold}: trunk read from {path}", flush=True)
        return torch.load(path, weights_only=True)
    seed = 30_000 + 100 * fold
    torch.manual_seed(seed)
    net = network()
    before = knn_auc(net, images[train], labels[train])
    trunk, losses, seconds = pretrain(net, images[train], seed)
    print(f"fold {fold}: SimCLR {SSL_EPOCHS} epochs in {seconds:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"kNN AUC on its training images {before:.3f} -> {knn_auc(net, images[train], labels[train]):.3f}",
          flush=True)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(trunk, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    return trunk


def main() -> None:
    torch.set_num_threads(1)
    images, labels = train_val()
    outer = outer_folds(len(labels), FOLDS)
    probs = {scored: np.zeros((SEEDS, len(labels))) for scored in SCORED}
    started = time.time()
    for o, held in enumerate(outer):
        train = np.concatenate([f for i, f in enumerate(outer) if i != o])
        teacher = teacher_probs(images, labels, train, o) if DISTILL else None
        synth = fold_synthetic(images, labels, train, 20_000 + 100 * o + FIRST_SEED, o) if SYNTH else None
        trunk = fold_trunk(images, labels, train, o) if SSL else None
        for s in range(SEEDS):
            seed = 100 * o + FIRST_SEED + s
            for tta, p in fit_and_score(images, labels, train, held, seed, teacher, synth, trunk).items():
                probs[tta][s, held] = p
    print(f"epochs {EPOCHS} width {WIDTH}{' residual' if RESIDUAL else ''}{f' SAM rho {SAM_RHO:g}' if SAM_RHO else ''}"
          f"{f' distilled {DISTILL:g}' if DISTILL else ''}"
          f"{f' synth {SYNTH:g} weight {SYNTH_WEIGHT:g} until {SYNTH_UNTIL:g}' if SYNTH else ''}"
          f"{' balanced' if SYNTH and SYNTH_BALANCED else ''}"
          f"{f' SSL {SSL_EPOCHS} epochs t {TEMPERATURE:g} trunk lr x{SSL_TRUNK_LR:g}' if SSL else ''}"
          f"{f' averaged (EMA decay {AVERAGE_DECAY:g}, SWA)' if AVERAGE_DECAY else ''}"
          f" {AUGMENT} input scale {INPUT_SCALE}, "
          f"{FOLDS} folds, {PRECISION} "
          f"seeds {FIRST_SEED}-{FIRST_SEED + SEEDS - 1} ({time.time() - started:.0f} s)")
    if SAVE:
        np.save(SAVE, np.stack([probs[scored] for scored in SCORED]))
    for tta, p in probs.items():
        report(f"TTA {tta}", labels, p)


def score_saved(files: list[str]) -> None:
    """Runs on separate cores (other FIRST_SEEDs, or other recipes) scored as one seed ensemble."""
    saved = [np.load(f) for f in files]
    if len({a.shape[::2] for a in saved}) != 1:
        sys.exit(f"score: {files} hold different TTA views or image counts: save them from one recipe_cv version")
    if saved[0].shape[0] != len(SCORED):
        sys.exit(f"score: {files} hold {saved[0].shape[0]} scorings, not {len(SCORED)}: score them with the "
                 "RECIPE_AVERAGE they were saved with")
    labels = train_val()[1]
    for i, scored in enumerate(SCORED):
        report(f"TTA {scored}, {' + '.join(files)}", labels, np.concatenate([a[i] for a in saved]))


def report(name: str, labels: np.ndarray, probs: np.ndarray) -> None:
    singles, ensemble = [roc_auc_score(labels, p) for p in probs], probs.mean(0)
    accuracies = [((p > 0.5) == labels).mean() for p in probs]   # at p > 0.5: no threshold chosen on the folds
    print(f"{name}: out-of-fold AUC per seed {' '.join(f'{a:.3f}' for a in singles)}, mean {np.mean(singles):.4f}, "
          f"{len(probs)}-seed ensemble {roc_auc_score(labels, ensemble):.4f}")
    print(f"  accuracy at p > 0.5 per seed {' '.join(f'{a:.3f}' for a in accuracies)}, "
          f"mean {np.mean(accuracies):.3f}, {len(probs)}-seed ensemble {((ensemble > 0.5) == labels).mean():.3f}")
    print(f"  threshold for accuracy chosen on 3/4 of the out-of-fold images, scored on the rest (300 splits), vs "
          f"0.5 on the same rest: per seed {' '.join('%.3f/%.3f' % tuned_vs_fixed(labels, p) for p in probs)}, "
          f"ensemble {'%.3f/%.3f' % tuned_vs_fixed(labels, ensemble)}")


def tuned_vs_fixed(labels: np.ndarray, probs: np.ndarray, splits: int = 300) -> tuple[float, float]:
    """Mean held-out accuracy of searchlab's accuracy threshold (searchlab.imbalance) vs of p >= 0.5."""
    rng, tuned, fixed = np.random.default_rng(1), [], []
    for _ in range(splits):
        order = rng.permutation(len(labels))
        pick, rest = order[:len(labels) * 3 // 4], order[len(labels) * 3 // 4:]
        threshold = choose_threshold(ImbalanceSpec(threshold="accuracy"), "binary", labels[pick], probs[pick])
        tuned.append(((probs[rest] >= threshold) == labels[rest]).mean())
        fixed.append(((probs[rest] >= 0.5) == labels[rest]).mean())
    return float(np.mean(tuned)), float(np.mean(fixed))


if __name__ == "__main__":
    score_saved(sys.argv[2:]) if SCORE else main()
