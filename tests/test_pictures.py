"""Pictures: what each one shows (checked pixel by pixel against the numbers it claims to draw), that a real
run leaves every picture as a PNG and in the offline W&B run, and that the callbacks survive fast_dev_run,
no logger, TensorBoard and every model."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from cnnlab.data import datamodule_from_config
from cnnlab.data.probe import probe_batch
from cnnlab.errors import CnnlabError
from cnnlab.loggers.wandb_offline import find_runs, read_run
from cnnlab.models import create_model, list_models
from cnnlab.module import ImageClassifier
from cnnlab.pictures.activations import activation_pictures, as_maps, harley_picture, stage_cells, stage_outputs
from cnnlab.pictures.attribution import attribution_picture, occlusion_map
from cnnlab.pictures.filters import filter_pictures
from cnnlab.pictures.maximisation import channel_means, maximisation_picture, run_to
from cnnlab.pictures.render import GAP, cell_origin, save_png, upscale_for
from cnnlab.train import train
from helpers import compose_run

KEYS = {"filters/block1.conv", "filters/block2.conv", "activations/block1", "activations/block2",
        "activations/fc1", "activations/fc2", "activations/logits", "activations/by_stage",
        "examples/block1", "examples/block2", "examples/fc1", "examples/fc2", "examples/logits",
        "attribution/methods", "maximisation/stages", "mistakes/worst", "report/curves", "report/confusion_matrix"}


def png_round_trip(image: np.ndarray, tmp_path: Path) -> np.ndarray:
    return np.asarray(Image.open(save_png(image, tmp_path / "picture.png")).convert("RGB"))


@pytest.fixture(scope="module")
def pictures_run(tmp_path_factory):
    """A real LeNet-5 run on MNIST with every picture on: 2 epochs of 60 batches, W&B offline + CSV. The data
    path, batch and peak rate the occlusion test's model was calibrated on (the DataLoader path, 128, 0.005)."""
    run_dir = tmp_path_factory.mktemp("pictures") / "run"
    cfg = compose_run("trainer.max_epochs=2", "trainer.limit_train_batches=60", "trainer.limit_val_batches=3",
                      "data.resident=false", "scheduler.max_lr=0.005",
                      run_dir=run_dir, logger="[wandb,csv]", callbacks="[base,pictures]")
    results = train(cfg)
    GlobalHydra.instance().clear()
    config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    datamodule = datamodule_from_config(config)
    datamodule.setup("fit")
    model = ImageClassifier.load_from_checkpoint(results["best_ckpt"]).eval()
    return {"dir": run_dir, "results": results, "model": model, "probe": probe_batch(datamodule.val_set, 10)}


def index(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "pictures" / "index.jsonl").read_text().splitlines()]


# ---- what the pictures contain ------------------------------------------------------------------------

@pytest.mark.parametrize("in_channels", [1, 2, 3])
def test_filter_grid_cells_equal_the_normalised_conv_weights(in_channels, tmp_path):
    net = create_model("simple_cnn", num_classes=10, in_channels=in_channels, image_size=16, depth=2, width=4)
    first, deeper = filter_pictures(net)
    weight = net.stages["block1"].conv.weight.detach().double()
    m = weight.abs().max()
    expected = np.round((weight / m + 1) / 2 * 255).numpy()  # −m → black, 0 → mid-grey, +m → white
    image = png_round_trip(first.image, tmp_path)
    assert f"black = {-m:.3g}" in first.caption and f"white = {m:.3g}" in first.caption
    # 4 filters: a 2×2 grid (RGB cells on 3 channels); on 2 channels a row per filter, a column per channel
    scale = upscale_for(3)
    rows, columns = (4, 2) if in_channels == 2 else (2, 2)
    assert image.shape == (rows * 3 * scale + (rows - 1) * GAP, columns * 3 * scale + (columns - 1) * GAP, 3)
    for o in range(4):
        for c in range(in_channels):
            cell = o if in_channels != 2 else o * in_channels + c
            top, left = cell_origin(cell, (3, 3), columns, scale)
            for i in range(3):
                for j in range(3):
                    pixel = image[top + i * scale + scale // 2, left + j * scale + scale // 2]
                    want = expected[o, c, i, j]
                    got = pixel[c] if in_channels == 3 else pixel[0]
                    assert got == want, (o, c, i, j)
                    if in_channels != 3:
                        assert pixel[0] == pixel[1] == pixel[2]  # grey
    # deeper layers: one cell per filter, the mean over its input channels, on the layer's own scale
    mean = net.stages["block2"].conv.weight.detach().double().mean(dim=1)
    m2 = mean.abs().max()
    image = png_round_trip(deeper.image, tmp_path)
    columns = 3  # 8 filters: a 3×3 grid
    for o in range(8):
        top, left = cell_origin(o, (3, 3), columns, scale)
        got = image[top + scale // 2, left + scale // 2, 0]
        assert got == round(float((mean[o, 0, 0] / m2 + 1) / 2 * 255))
    assert "the mean over its 4 input channels" in deeper.caption


def test_activation_map_of_a_hand_set_kernel_matches_the_expected_map(tmp_path):
    """A horizontal-edge kernel (bright above, dark below) on an image with one bright bar: after ReLU only
    the bar's lower edge responds (its last row and the row below), 3 inside and 2 at the zero-padded border
    columns; the upper edge gives negative values, which ReLU removes."""
    net = create_model("simple_cnn", num_classes=10, in_channels=1, image_size=12, depth=1, width=1,
                       pooling="none", activation="relu")
    conv = net.stages["block1"].conv
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 1, 1], [0, 0, 0], [-1, -1, -1]]).view(1, 1, 3, 3))
        conv.bias.zero_()
    image = torch.zeros(1, 1, 12, 12)
    image[..., 4:7, :] = 1.0  # a bar over rows 4–6
    expected = np.zeros((12, 12))
    expected[6:8, :] = 3.0
    expected[6:8, [0, 11]] = 2.0

    outputs = stage_outputs(net, image)
    assert outputs[0][0] == "block1"
    np.testing.assert_allclose(as_maps(outputs[0][1])[0, 0], expected, atol=1e-6)
    cells, (low, high), columns = stage_cells(outputs[0][1], max_channels=16)
    assert (low, high) == (0.0, 3.0) and columns == 1
    np.testing.assert_allclose(cells[0], expected / 3, atol=1e-6)

    picture = activation_pictures(outputs, ["bar"])[0]
    assert picture.key == "activations/block1"
    assert "output 1×12×12" in picture.caption and "0 … 3" in picture.caption
    png = png_round_trip(picture.image, tmp_path)
    scale = upscale_for(12)
    assert png.shape == (12 * scale, 12 * scale, 3)
    colours = matplotlib.colormaps["viridis"](expected / 3, bytes=True)[..., :3]
    np.testing.assert_array_equal(png[scale // 2::scale, scale // 2::scale], colours)


@pytest.mark.slow
def test_occlusion_map_of_a_trained_model_is_lowest_on_the_strokes(pictures_run):
    model, (x, y) = pictures_run["model"], pictures_run["probe"]
    occlusion = occlusion_map(model.net, x, y, patch=7, stride=2)
    with torch.no_grad():
        confident = torch.softmax(model.net(x), 1)[range(len(y)), y] > 0.5
    assert confident.sum() >= 8
    for b in torch.nonzero(confident).view(-1).tolist():
        digit = x[b, 0]
        strokes = digit > (digit.min() + digit.max()) / 2
        near = nn.functional.max_pool2d(strokes.float()[None, None], 7, 1, 3)[0, 0] > 0  # a patch there hits a stroke
        o = occlusion[b]
        lowest = np.unravel_index(o.argmin(), o.shape)
        assert near[lowest], f"image {b}: lowest p(true) at {lowest}, away from every stroke"
        assert o[strokes.numpy()].mean() < o[~near.numpy()].mean(), f"image {b}: strokes not lower than background"
        assert 0 <= o.min() and o.max() <= 1


@pytest.mark.slow
def test_activation_maximisation_beats_every_probe_image_and_leaves_training_alone(pictures_run):
    model, (x, _) = pictures_run["model"], pictures_run["probe"]
    rng = torch.get_rng_state()
    picture, results = maximisation_picture(model.net, x, channels_per_stage=3, steps=48)
    assert torch.equal(torch.get_rng_state(), rng)  # a private generator: training's randomness untouched
    assert all(p.grad is None for p in model.parameters())  # gradients w.r.t. the input only
    assert list(results) == [name for name, _ in model.net.named_stages()]
    with torch.no_grad():
        for stage, (channels, best) in results.items():
            reached = channel_means(run_to(model.net, stage, best)).gather(1, torch.tensor(channels).view(-1, 1))
            real = channel_means(run_to(model.net, stage, x))[:, channels].max(dim=0).values
            assert (reached.view(-1) > real).all(), (stage, channels)
            assert best.min() >= x.min() - 1e-6 and best.max() <= x.max() + 1e-6  # stays in the data's range
        channels, best = results["logits"]
        assert model.net(best).argmax(dim=1).tolist() == channels  # the input for class k is classified k
    assert "Rows: stages" in picture.caption and picture.size == (3 * 64 + 2 * GAP, 5 * 64 + 4 * GAP)


@pytest.mark.slow
def test_probe_batch_is_one_validation_image_per_class_the_same_every_time(pictures_run):
    x, y = pictures_run["probe"]
    assert y.tolist() == list(range(10)) and x.shape == (10, 1, 32, 32)
    config = OmegaConf.to_container(OmegaConf.load(pictures_run["dir"] / "config.yaml"))
    again = datamodule_from_config(config)
    again.setup("fit")
    assert torch.equal(probe_batch(again.val_set, 10)[0], x)


# ---- where the pictures go ------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_leaves_every_picture_as_a_png_of_its_stated_size(pictures_run):
    entries = index(pictures_run["dir"])
    assert {e["key"] for e in entries} == KEYS
    pngs = set((pictures_run["dir"] / "pictures").rglob("*.png"))
    assert {pictures_run["dir"] / "pictures" / e["path"] for e in entries} == pngs
    for e in entries:
        with Image.open(pictures_run["dir"] / "pictures" / e["path"]) as png:
            png.load()  # decodes
            assert png.size == (e["width"], e["height"]) and png.mode == "RGB"
        assert e["caption"]
    tags = {(e["key"], e["tag"]) for e in entries}
    assert ("filters/block1.conv", "epoch000") in tags and ("filters/block1.conv", "epoch001") in tags
    assert ("maximisation/stages", "final") in tags and ("report/curves", "final") in tags
    assert ("report/confusion_matrix", "test") in tags
    assert ("maximisation/stages", "epoch000") not in tags  # its cadence: only when training ends


@pytest.mark.slow
def test_the_offline_wandb_run_holds_the_images_with_their_captions(pictures_run):
    (wandb_run,) = find_runs(pictures_run["dir"])
    media = wandb_run / "files" / "media" / "images"
    for key in KEYS:
        section, name = key.split("/")
        assert list((media / section).glob(f"{name}_*.png")), f"no {key} image in {media}"
    captions = {(e["key"], e["step"]): e for e in index(pictures_run["dir"])}
    logged = set()
    for row in read_run(wandb_run)["history"]:  # W&B flattens each image to key._type, key.caption, ...
        for key in KEYS:
            if f"{key}._type" in row:
                assert row[f"{key}._type"] == "image-file"
                entry = captions[key, row["trainer/global_step"]]
                assert row[f"{key}.caption"] == entry["caption"]
                assert (row[f"{key}.width"], row[f"{key}.height"]) == (entry["width"], entry["height"])
                assert (wandb_run / "files" / row[f"{key}.path"]).is_file()
                logged.add(key)
    assert logged == KEYS


@pytest.mark.slow
def test_the_offline_wandb_run_holds_the_mistakes_as_a_table(pictures_run):
    """The W&B Table the dashboard filters: one row per listed image with values that agree with each other and
    with the gallery's caption. W&B keeps the run file's copy without pixels ('Image') and puts the table with its
    images in a run artifact, staged until `wandb sync`: each row's image is there."""
    (wandb_run,) = find_runs(pictures_run["dir"])
    run = read_run(wandb_run)
    (row,) = [r for r in run["history"] if "mistakes/table._type" in r]
    assert row["mistakes/table._type"] == "table-file"
    table = json.loads((wandb_run / "files" / row["mistakes/table.path"]).read_text())
    assert table["columns"] == ["image", "index", "kind", "label", "prediction", "confidence", "p_true"]
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    mistakes = [r for r in rows if r["kind"] == "mistake"]
    surest = [r for r in rows if r["kind"] == "most confident"]
    assert 0 < len(mistakes) <= 32 and len(surest) == 20 and len(rows) == row["mistakes/table.nrows"]
    assert all(r["label"] != r["prediction"] and r["confidence"] >= r["p_true"] for r in mistakes)
    assert all(r["label"] == r["prediction"] and r["confidence"] == r["p_true"] for r in surest)
    assert [r["confidence"] for r in mistakes] == sorted((r["confidence"] for r in mistakes), reverse=True)
    assert len({r["label"] for r in surest}) == 10
    (artifact,) = [a for a in run["artifacts"] if "-mistakestable" in a["name"]]
    files = {f["path"]: f["local_path"] for f in artifact["manifest"]["contents"]}
    staged = json.loads(Path(files["mistakes/table.table.json"]).read_text())
    assert [r[1:] for r in staged["data"]] == [r[1:] for r in table["data"]]
    for r in staged["data"]:
        assert r[0]["_type"] == "image-file" and Path(files[r[0]["path"]]).is_file()
    gallery = next(e for e in index(pictures_run["dir"]) if e["key"] == "mistakes/worst")
    assert gallery["caption"].startswith(f"The {len(mistakes)} most confident mistakes among 2000 validation images")


@pytest.mark.slow
def test_curves_and_confusion_matrix_show_what_the_run_logged(pictures_run):
    run_dir, results = pictures_run["dir"], pictures_run["results"]
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["callbacks"]
    (history,) = [v["history"] for k, v in state.items() if k.startswith("ReportPictures")]
    rows = [line.split(",") for line in (run_dir / "csv" / "metrics.csv").read_text().splitlines()]
    header = rows[0]
    logged = [float(r[header.index("val/acc")]) for r in rows[1:] if r[header.index("val/acc")]]
    assert [v for _, v in history["val/acc"]] == pytest.approx(logged) and len(logged) == 2
    assert len(history["train/loss"]) == 120 and history["train/loss"][-1][0] == pytest.approx(2.0)
    confusion = next(e for e in index(run_dir) if e["key"] == "report/confusion_matrix")
    assert f"accuracy {100 * results['test/acc']:.2f} %" in confusion["caption"]


@pytest.mark.slow
def test_tensorboard_gets_the_images(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg("trainer.limit_train_batches=5", logger="tensorboard", callbacks="[base,filters,attribution]"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0}).Reload()
    wanted = {"filters/block1.conv", "filters/block2.conv", "attribution/methods"}
    assert wanted <= set(events.Tags()["images"])
    png = events.Images("filters/block1.conv")[-1]
    entry = next(e for e in index(tmp_path / "run") if e["key"] == "filters/block1.conv")
    assert (png.width, png.height) == (entry["width"], entry["height"])


@pytest.mark.parametrize("logger", ["none", "wandb"])
@pytest.mark.slow
def test_pictures_work_with_fast_dev_run_and_without_a_logger(make_cfg, tmp_path, logger):
    train(make_cfg("debug=fast", "trainer.accelerator=cpu", logger=logger, callbacks="pictures"))
    assert {e["key"] for e in index(tmp_path / "run")} == KEYS


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
@pytest.mark.parametrize("model", list_models())
def test_every_model_gets_every_picture(model, channels, tmp_path):
    size = 32 if model in ("vgg11", "vgg16", "vit", "lenet5") or channels == 3 else 28
    options = {"width": 4} if model not in ("lenet5", "alexnet", "zfnet", "vit") else {}
    net = create_model(model, num_classes=10, in_channels=channels, image_size=size, **options).eval()
    x, y = torch.randn(3, channels, size, size), torch.tensor([0, 1, 2])
    pictures = filter_pictures(net)
    outputs = stage_outputs(net, x)
    pictures += activation_pictures(outputs, ["0", "1", "2"]) + [harley_picture(x[0], outputs, "0")]
    pictures.append(attribution_picture(net, x, y, ["0", "1", "2"], patch=7, stride=7)[0])
    pictures.append(maximisation_picture(net, x, channels_per_stage=2, steps=2)[0])
    keys = {p.key for p in pictures}
    assert {f"activations/{name}" for name, _ in net.named_stages()} <= keys
    assert any(k.startswith("filters/") for k in keys) and "maximisation/stages" in keys
    for p in pictures:
        assert p.image.dtype == np.uint8 and p.image.ndim == 3 and p.image.shape[2] == 3 and p.caption


def test_bad_picture_options_give_a_clear_error(make_cfg):
    with pytest.raises(CnnlabError, match=r"filter_pictures.every_n_epochs must be a whole number ≥ 0.*got -1"):
        train(make_cfg("callbacks.filter_pictures.every_n_epochs=-1", callbacks="[base,filters]"))
    with pytest.raises(CnnlabError, match=r"attribution_pictures.patch must be a whole number ≥ 1, got 0"):
        train(make_cfg("callbacks.attribution_pictures.patch=0", callbacks="[base,attribution]"))
    with pytest.raises(CnnlabError, match=r"maximisation_pictures.steps must be a whole number ≥ 1, got 'many'"):
        train(make_cfg("callbacks.maximisation_pictures.steps=many", callbacks="[base,maximisation]"))
    with pytest.raises(CnnlabError, match=r"parameterisation=.lucid. is not valid. Valid: auto \(fourier on RGB "
                                          r"input, pixel otherwise\), pixel, fourier"):
        train(make_cfg("callbacks.maximisation_pictures.parameterisation=lucid", callbacks="[base,maximisation]"))
    with pytest.raises(CnnlabError, match=r"callback 'filter_pictures' rejects options.*Its options: every_n_epochs, "
                                          r"max_filters, max_layers"):
        train(make_cfg("+callbacks.filter_pictures.colour=red", callbacks="[base,filters]"))


@pytest.mark.slow
def test_drawing_pictures_leaves_training_exactly_as_it_was(make_cfg, tmp_path):
    """Pictures drawn after epoch 0 must not change epoch 1: same shuffling, same weights, same metrics."""
    quick = ("trainer.max_epochs=2", "trainer.limit_train_batches=8", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1", "trainer.deterministic=true")
    plain = train(make_cfg(*quick, callbacks="base", run_dir=tmp_path / "plain"))
    drawn = train(make_cfg(*quick, callbacks="default", run_dir=tmp_path / "drawn"))
    assert len(index(tmp_path / "drawn")) > 10
    for key in ("test/acc", "test/loss", "val/best"):
        assert drawn[key] == plain[key], key
