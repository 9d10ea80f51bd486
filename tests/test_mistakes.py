"""The mistakes list: which images it picks and in what order, on probabilities set by hand."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.pictures.mistakes import gallery_picture, verdicts

NAMES = ["cat", "dog", "ship"]


def test_the_worst_mistakes_come_first_then_the_surest_images_of_each_class():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    p = torch.tensor([[0.9, 0.05, 0.05],   # 0: right, sure
                      [0.2, 0.7, 0.1],     # 1: cat → dog, 0.7
                      [0.1, 0.8, 0.1],     # 2: right
                      [0.05, 0.05, 0.9],   # 3: dog → ship, 0.9: the worst mistake
                      [0.3, 0.3, 0.4],     # 4: right, unsure
                      [0.6, 0.2, 0.2],     # 5: ship → cat, 0.6
                      [0.95, 0.0, 0.05]])  # 6: right, the surest cat
    rows = verdicts(y, p, NAMES, worst=2, per_class=1)
    assert [(r.index, r.kind, r.label, r.prediction) for r in rows] == [
        (3, "mistake", "dog", "ship"), (1, "mistake", "cat", "dog"),
        (6, "most confident", "cat", "cat"), (2, "most confident", "dog", "dog"),
        (4, "most confident", "ship", "ship")]
    assert rows[0].confidence == np.float32(0.9) and rows[0].p_true == np.float32(0.05)


def test_the_gallery_names_the_commonest_confusion_and_is_absent_without_mistakes():
    x = torch.rand(4, 3, 8, 8)
    y = torch.tensor([0, 0, 0, 1])
    p = torch.tensor([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.0, 0.3, 0.7], [0.0, 1.0, 0.0]])
    picture = gallery_picture(x, verdicts(y, p, NAMES), scanned=4)
    assert picture.key == "mistakes/worst" and picture.image.dtype == np.uint8
    assert picture.caption.startswith("The 3 most confident mistakes among 4 validation images")
    assert "cat → dog (2×)" in picture.caption
    right = torch.tensor([1, 1, 2, 1])
    assert gallery_picture(x, verdicts(right, p, NAMES), scanned=4) is None
