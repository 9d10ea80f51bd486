"""model=rnn: a GRU or LSTM reading the image one row at a time. Its stages, read in turn, are one pass of the
recurrent layer over the rows; its weights are shared by every row (counted once); pooling, activation and readouts
beyond the image are refused by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model


def rnn(**options):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return create_model("rnn", **{"num_classes": 10, "in_channels": 1, "image_size": 28, "width": 16, **options})


@pytest.mark.parametrize(("cell", "depth"), [("gru", 1), ("gru", 2), ("lstm", 1), ("lstm", 3)])
def test_the_stages_read_in_turn_are_one_pass_of_the_recurrent_layer_over_the_rows(cell, depth):
    net = rnn(cell=cell, depth=depth, in_channels=3, image_size=12, readouts=3).eval()
    assert [name for name, _ in net.named_stages()] == ["row4", "row8", "row12", "logits"]
    x = torch.randn(5, 3, 12, 12)
    rows = x.permute(0, 2, 1, 3).reshape(5, 12, 36)  # row r: row r of every channel, channel after channel
    recurrent = net.stages["row4"].rnn
    assert isinstance(recurrent, {"gru": nn.GRU, "lstm": nn.LSTM}[cell]) and recurrent.num_layers == depth
    with torch.no_grad():
        every_row, _ = recurrent(rows)  # the top layer's hidden state after each row, all rows at once
        h = x
        for name, stage in list(net.named_stages())[:-1]:
            h = stage(h)
            after = int(name.removeprefix("row"))
            torch.testing.assert_close(h, every_row[:, after - 1], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net(x), net.stages["logits"](every_row[:, -1]))


def test_every_row_shares_the_same_weights_counted_once():
    net = rnn(readouts=4)
    recurrent = net.stages["row7"].rnn
    assert all(stage.recurrent is recurrent for name, stage in net.named_stages() if name.startswith("row"))
    assert [sum(p.numel() for p in stage.parameters()) for _, stage in net.named_stages()] == [
        sum(p.numel() for p in recurrent.parameters()), 0, 0, 0, 16 * 10 + 10]
    # a GRU of 16 units on rows of 28 pixels: 3 gates × (16 × 28 input + 16 × 16 recurrent + 2 × 16 biases)
    assert sum(p.numel() for p in net.parameters()) == 3 * (16 * 28 + 16 * 16 + 2 * 16) + 16 * 10 + 10
    # a change to the shared weights changes what the last reader computes, not only the first
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        before = net(x)
        recurrent.weight_hh_l0.add_(0.1)
        assert not torch.allclose(net(x), before)
    state = net.state_dict()
    assert sorted(k for k in state if "weight_hh" in k) == ["stages.row7.rnn.weight_hh_l0"]


def test_readout_rows_are_evenly_spaced_and_end_at_the_last_row():
    assert [n for n, _ in rnn(readouts=4).named_stages()] == ["row7", "row14", "row21", "row28", "logits"]
    assert [n for n, _ in rnn(readouts=1, image_size=32).named_stages()] == ["row32", "logits"]
    assert rnn(readouts=3, image_size=32).stage_shapes() == {"row11": (16,), "row21": (16,), "row32": (16,),
                                                            "logits": (10,)}


@pytest.mark.parametrize(("options", "expected"), [
    ({"pooling": "max"}, "model 'rnn' has no feature maps to pool (it reads the image as a sequence of rows), so "
                         "pooling=max does not apply. Valid: pooling=native or pooling=none"),
    ({"activation": "tanh"}, "model 'rnn' has no activation to choose: its GRU or LSTM gates are sigmoids"),
    ({"readouts": 29}, "model.readouts=29 rows, but the image has only 28. Valid: model.readouts between 1 and 28"),
    ({"cell": "transformer"}, "model.cell='transformer' is not valid for model 'rnn'. Valid: gru, lstm"),
    ({"width": 0}, "model.width must be a whole number ≥ 1, got 0. model 'rnn' uses 128"),
])
def test_what_does_not_apply_is_refused_by_name(options, expected):
    with pytest.raises(CnnlabError, match="rnn") as err:
        rnn(**options)
    assert expected in str(err.value)
