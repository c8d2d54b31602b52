"""A timm backbone as a searchlab classifier (architecture "timm"); torch and timm only.

Below the body marker is what an export's model.py holds when its config.json names a timm backbone
(searchlab/models/__init__.py: model_source).
"""
from __future__ import annotations

import torch
from torch import nn

# ---- model.py body ----
class TimmClassifier(nn.Module):
    """A timm backbone by name; optionally resizes inputs first (28x28 is below most backbones' stride)."""

    def __init__(self, in_channels: int, num_outputs: int, backbone: str, input_size: int | None = None,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        import timm  # only timm exports need timm

        self.input_size = input_size
        kwargs = dict(pretrained=False, in_chans=in_channels, num_classes=num_outputs, drop_rate=drop_rate)
        if input_size is None:
            self.net = timm.create_model(backbone, **kwargs)
            return
        # Patch/window models (ViT, DeiT, BEiT, Swin, ...) fix their input grid at construction: build them for
        # input_size. Convolutional nets take any size and their constructors refuse `img_size` with a
        # TypeError naming it: those are built without it (the inputs are resized to input_size all the same).
        try:
            self.net = timm.create_model(backbone, img_size=input_size, **kwargs)
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
            self.net = timm.create_model(backbone, **kwargs)
        except (AssertionError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"timm model {backbone!r} cannot be built for input_size {input_size} ({exc}). Rule: patch models "
                "need input_size >= their patch size, ideally a multiple of it (16 for *_patch16_*: 32, 64, 224); "
                "Swin needs a multiple of patch x window (patch4_window7: 28, 56, 112, 224) on older timm versions. "
                "Fix: pick such an input_size") from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._resize(x))

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False)
        return x

    @property
    def head_prefix(self) -> str:
        return f"net.{self.net.pretrained_cfg.get('classifier', 'fc')}."

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-logit features: forward(x) == classify(embed(x))."""
        return self.net.forward_head(self.net.forward_features(self._resize(x)), pre_logits=True)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.get_classifier()(z)

    def parameter_blocks(self) -> list[list[tuple[str, nn.Parameter]]]:
        """timm's own coarse parameter groups (stem, stages, ...), input side first, head excluded."""
        from timm.models import group_parameters

        params = dict(self.net.named_parameters())
        groups = group_parameters(self.net, self.net.group_matcher(coarse=True))
        head = self.head_prefix.removeprefix("net.")
        blocks = [[(f"net.{n}", params[n]) for n in names if not n.startswith(head)] for _, names in sorted(groups.items())]
        return [block for block in blocks if block]
