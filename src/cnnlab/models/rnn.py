"""A recurrent network that reads the image one row at a time, top to bottom ("sequential MNIST" by rows): each step's
input is one row of every channel (C·W numbers), and a GRU or LSTM from torch carries `width` hidden units from row
to row with the same weights at every row. It shares its weights across one axis where a CNN shares them across
two; the seed discussion's "RNNs benefit in a similar way to CNNs, re-using weights over time series"."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import Spec, StagedModel, positive_int, require_no_pooling
from cnnlab.models.registry import register_model
from cnnlab.registry import spec_name

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


@dataclass(frozen=True)
class RowCarry:
    """What a row stage hands the next one besides the top layer's hidden state (its output): the image as rows
    (B, H, C·W), and the state of every layer after the rows read so far, `hidden` (layers, B, width) and, for an
    LSTM, `cell` (layers, B, width)."""

    rows: torch.Tensor
    hidden: torch.Tensor
    cell: torch.Tensor | None


class RowReader(nn.Module):
    """Reads rows `start` … `stop` − 1 and outputs the top layer's hidden state after row `stop` − 1, (B, width).

    The first reader takes the image and owns the recurrent layer; the later ones run the same layer (weight sharing
    across rows: they list no parameters of their own) from where the reader before stopped. That reader's output
    carries a `RowCarry` as its attribute `carry`, and the top layer's state is taken from the tensor received, so
    running the readers in turn is reading every row at once. A plain (B, width) tensor without a carry (a stage
    traced on its own) is taken as the top layer's state with the lower layers' at zero, reading blank rows."""

    def __init__(self, rnn: nn.RNNBase, start: int, stop: int, row_size: int) -> None:
        super().__init__()
        if start == 0:
            self.rnn = rnn
        else:
            self._shared = (rnn,)  # a tuple: not registered, so the weights are counted (and saved) once
        self.start, self.stop, self.row_size = start, stop, row_size
        self.layer_label = f"{type(rnn).__name__} over rows {start + 1}–{stop}"

    @property
    def recurrent(self) -> nn.RNNBase:
        return self.rnn if self.start == 0 else self._shared[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rnn = self.recurrent
        lstm = isinstance(rnn, nn.LSTM)
        if self.start == 0:
            rows = x.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)  # (B, H, C·W): row r of every channel
            state = None
        else:
            carry = getattr(x, "carry", None)
            if carry is None:
                rows = x.new_zeros(x.shape[0], self.stop, self.row_size)
                lower = x.new_zeros(rnn.num_layers - 1, *x.shape)
                cell = x.new_zeros(rnn.num_layers, *x.shape) if lstm else None
            else:
                rows, lower, cell = carry.rows, carry.hidden[:-1], carry.cell
            hidden = torch.cat([lower, x.unsqueeze(0)])
            state = (hidden, cell) if lstm else hidden
        _, state = rnn(rows[:, self.start:self.stop], state)
        hidden, cell = state if lstm else (state, None)
        out = hidden[-1]
        out.carry = RowCarry(rows, hidden, cell)
        return out


def readout_rows(height: int, readouts: int) -> list[int]:
    """The rows after which a stage reads the hidden state: `readouts` evenly spaced, the last one the image's
    last row (7, 14, 21, 28 for 4 at 28 px)."""
    if readouts > height:
        raise CnnlabError(f"model 'rnn' reads the hidden state after model.readouts={readouts} rows, but the image has "
                          f"only {height}. Valid: model.readouts between 1 and {height} (4: a quarter, half, three "
                          f"quarters and all of the image).")
    return [round(height * k / readouts) for k in range(1, readouts + 1)]


def refuse_activation(activation: Spec) -> None:
    if activation is not None:
        raise CnnlabError(f"model 'rnn' has no activation to choose: its GRU or LSTM gates are sigmoids and its "
                          f"candidate state a tanh, fixed inside torch's recurrent layer, so activation="
                          f"{spec_name(activation)} does not apply. Valid: activation=native, or a model with "
                          f"activation layers (e.g. model=mlp).")


@register_model("rnn")
class RNN(StagedModel):
    """Stages `row<r>`, the top layer's hidden state (width,) after row r, for `readouts` evenly spaced rows (`row7`,
    `row14`, `row21`, `row28` at 28 px), then `logits` (a linear map of the state after the last row). `depth`
    stacked layers of `width` units; `cell` gru or lstm."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        pooling: Spec = "none",
        activation: Spec = None,
        depth: int | None = None,
        width: int | None = None,
        cell: str = "gru",
        readouts: int = 4,
    ) -> None:
        require_no_pooling("rnn", pooling, "it reads the image as a sequence of rows")
        refuse_activation(activation)
        depth = positive_int("rnn", "depth", depth, 1)
        width = positive_int("rnn", "width", width, 128)
        readouts = positive_int("rnn", "readouts", readouts, 4)
        if cell not in CELLS:
            raise CnnlabError(f"model.cell={cell!r} is not valid for model 'rnn'. Valid: {', '.join(CELLS)} (the "
                              f"recurrent layer from torch that reads the rows).")
        super().__init__("rnn", (in_channels, image_size, image_size))
        row_size = in_channels * image_size
        rnn = CELLS[cell](row_size, width, num_layers=depth, batch_first=True)
        start = 0
        for stop in readout_rows(image_size, readouts):
            self.add_stage(f"row{stop}", RowReader(rnn, start, stop, row_size))
            start = stop
        self.add_stage("logits", nn.Linear(width, num_classes))
