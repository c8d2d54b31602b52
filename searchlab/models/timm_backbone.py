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
        self.drop_rate = drop_rate   # classify's dropout on cached features (timm's head applies it in forward)
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
    def head_prefix(self) -> tuple[str, ...]:
        """Every classifier's parameter prefix (str.startswith takes the tuple): distilled DeiT, LeViT and
        EfficientFormer have two heads, which timm's pretrained_cfg names as a tuple ('head', 'head_dist')."""
        names = self.net.pretrained_cfg.get("classifier", "fc")
        return tuple(f"net.{name}." for name in ((names,) if isinstance(names, str) else names))

    def _head_names(self) -> tuple[str, ...]:
        """head_prefix as self.net names its parameters (without the wrapper's `net.`)."""
        return tuple(prefix.removeprefix("net.") for prefix in self.head_prefix)

    def _heads(self) -> tuple[nn.Module, ...]:
        heads = self.net.get_classifier()
        return heads if isinstance(heads, tuple) else (heads,)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-logit features: forward(x) == classify(embed(x)) in eval mode. A two-head model's are each head's
        own input, stacked (batch, heads, features): distilled DeiT's heads read two different tokens, whose mean
        timm's pre_logits gives, so no one vector can feed both."""
        features = self.net.forward_features(self._resize(x))
        heads = self._heads()
        if len(heads) == 1:
            return self.net.forward_head(features, pre_logits=True)
        inputs: list[torch.Tensor] = []
        hooks = [head.register_forward_pre_hook(lambda _, args: inputs.append(args[0])) for head in heads]
        try:   # timm's own forward_head hands each head its input (token split, pooling, its dropout in eval)
            self.net.forward_head(features)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.stack(inputs, dim=1)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        """The head(s) on embed()'s features; two heads' logits averaged, as timm does outside distillation.
        Features are computed once in eval mode (transfer: features), so the dropout timm's forward_head applies
        before its classifier never ran on them: applied here in training, at drop_rate, unless the
        classifier holds its own (LeViT's NormLinear): dropped once, as timm's forward would."""
        heads = self._heads()
        if self.training and not any(isinstance(m, nn.Dropout) for head in heads for m in head.modules()):
            z = nn.functional.dropout(z, p=self.drop_rate, training=True)
        if len(heads) == 1:
            return heads[0](z)
        return sum(head(z[:, i]) for i, head in enumerate(heads)) / len(heads)

    def parameter_blocks(self) -> list[list[tuple[str, nn.Parameter]]]:
        """timm's own coarse parameter groups (stem, stages, ...), input side first, head excluded; for the
        families timm gives no group_matcher (PiT, MetaFormer, CSATv2), the same grouping in forward order."""
        from timm.models import group_parameters

        params = dict(self.net.named_parameters())
        if hasattr(self.net, "group_matcher"):
            matcher = self.net.group_matcher(coarse=True)
        else:
            matcher = self._forward_order_ordinals().__getitem__
        groups = group_parameters(self.net, matcher)
        heads = self._head_names()
        blocks = [[(f"net.{n}", params[n]) for n in names if not n.startswith(heads)]
                  for _, names in sorted(groups.items())]
        return [block for block in blocks if block]

    def _forward_order_ordinals(self) -> dict[str, tuple[int, ...]]:
        """Each parameter's block ordinal, as a coarse timm group_matcher gives it: the stem (every top-level
        part before the stages, with the top-level parameters: pos_embed, cls_token), each stage, then what follows
        (the final norm, a head's pre-classifier norm/MLP; the classifier itself is dropped by parameter_blocks).
        Top-level parts are taken in registration order, which is their forward order in timm."""
        children = [name for name, child in self.net.named_children() if any(True for _ in child.parameters())]
        stages = self._stage_container()
        # positions, not names: a Sequential built from an OrderedDict names its stages freely
        stage_names = [] if stages is None else [name for name, _ in self.net.get_submodule(stages).named_children()]

        def ordinal(name: str) -> tuple[int, ...]:
            top, _, rest = name.partition(".")
            if not rest:                 # a top-level parameter (pos_embed, cls_token): the stem's
                return (0,)
            if stages is None:           # no stage list: one block per top-level part
                return (children.index(top),)
            if top == stages:
                return (1, stage_names.index(rest.split(".", 1)[0]))
            return (0,) if children.index(top) < children.index(stages) else (2,)
        return {name: ordinal(name) for name, _ in self.net.named_parameters()}

    def _stage_container(self) -> str | None:
        """The top-level nn.Sequential / nn.ModuleList holding the stages (PiT's `transformers`, MetaFormer's and
        CSATv2's `stages`): the one with the most parameters, a classifier's own container (MetaFormer's `head`
        Sequential) left out."""
        heads = self._head_names()
        candidates = {name: sum(p.numel() for p in child.parameters())
                      for name, child in self.net.named_children()
                      if isinstance(child, (nn.Sequential, nn.ModuleList))
                      and not any(f"{name}.{n}".startswith(heads) for n, _ in child.named_parameters())}
        candidates = {name: size for name, size in candidates.items() if size}
        return max(candidates, key=candidates.__getitem__) if candidates else None
