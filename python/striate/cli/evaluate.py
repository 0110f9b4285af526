"""``striate eval``: a run's accuracy (or mean IoU) on a dataset, a folder, or its recorded split."""
from __future__ import annotations

import os

from ..train.loop import load_weights
from . import folder as cli_folder
from . import gan as cli_gan
from .options import DATASETS, TASK_DATA, TASK_MODELS, check_device
from .train import (_classification_sets, _is_folder_data, _print_segmentation_scores, _segmentation_scores,
                    _segmentation_sets, _set_threads, _task_of_model, build_model)


def run_eval(args) -> dict:
    import striate as st
    from ..data import DataLoader
    from ..train import evaluate

    _set_threads(args.threads)
    device = check_device(args.device, "eval")
    state = st.load(args.checkpoint)
    meta = (state.get("meta") if isinstance(state, dict) else None) or {}
    task = meta.get("task") if isinstance(meta, dict) else None
    if task in cli_gan.GAN_TASKS:
        raise ValueError(f"eval: {args.checkpoint} is a {task} run; draw from it with `striate sample "
                         f"--checkpoint ...` and measure it with experiments/gan_quality.py")
    if not (isinstance(state, dict) and isinstance(meta, dict) and isinstance(state.get("model"), dict)):
        raise ValueError(f"eval: {args.checkpoint} is not a checkpoint of `striate train`: it holds no "
                         "model state")
    if task is not None and task not in TASK_MODELS:
        raise ValueError(f"eval: {args.checkpoint} records an unknown task {task!r}; expected one of "
                         f"{', '.join(TASK_MODELS)}")
    name = args.model or meta.get("model")
    if name is None:
        raise ValueError(f"eval: {args.checkpoint} does not record its model; pass --model")
    task = task or _task_of_model(name)
    data = args.data or meta.get("data") or TASK_DATA[task][0]
    if _is_folder_data(task, data):
        if not os.path.isdir(data):
            raise ValueError(f"eval: --data {data!r} is neither a dataset ({', '.join(DATASETS)}) nor a folder")
    elif data not in TASK_DATA[task]:
        raise ValueError(f"eval: --data {data} is not a {task} dataset; "
                         f"choose from {', '.join(TASK_DATA[task])}")
    model = build_model(name, meta.get("num_classes"), meta.get("model_args"), meta.get("in_channels"))
    load_weights(model, state["model"], args.checkpoint, "eval")
    model.to(device)
    if task == "segment":
        from ..metrics import MeanIoU

        seed = meta.get("seed", 0) if args.seed is None else args.seed
        fraction = meta.get("val_fraction", 0.2) if args.val_fraction is None else args.val_fraction
        _, test_set, names = _segmentation_sets(data, None, seed, meta.get("image_size"), fraction)
        metric = MeanIoU(int(meta.get("num_classes") or len(names)))
        result = _segmentation_scores(model, DataLoader(test_set, batch_size=args.batch_size), metric)
        print(f"{name} from {args.checkpoint} (epoch {state.get('epoch')}) on {data} held-out "
              f"({len(test_set)} images)")
        print(f"loss: {result['loss']:.4f}")
        _print_segmentation_scores(result, metric, names)
        return result
    split_args = {"val_fraction": args.val_fraction, "seed": args.seed}
    test_set, split = _eval_classification_set(name, data, {**meta, **{k: v for k, v in split_args.items()
                                                                        if v is not None}})
    result = evaluate(model, DataLoader(test_set, batch_size=args.batch_size))
    print(f"{name} from {args.checkpoint} (epoch {state.get('epoch')}) on {data} {split} "
          f"({len(test_set)} images)")
    print(f"loss: {result['loss']:.4f}")
    print(f"accuracy: {result['accuracy']:.4f}")
    return result


def _eval_classification_set(name, data, meta):
    """(test set, its description) for eval: MNIST5k's test set; the run's own folder: the validation
    split recorded in meta (same --val-fraction, --seed, --image-size); another folder: all of it,
    with the run's classes."""
    import numpy as np

    from ..data import ImageFolder, TensorDataset

    if data in DATASETS:
        return _classification_sets(name, data)[1], "test"
    size = meta.get("image_size")
    if data == meta.get("data"):
        _, test_set, _ = _classification_sets(name, data, None, meta.get("seed", 0), size,
                                              meta.get("val_fraction", 0.2))
        return test_set, "validation split"
    images = ImageFolder(data, size=None if size is None else (size, size))
    classes = meta.get("classes") or [str(d) for d in range(10)]
    if list(images.classes) != list(classes):
        raise ValueError(f"eval: {data!r} has classes {images.classes} but the run was trained on {classes}")
    x = images.x.numpy()
    channels = int(meta.get("in_channels", x.shape[1]))
    if x.shape[1] != channels:
        # grey to RGB by replication; RGB to grey with the ITU-R 601 luma weights of Pillow's convert("L")
        luma = np.asarray([0.299, 0.587, 0.114], np.float32)[None, :, None, None]
        x = np.repeat(x, channels, axis=1) if x.shape[1] == 1 else (x * luma).sum(axis=1, keepdims=True)
    return TensorDataset(cli_folder.fit_channels(x, name), images.y.numpy()), "folder"
