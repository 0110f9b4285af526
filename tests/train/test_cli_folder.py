"""The command line on a user's own images: ``train --data DIR``, ``eval``, ``predict``,
``--pretrained``/``--freeze-backbone``, ``--device``, and ``striate.models.registry``."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import striate
from striate import cli
from striate.cli import folder as cli_folder
from striate.models import get_model, list_models, registry
from tests.checks import cli_error


def _picture(rng, colour, side, mode):
    """A noisy square of one colour (class signal) with a bright corner (size and position vary)."""
    a = np.clip(rng.normal(0.0, 20.0, (side, side, 3)) + np.asarray(colour, np.float64), 0, 255).astype(np.uint8)
    a[: side // 3, : side // 3] = 255
    im = Image.fromarray(a)
    return im.convert("L") if mode == "L" else im


def _folder(root, classes=("blue", "red"), per_class=8, seed=0):
    """root/<class>/*.png|jpg|bmp of different sizes, some grey: a real-looking, separable set."""
    colours = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 200, 30)}
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            im = _picture(rng, colours[name], int(rng.integers(10, 24)), "L" if i == 0 and name == "red" else "RGB")
            im.save(root / name / f"{i}.{('png', 'jpg', 'bmp')[i % 3]}")
    return root


def test_registry_names_and_builds_networks():
    assert list_models("classify")[:3] == ["lenet5", "inception_net", "alexnet"]
    assert {"vgg11", "vgg19_bn", "resnet18", "resnet34", "resnet50"} <= set(list_models("classify"))
    assert list_models("segment") == ["unet", "segnet"]
    assert set(list_models()) == set(list_models("classify")) | set(list_models("segment"))
    net = get_model("lenet5", num_classes=3, in_channels=3)
    assert net(striate.tensor(np.zeros((2, 3, 28, 28), np.float32))).shape == (2, 3)
    assert get_model("resnet18", num_classes=5).fc.out_features == 5
    assert registry.input_channels("resnet18") == 3 and registry.input_channels("lenet5") is None
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        get_model("resnet9")
    with pytest.raises(ValueError, match="resnet18 does not take"):
        get_model("resnet18", in_channels=1)
    with pytest.raises(ValueError, match="task must be one of"):
        list_models("detect")


def test_split_is_fixed_by_the_seed_and_uses_train_and_val_folders(tmp_path):
    root = _folder(tmp_path / "photos")
    a = cli_folder.folder_split(str(root), 12, 0.25, seed=3)
    b = cli_folder.folder_split(str(root), 12, 0.25, seed=3)
    assert a[4] == ["blue", "red"] and len(a[0]) == 12 and len(a[2]) == 4
    for x, y in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(x, y)
    assert a[0].shape[1:] == (3, 12, 12)  # the grey picture became RGB beside the colour ones
    both = tmp_path / "both"
    _folder(both / "train", per_class=3)
    _folder(both / "val", per_class=2, seed=1)
    x_train, _, x_val, y_val, classes = cli_folder.folder_split(str(both), 12, 0.5, seed=0)
    assert (len(x_train), len(x_val), classes) == (6, 4, ["blue", "red"])
    np.testing.assert_array_equal(y_val, [0, 0, 1, 1])


def test_train_on_a_folder_then_eval_and_predict(tmp_path, capsys):
    root, out = _folder(tmp_path / "photos"), tmp_path / "run"
    assert "lenet5 cannot run on 3x12x12 images" in cli_error(
        ["train", "--data", str(root), "--image-size", "12", "--out", str(out)])
    args = ["train", "--data", str(root), "--model", "lenet5", "--image-size", "28", "--epochs", "6",
            "--batch-size", "4", "--val-fraction", "0.25", "--out", str(out), "--no-progress", "--threads", "1"]
    assert cli.main(args) == 0
    trained = capsys.readouterr().out.strip().splitlines()
    assert "(12 train / 4 test images, 2 classes)" in trained[0]
    accuracy = trained[-1].split(": ")[1]
    assert float(accuracy) >= 0.75  # colour separates the classes
    assert cli.main(["eval", "--checkpoint", str(out / "last.safetensors"), "--threads", "1"]) == 0
    evaluated = capsys.readouterr().out
    assert "validation split (4 images)" in evaluated and evaluated.strip().endswith(f"accuracy: {accuracy}")
    assert cli.main(["eval", "--checkpoint", str(out / "last.safetensors"), "--val-fraction", "0.5",
                     "--seed", "1", "--threads", "1"]) == 0
    assert "validation split (8 images)" in capsys.readouterr().out
    results = cli_folder.run_predict(cli.build_parser().parse_args(
        ["predict", "--checkpoint", str(out / "last.safetensors"), "--images", str(root / "red"),
         str(root / "blue" / "1.jpg"), "--topk", "2"]))
    assert len(results) == 9 and all(len(top) == 2 for _, top in results)
    assert all(abs(sum(p for _, p in top) - 1.0) < 1e-5 for _, top in results)  # 2 classes: all of it
    assert sum(top[0][0] == "red" for _, top in results[:8]) >= 6 and results[8][1][0][0] == "blue"
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith(f"{root / 'blue' / '1.jpg'}: blue ")


def test_pretrained_run_weights_with_a_new_head_and_a_frozen_backbone(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    common = ["--model", "resnet18", "--image-size", "16", "--epochs", "1", "--batch-size", "8",
              "--no-progress", "--threads", "1"]
    assert cli.main(["train", "--data", str(_folder(tmp_path / "two")), "--out", str(first)] + common) == 0
    three = _folder(tmp_path / "three", classes=("blue", "green", "red"), per_class=4)
    assert cli.main(["train", "--data", str(three), "--out", str(second), "--pretrained",
                     str(first / "last.safetensors"), "--freeze-backbone"] + common) == 0
    capsys.readouterr()
    a, b = (striate.load(str(run / "last.safetensors"))["model"] for run in (first, second))
    np.testing.assert_array_equal(a["conv1.weight"].numpy(), b["conv1.weight"].numpy())  # frozen
    assert a["fc.weight"].shape == (2, 512) and b["fc.weight"].shape == (3, 512)
    message = cli_error(["train", "--data", str(three), "--out", str(tmp_path / "c"), "--model", "lenet5",
                      "--image-size", "16", "--pretrained", str(first / "last.safetensors")])
    assert "does not fit lenet5 outside its head" in message
    assert "needs --pretrained" in cli_error(["train", "--data", str(three), "--out", str(tmp_path / "d"),
                                           "--image-size", "16", "--freeze-backbone"])


def test_bad_folders_and_images_are_one_line(tmp_path):
    out = ["--out", str(tmp_path / "run")]
    assert "neither a dataset" in cli_error(["train", "--data", str(tmp_path / "missing")] + out)
    (tmp_path / "empty").mkdir()
    assert "holds no class folders" in cli_error(["train", "--data", str(tmp_path / "empty")] + out)
    root = _folder(tmp_path / "photos", per_class=3)
    (root / "green").mkdir()
    assert "'green'" in cli_error(["train", "--data", str(root), "--image-size", "8"] + out).replace(str(root) + "/", "'")
    (root / "green" / "0.png").write_bytes(b"not an image")
    assert "cannot read image" in cli_error(["train", "--data", str(root), "--image-size", "8"] + out)
    (root / "green" / "0.png").unlink()
    (root / "green").rmdir()
    assert "pass --image-size S" in cli_error(["train", "--data", str(root)] + out)
    assert "--val-fraction must lie" in cli_error(["train", "--data", str(root), "--image-size", "8",
                                                "--val-fraction", "1.5"] + out)
    assert "does not exist" in cli_error(["predict", "--checkpoint", "x.safetensors", "--images", "nowhere.png"])


@pytest.mark.skipif(striate.cuda.is_available(), reason="a usable GPU is present")
def test_device_cuda_without_a_gpu_is_one_line(tmp_path):
    for argv in (["train", "--device", "cuda", "--out", str(tmp_path / "run")],
                 ["eval", "--device", "cuda", "--checkpoint", "x.safetensors"],
                 ["demo", "--device", "cuda", "--out", str(tmp_path / "demo")]):
        assert "--device cuda: no usable GPU" in cli_error(argv)


def _segmentation_folder(root, n=12, seed=0):
    """root/images/*.png (grey, a bright square on noise) and root/masks/*.png (1 on the square)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image, mask = (rng.random((16, 16)) * 60).astype(np.uint8), np.zeros((16, 16), np.uint8)
        y, x = rng.integers(0, 9, 2)
        side = int(rng.integers(4, 8))
        image[y:y + side, x:x + side], mask[y:y + side, x:x + side] = 200, 1
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


def test_segment_a_folder_then_eval(tmp_path, capsys):
    root, out = _segmentation_folder(tmp_path / "squares"), tmp_path / "run"
    assert cli.main(["train", "--task", "segment", "--data", str(root), "--epochs", "2", "--batch-size", "4",
                     "--val-fraction", "0.25", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    trained = capsys.readouterr().out.strip().splitlines()
    assert "(9 train / 3 held-out images of 16x16, 2 classes)" in trained[0]
    assert trained[-1].startswith("mean IoU: ")
    assert cli.main(["eval", "--checkpoint", str(out / "last.safetensors"), "--threads", "1"]) == 0
    evaluated = capsys.readouterr().out.strip().splitlines()
    assert "held-out (3 images)" in evaluated[0] and evaluated[-1] == trained[-1]
    (root / "masks" / "0.png").unlink()
    assert "every image needs a mask" in cli_error(["train", "--task", "segment", "--data", str(root),
                                                    "--out", str(out)])
