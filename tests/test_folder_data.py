"""Image folders (`data=folder`, `data=cifar10_jpeg`) on the real CIFAR-10 JPEG copy: what is read, the decoded
cache and when it is decoded again, archives unpacked once by parallel jobs, the Imagenette layout, the
batched crop and flip against torchvision's per-image transforms, and real training runs (the bad inputs are rows
of tests/test_bad_input.py)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import numpy
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cnnlab import REPO_ROOT
from cnnlab.data import ImageDataModule
from cnnlab.data import folder as folder_module
from cnnlab.data.folder import decode_file, open_folder
from cnnlab.data.resident import ResidentLoader
from cnnlab.data.transforms import PADDING_MODES, BatchCropFlip
from cnnlab.errors import CnnlabError
from cnnlab.train import train
from helpers import CIFAR10_CLASSES, cifar_sample

#: sha256 of cifar10-jpeg.tar.gz, as ../shared/data/README.md states it
README_SHA256 = "b722fd0cd78c0d78c636a544d48631f84f49e3c074dad5bdbfa62a24e58eb564"


@pytest.fixture(scope="module")
def cifar(cifar10_jpeg):
    """The whole archive as `data=cifar10_jpeg` reads it, in the repo's data dir (decoded there once)."""
    return open_folder(cifar10_jpeg, REPO_ROOT / "data")


def pack(folder, archive):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def pil_pixels(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as image:
        return TF.pil_to_tensor(image.convert("RGB"))


def test_the_cifar10_copy_reads_as_its_readme_says(cifar, cifar10_jpeg):
    assert cifar.content_key == README_SHA256  # the key of an archive is its sha256
    assert cifar.classes == CIFAR10_CLASSES  # alphabetical = CIFAR-10's label order
    train, test = cifar.splits["train"], cifar.splits["test"]
    assert not cifar.has_val and set(cifar.splits) == {"train", "test"}
    assert train.data.shape == (50_000, 3, 32, 32) and test.data.shape == (10_000, 3, 32, 32)
    assert train.data.dtype == torch.uint8
    assert train.targets.bincount().tolist() == [5000] * 10 and test.targets.bincount().tolist() == [1000] * 10
    # pixel for pixel what PIL decodes from the archive's own files, at the index ImageFolder's order gives them
    wanted = {"cifar10-jpeg/train/cat/0000.jpg": ("train", 3 * 5000), "cifar10-jpeg/train/truck/4999.jpg":
              ("train", 50_000 - 1), "cifar10-jpeg/test/ship/0417.jpg": ("test", 8 * 1000 + 417)}
    with tarfile.open(cifar10_jpeg) as tar:
        for name, (split, index) in wanted.items():
            expected = pil_pixels(tar.extractfile(name).read())
            assert torch.equal(cifar.splits[split].data[index], expected), name
    # the training split's statistics, near the original CIFAR-10's (JPEG shifts them a little)
    assert cifar.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=0.005)
    assert cifar.std == pytest.approx((0.2470, 0.2435, 0.2616), abs=0.005)


def test_a_second_open_starts_from_the_cache_and_unpacks_nothing(cifar10_jpeg, tmp_path, monkeypatch, capsys):
    archive = pack(cifar_sample(cifar10_jpeg, tmp_path / "photos", per_class=3), tmp_path / "photos.tar.gz")
    data_dir = tmp_path / "data"
    first = open_folder(archive, data_dir)
    said = capsys.readouterr().out
    assert "unpacking" in said and "decoding 60 images" in said and first.folder is not None
    assert first.splits["train"].data.shape == (30, 3, 32, 32)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache matches the source")

    monkeypatch.setattr(folder_module, "decode_split", no_decoding)
    monkeypatch.setattr(folder_module, "unpack", no_decoding)
    second = open_folder(archive, data_dir)
    assert second.folder is None and second.key == first.key and second.cache == first.cache
    assert torch.equal(second.splits["train"].data, first.splits["train"].data)
    assert [p.name for p in (data_dir / "folders").iterdir() if p.is_dir() and p.name != "cache"] == \
        [f"photos-{first.content_key[:12]}"]  # unpacked once, into cnnlab's own data folder
    assert not list((data_dir / "folders").glob(".photos-*"))  # no half-unpacked leftovers


def test_a_changed_source_is_decoded_again_never_reused_stale(cifar10_jpeg, tmp_path, capsys):
    photos = cifar_sample(cifar10_jpeg, tmp_path / "photos", per_class=3)
    data_dir = tmp_path / "data"
    before = open_folder(photos, data_dir)
    cat = photos / "train" / "cat" / "0000.jpg"
    cat.write_bytes((photos / "train" / "dog" / "0001.jpg").read_bytes())  # the same file name, other pixels
    capsys.readouterr()
    after = open_folder(photos, data_dir)
    assert "was decoded from an older version" in capsys.readouterr().out
    assert after.key != before.key and after.cache == before.cache  # the same cache file, rebuilt
    index = CIFAR10_CLASSES.index("cat") * 3
    assert torch.equal(after.splits["train"].data[index], decode_file(cat))
    assert not torch.equal(before.splits["train"].data[index], after.splits["train"].data[index])
    # an archive that changes is a new key, too: one image fewer, decoded again
    archive = pack(photos, tmp_path / "photos.tar.gz")
    packed = open_folder(archive, data_dir)
    (photos / "test" / "frog" / "0000.jpg").unlink()
    changed = open_folder(pack(photos, archive), data_dir)
    assert changed.key != packed.key and len(changed.splits["test"]) == len(packed.splits["test"]) - 1


OPEN_IN_CHILD = """
import json, sys
from cnnlab.data.folder import open_folder
source = open_folder(sys.argv[1], sys.argv[2])
print(json.dumps({"key": source.key, "decoded": source.folder is not None}))
"""


@pytest.mark.slow  # three fresh Python processes importing cnnlab at once: ~12 s on 2 cores
def test_parallel_jobs_that_start_together_unpack_and_decode_once(cifar10_jpeg, tmp_path):
    archive = pack(cifar_sample(cifar10_jpeg, tmp_path / "photos", per_class=20), tmp_path / "photos.tar.gz")
    jobs = [subprocess.Popen([sys.executable, "-c", OPEN_IN_CHILD, str(archive), str(tmp_path / "data")],
                             stdout=subprocess.PIPE, text=True) for _ in range(3)]
    got = [json.loads(job.communicate(timeout=240)[0].strip().splitlines()[-1]) for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0]
    assert len({g["key"] for g in got}) == 1
    assert sum(g["decoded"] for g in got) == 1  # one job unpacked and decoded; the others waited, read its cache
    folders = [p.name for p in (tmp_path / "data" / "folders").iterdir() if p.is_dir() and p.name != "cache"]
    assert len(folders) == 1


def test_imagenette_layout_val_is_the_test_split_and_a_val_folder_beside_test_is_validation(cifar10_jpeg, tmp_path):
    net = cifar_sample(cifar10_jpeg, tmp_path / "imagenette", per_class=4, splits=("train", "val"),
                       classes=["cat", "dog"])
    shutil.copytree(cifar_sample(cifar10_jpeg, tmp_path / "x", per_class=4, splits=("test",), classes=["cat", "dog"])
                    / "test", net / "val")
    dm = ImageDataModule(name="folder", root=str(net), data_dir=tmp_path / "data", val_size=2, batch_size=4)
    dm.setup("fit")
    dm.setup("test")
    assert dm.class_names == ["cat", "dog"] and dm.num_classes == 2
    assert len(dm.test_set) == 8 and len(dm.val_set) == 2 and len(dm.train_set) == 6  # val held out of train/
    full = cifar_sample(cifar10_jpeg, tmp_path / "three", per_class=4, splits=("train", "test"), classes=["cat", "dog"])
    shutil.copytree(full / "test", full / "val")
    (full / "val" / "dog" / "0000.jpg").unlink()
    three = ImageDataModule(name="folder", root=str(full), data_dir=tmp_path / "data", val_size=2, batch_size=4)
    three.setup("fit")
    assert len(three.train_set) == 8 and len(three.val_set) == 7  # all of train/; validation is val/


def test_mixed_sizes_need_resize_and_resize_brings_each_image_to_n_by_n(cifar10_jpeg, tmp_path):
    photos = cifar_sample(cifar10_jpeg, tmp_path / "photos", per_class=2, classes=["cat", "dog"])
    odd = photos / "train" / "dog" / "0000.jpg"
    with Image.open(odd) as image:
        image.resize((48, 40)).save(odd, format="JPEG")
    source = open_folder(photos, tmp_path / "data", resize=24)
    assert source.splits["train"].data.shape == (4, 3, 24, 24) and source.image_size == 24
    expected = v2.CenterCrop(24)(v2.Resize(24, antialias=True)(decode_file(odd)))
    assert torch.equal(source.splits["train"].data[2], expected)


def test_the_resident_cache_and_the_image_folder_dataloader_serve_the_same_pixels(cifar10_jpeg, tmp_path):
    photos = cifar_sample(cifar10_jpeg, tmp_path / "photos", per_class=8)
    common = dict(name="folder", root=str(photos), data_dir=tmp_path / "data", val_size=16, eval_batch_size=16,
                  num_workers=0, transforms={"normalize": True})
    fast, slow = ImageDataModule(resident=True, **common), ImageDataModule(resident=False, **common)
    for dm in (fast, slow):
        dm.setup("fit")
        dm.setup("test")
    assert isinstance(fast.train_dataloader(), ResidentLoader)
    assert not isinstance(slow.train_dataloader(), ResidentLoader)
    for fast_loader, slow_loader in ((fast.val_dataloader(), slow.val_dataloader()),
                                     (fast.test_dataloader(), slow.test_dataloader())):
        for (xf, yf), (xs, ys) in zip(fast_loader, slow_loader):
            assert torch.equal(yf, ys) and torch.allclose(xf, xs, atol=1e-6)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_batched_crop_and_flip_equal_torchvision_per_image_for_the_same_draws(cifar, mode):
    images = cifar.splits["train"].data[:64].float() / 255
    crop_flip = BatchCropFlip(v2.RandomCrop(32, padding=4, padding_mode=mode), v2.RandomHorizontalFlip(0.5))
    draws = crop_flip.params(64, 32, 32, torch.Generator().manual_seed(3), "cpu")
    got = crop_flip.apply(images, **draws)
    for i, image in enumerate(images):
        top, left, flip = int(draws["top"][i]), int(draws["left"][i]), bool(draws["flip"][i])
        expected = TF.crop(TF.pad(image, [4, 4, 4, 4], padding_mode=mode), top, left, 32, 32)
        if flip:
            expected = TF.horizontal_flip(expected)
        assert torch.equal(got[i], expected), (i, top, left, flip)
    assert 20 < int(draws["flip"].sum()) < 44 and len(set(draws["top"].tolist())) == 9  # drawn per image
    assert not torch.equal(got, images)


@pytest.mark.slow
def test_a_cifar10_jpeg_run_learns_well_above_chance_and_records_its_data(make_cfg, cifar, tmp_path):
    results = train(make_cfg("data=cifar10_jpeg", "model=simple_cnn", "transforms=crop_flip",
                             "trainer.limit_train_batches=60", "trainer.limit_val_batches=1",
                             "trainer.limit_test_batches=null", "scheduler.max_lr=0.005"))
    assert results["test/acc"] > 0.3  # chance is 0.1; on all 10,000 test images
    assert results["dataset"] == "CIFAR-10 (JPEG copy)" and "test/acc_class/airplane" in results
    assert sum(map(sum, results["confusion_matrix"])) == 10_000
    recorded = (tmp_path / "run" / "config.yaml").read_text()
    assert f"content_key: {README_SHA256}" in recorded and f"cache_key: {cifar.key}" in recorded
    assert "label: CIFAR-10 (JPEG copy)" in recorded and "- airplane" in recorded


def test_the_cache_key_is_its_sources_contents_not_its_name(cifar10_jpeg, tmp_path):
    photos = cifar_sample(cifar10_jpeg, tmp_path / "a", per_class=1, classes=["cat", "dog"])
    twin = shutil.copytree(photos, tmp_path / "b")
    archive = pack(photos, tmp_path / "a.tar.gz")
    assert folder_module.source_key(archive) == hashlib.sha256(archive.read_bytes()).hexdigest()
    a, b = open_folder(photos, tmp_path / "data"), open_folder(twin, tmp_path / "data")
    assert a.cache != b.cache and torch.equal(a.splits["train"].data, b.splits["train"].data)


def test_a_folder_run_resumes_on_its_own_images_and_refuses_changed_ones(make_cfg, cifar10_jpeg, tmp_path, capsys):
    """resume=true reads the images a run started on from its config.yaml before the new start rewrites that file
    (found 2026-12-04: every CIFAR-10 run stopped mid-training was refused as 'started on other images')."""
    photos = cifar_sample(cifar10_jpeg, tmp_path / "photos", per_class=4, classes=["cat", "dog"])
    args = ("data=folder", f"data.root={photos}", f"paths.data_dir={tmp_path / 'data'}", "model=simple_cnn",
            "data.batch_size=4", "trainer.max_epochs=1", "trainer.limit_val_batches=1", "resume=true")
    first = train(make_cfg(*args))
    results = tmp_path / "run" / "results.json"
    results.unlink()  # as if stopped after its last checkpoint: resume=true goes on from it
    capsys.readouterr()
    again = train(make_cfg(*args))
    assert "from last.ckpt" in capsys.readouterr().out
    assert again["test/acc"] == first["test/acc"] and "content_key:" in (tmp_path / "run" / "config.yaml").read_text()
    results.unlink()
    cat = sorted((photos / "train" / "cat").iterdir())
    cat[0].write_bytes(cat[1].read_bytes())  # one image changed since the run started
    for _ in range(2):  # a refused start keeps the record it was refused by: trying again is refused again
        with pytest.raises(CnnlabError, match=r"started on other images: data.root=.*photos had content key"):
            train(make_cfg(*args))


@pytest.mark.slow
def test_every_picture_and_probe_runs_on_real_cifar_colour_images(make_cfg, cifar, tmp_path):
    results = train(make_cfg("data=cifar10_jpeg", "model=simple_cnn", "trainer.limit_train_batches=10",
                             "callbacks.translation.images=200", "callbacks.rotation.images=200", callbacks="default"))
    assert results["dataset"] == "CIFAR-10 (JPEG copy)"
    probes = json.loads((tmp_path / "run" / "probes" / "summary.json").read_text())
    for key in ("linear_probe/block3", "linear_probe/input", "cka/linear/block1~block2",
                "receptive_field/theoretical/block3", "translation/consistency/shift2", "rotation/acc/+90deg",
                "linearity/max_abs_diff", "weight_sharing/params"):
        assert key in probes, key
    entries = [json.loads(line) for line in (tmp_path / "run" / "pictures" / "index.jsonl").read_text().splitlines()]
    first = next(e for e in entries if e["key"] == "filters/block1.conv")
    assert "one RGB cell per filter" in first["caption"]
    captions = " ".join(e["caption"] for e in entries)
    assert all(name in captions for name in ("airplane", "truck"))  # the folders' class names
    with Image.open(tmp_path / "run" / "pictures" / first["path"]) as png:
        pixels = torch.from_numpy(numpy.array(png.convert("RGB"))).int()
    assert (pixels.max(-1).values - pixels.min(-1).values).max() > 60  # colour cells, not grey


def test_the_harley_view_shows_a_colour_input_in_colour(cifar):
    from cnnlab.pictures.activations import harley_picture

    image = cifar.splits["train"].data[1].float() / 255  # a real CIFAR-10 image
    picture = harley_picture(image, [], "automobile")  # the input column alone
    pixels = torch.from_numpy(picture.image).int()
    assert (pixels.max(-1).values - pixels.min(-1).values).max() > 60
