"""The row-sequence recurrent classifier (architecture "row_rnn"); torch only.

Below the body marker is what an export's model.py holds when its config.json names it
(searchlab/models/__init__.py: model_source).
"""
from __future__ import annotations

import torch
from torch import nn

# ---- model.py body ----
class RowRNN(nn.Module):
    """Reads an image as a sequence of rows (one time step = the C*W pixels of a row) with a GRU or LSTM and
    classifies the last hidden state (both directions concatenated when bidirectional).

    Inputs are resized to input_size x input_size first, so the row length (C * input_size) is fixed.
    """

    def __init__(self, in_channels: int, num_outputs: int, cell: str = "gru", hidden: int = 64, layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, input_size: int = 28) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"unknown cell {cell!r}; RowRNN knows 'gru' and 'lstm'")
        self.input_size = input_size
        self.layers = layers
        self.directions = 2 if bidirectional else 1
        rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
        # torch applies `dropout` between stacked layers only (and warns when there is one layer)
        self.rnn = rnn_cls(in_channels * input_size, hidden, num_layers=layers, batch_first=True,
                           bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden * self.directions, num_outputs))

    head_prefix = "head."   # parameters re-initialised when transferring to a new task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's final hidden state (N, hidden * directions): forward(x) == classify(embed(x))."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False)
        rows = x.permute(0, 2, 1, 3).flatten(2)          # (N, H, C*W): one row per time step
        _, state = self.rnn(rows)
        h_n = state[0] if isinstance(state, tuple) else state   # LSTM returns (h_n, c_n)
        last = h_n[-self.directions:]                     # (directions, N, hidden) of the top layer
        return last.transpose(0, 1).flatten(1)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def parameter_blocks(self) -> list[list[tuple[str, nn.Parameter]]]:
        """(name, parameter) per recurrent layer (both directions), input side first, head excluded."""
        blocks: list[list[tuple[str, nn.Parameter]]] = [[] for _ in range(self.layers)]
        for name, p in self.rnn.named_parameters():       # e.g. weight_ih_l0, bias_hh_l1_reverse
            layer = int(name.split("_l")[-1].removesuffix("_reverse"))
            blocks[layer].append((f"rnn.{name}", p))
        return blocks
