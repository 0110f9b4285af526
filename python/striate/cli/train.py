"""``striate train`` and ``striate demo``: classification (MNIST5k or a folder) and segmentation runs."""
from __future__ import annotations

import os
import time

from ..train.loop import CHECKPOINT_NAME
from . import folder as cli_folder
from . import gan as cli_gan
from .options import (DATASETS, DEFAULT_LR, GRID_IMAGES, MODELS, OVERLAY_IMAGES, SEGMENT_MODELS, SHAPES_SIZE, check_device,
                      SHAPES_TEST, SHAPES_TEST_SEED, SHAPES_TRAIN, TASK_DATA, TASK_DEFAULTS, TASK_MODELS)


def _datasets(name: str, limit=None, seed=0):
    """(train, test) datasets; with limit, a fixed random subset of the training set."""
    import numpy as np

    from ..data import MNIST5k, TensorDataset

    if name != "mnist5k":
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    train, test = MNIST5k(train=True), MNIST5k(train=False)
    if limit is not None and limit < len(train):
        pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:limit]).astype(np.int64)
        train = TensorDataset(*train.get_batch(pick))
    return train, test


def _classification_sets(model, data, limit=None, seed=0, image_size=None, val_fraction=0.2):
    """(train, test, class names) for classify: MNIST5k or a folder (its split), the images with
    the channels ``model`` needs."""
    from ..data import TensorDataset

    if data in DATASETS:
        train, test = _datasets(data, limit, seed)
        classes = [str(d) for d in range(10)]
        x_train, y_train, x_test, y_test = train.x.numpy(), train.y.numpy(), test.x.numpy(), test.y.numpy()
    else:
        x_train, y_train, x_test, y_test, classes = cli_folder.folder_split(data, image_size, val_fraction, seed)
        if limit is not None and limit < len(x_train):
            import numpy as np

            pick = np.sort(np.random.default_rng(seed).permutation(len(x_train))[:limit])
            x_train, y_train = x_train[pick], y_train[pick]
    fit = cli_folder.fit_channels
    return (TensorDataset(fit(x_train, model), y_train), TensorDataset(fit(x_test, model), y_test), classes)


def _check_input_fits(model, dataset, name, device) -> None:
    """One image through the network first, so that an image size it cannot take is one line
    before any training (LeNet-5 wants 28x28; the others need enough pixels to pool)."""
    import striate as st

    x = dataset.get_batch([0])[0].to(device)
    was_training = model.training
    model.eval()
    try:
        with st.no_grad():
            model(x)
    except ValueError as exc:
        raise ValueError(f"train: {name} cannot run on {'x'.join(map(str, x.shape[1:]))} images ({exc}); "
                         "choose another --image-size (lenet5 wants 28)") from None
    finally:
        model.train(was_training)


def _augmentation(names):
    """A batch transform for the named augmentations, or None."""
    if not names:
        return None
    from ..data import transforms as T

    makers = {"flip": lambda: T.RandomHorizontalFlip(), "rotate": lambda: T.RandomRotation(10.0),
              "shift": lambda: T.RandomTranslate(0.1), "scale": lambda: T.RandomScale((0.9, 1.1))}
    return T.Compose([makers[n]() for n in names])


def build_model(name: str, num_classes=None, model_args=None, in_channels=None):
    """A fresh network; segmentation networks take 3 input channels and num_classes (default 4),
    classifiers num_classes (default 10) and, for LeNet-5 and the Inception net, in_channels
    (default 1)."""
    from ..models import get_model

    if name in SEGMENT_MODELS:
        return get_model(name, in_channels=3, num_classes=num_classes or 4, **(model_args or SEGMENT_MODELS[name]))
    return cli_folder.build_classifier(name, num_classes or 10, in_channels or 1)


def _is_folder_data(task: str, data) -> bool:
    return task in ("classify", "segment") and data not in DATASETS and data is not None


def _task_of_model(name: str) -> str:
    task = next((task for task, names in TASK_MODELS.items() if name in names), None)
    if task is None:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return task


def _resolve_defaults(args) -> None:
    """Fill the per-task defaults and check that model and data fit the task."""
    task = getattr(args, "task", "classify")
    args.task = task
    args.model = args.model or TASK_MODELS[task][0]
    args.data = args.data or TASK_DATA[task][0]
    for key, value in TASK_DEFAULTS[task].items():
        if key == "lr" and args.optimizer != "adam":
            continue  # the tuned rate is Adam's; SGD keeps DEFAULT_LR["sgd"]
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.model not in TASK_MODELS[task]:
        raise ValueError(f"train: --model {args.model} is not a {task} model; "
                         f"choose from {', '.join(TASK_MODELS[task])}")
    if _is_folder_data(task, args.data):
        if not os.path.isdir(args.data):
            raise ValueError(f"train: --data {args.data!r} is neither a dataset ({', '.join(DATASETS)}) "
                             f"nor a folder{' (it does not exist)' if not os.path.exists(args.data) else ''}")
    elif args.data not in TASK_DATA[task]:
        raise ValueError(f"train: --data {args.data} is not a {task} dataset; "
                         f"choose from {', '.join(TASK_DATA[task])}"
                         + " or a folder")


def _optimizer(name: str, params, lr):
    from .. import optim

    lr = DEFAULT_LR[name] if lr is None else lr
    return optim.Adam(params, lr=lr) if name == "adam" else optim.SGD(params, lr=lr, momentum=0.9)


def _set_threads(threads):
    if threads is not None:
        import striate

        striate.set_num_threads(threads)


def run_training(args) -> float:
    """Train as args say, write the run folder, print the test results.

    Returns:
        The test accuracy (classify) or the held-out mean IoU (segment).
    """
    if args.resume:
        _check_resumable(args.out)
    check_device(args.device, args.command)
    if getattr(args, "task", None) in cli_gan.GAN_TASKS:
        if args.device != "cpu":
            raise ValueError(f"train: --device {args.device} is not wired into the GAN tasks yet; "
                             "they train on the CPU")
        return cli_gan.run(args)
    _resolve_defaults(args)
    os.makedirs(args.out, exist_ok=True)  # an unusable --out fails now, not after the first epoch
    if args.task == "segment":
        return run_segmentation(args)
    return run_classification(args)


def _check_resumable(out) -> None:
    """--resume needs a checkpoint in the run folder (fit's, or a stage's or level's one folder down)."""
    folders = [out] + ([os.path.join(out, d) for d in sorted(os.listdir(out))] if os.path.isdir(out) else [])
    if not any(os.path.isfile(os.path.join(folder, CHECKPOINT_NAME)) for folder in folders):
        raise ValueError(f"train: --resume: there is no {CHECKPOINT_NAME} in {out!r} to continue from; "
                         "check --out, or leave out --resume to start afresh")


def run_classification(args) -> float:
    import striate as st
    from ..data import DataLoader
    from ..train import confusion_matrix, fit, save_confusion_png, save_prediction_grid

    _set_threads(args.threads)
    st.manual_seed(args.seed)
    folder = {"image_size": getattr(args, "image_size", None), "val_fraction": getattr(args, "val_fraction", 0.2)}
    train_set, test_set, classes = _classification_sets(args.model, args.data, args.limit, args.seed, **folder)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              transform=_augmentation(args.augment))
    test_loader = DataLoader(test_set, batch_size=256)
    channels = train_set.x.shape[1]
    model = cli_folder.build_classifier(args.model, len(classes), channels, getattr(args, "pretrained", None),
                                        getattr(args, "freeze_backbone", False)).to(args.device)
    _check_input_fits(model, train_set, args.model, args.device)
    optimizer = _optimizer(args.optimizer, [p for p in model.parameters() if p.requires_grad], args.lr)
    scheduler = (st.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
                 if args.schedule == "cosine" else None)
    meta = {"task": "classify", "model": args.model, "data": args.data, "optimizer": args.optimizer,
            "lr": optimizer.param_groups[0]["lr"], "batch_size": args.batch_size,
            "augment": ",".join(args.augment), "schedule": args.schedule, "seed": args.seed,
            "epochs": args.epochs, "limit": args.limit}
    if args.data not in DATASETS:  # a folder: what eval and predict need to read it again
        meta.update(folder, classes=classes, num_classes=len(classes), in_channels=channels,
                    pretrained=getattr(args, "pretrained", None),
                    freeze_backbone=getattr(args, "freeze_backbone", False))
    print(f"training {args.model} on {args.data} ({len(train_set)} train / {len(test_set)} test images"
          f"{', ' + str(len(classes)) + ' classes' if args.data not in DATASETS else ''}), "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {meta['lr']:g} "
          f"(schedule {args.schedule}), "
          f"augment: {meta['augment'] or 'none'}, {st.get_num_threads()} threads", flush=True)
    began = time.perf_counter()
    history = fit(model, train_loader, optimizer, args.epochs, val_loader=test_loader, scheduler=scheduler,
                  checkpoint_dir=args.out, progress=args.progress, resume=args.resume, meta=meta)
    seconds = time.perf_counter() - began
    history.save(args.out)
    save_confusion_png(confusion_matrix(model, test_loader, len(classes)), os.path.join(args.out, "confusion.png"))
    images, labels = test_set.get_batch(_grid_indices(len(test_set)))
    model.eval()
    with st.no_grad():
        preds = model(images.to(args.device)).argmax(1)
    save_prediction_grid(images, labels, preds, os.path.join(args.out, "predictions.png"))
    accuracy = history.val_accuracy[-1] if len(history) else float("nan")
    print(f"training took {seconds:.1f} s; wrote {args.out}/ (last.safetensors, history.json, curves.png, "
          f"confusion.png, predictions.png)")
    print(f"test loss: {history.val_loss[-1]:.4f}" if len(history) else "test loss: nan")
    print(f"test accuracy: {accuracy:.4f}", flush=True)
    return accuracy


def segmentation_loss(logits, masks):
    """Per-pixel cross-entropy plus the soft Dice loss: the Dice term keeps the small shape
    classes from being drowned by the background (83% of Shapes' pixels)."""
    from ..nn import functional as F

    return F.cross_entropy(logits, masks) + F.dice_loss(logits, masks)


def _shapes_sets(limit=None):
    """(train, held-out test) Shapes sets; different seeds, so no test image is seen in training."""
    from ..data import Shapes

    return (Shapes(limit or SHAPES_TRAIN, size=SHAPES_SIZE, seed=0),
            Shapes(SHAPES_TEST, size=SHAPES_SIZE, seed=SHAPES_TEST_SEED))


def _segmentation_sets(data, limit=None, seed=0, image_size=None, val_fraction=0.2):
    """(train, held-out, class names): Shapes, or a folder's split (cli.folder.segment_folder_split)."""
    from ..data import TensorDataset

    if data in DATASETS:
        train, test = _shapes_sets(limit)
        return train, test, list(train.class_names)
    x_train, y_train, x_val, y_val, num_classes = cli_folder.segment_folder_split(data, image_size, val_fraction, seed)
    if limit is not None and limit < len(x_train):
        import numpy as np

        pick = np.sort(np.random.default_rng(seed).permutation(len(x_train))[:limit])
        x_train, y_train = x_train[pick], y_train[pick]
    return (TensorDataset(x_train, y_train), TensorDataset(x_val, y_val),
            ["background"] + [f"class {i}" for i in range(1, num_classes)])


def _overlay_writer(folder, test_set, names):
    """on_epoch_end for fit: overlays of fixed held-out images, per epoch and as overlay.png."""
    import shutil

    import numpy as np

    import striate as st
    from ..metrics import iou
    from ..train import save_segmentation_overlay

    images, masks = test_set.get_batch(np.arange(min(OVERLAY_IMAGES, len(test_set))))

    def write(epoch, model, history):
        was_training = model.training
        model.eval()
        device = next((p.device for p in model.parameters()), "cpu")
        with st.no_grad():
            logits = model(images.to(device)).to("cpu")
        model.train(was_training)
        num_classes = logits.shape[1]
        scores = [iou(logits[i:i + 1], masks[i:i + 1], num_classes)[1] for i in range(images.shape[0])]
        path = os.path.join(folder, f"overlay_epoch{epoch:03d}.png")
        save_segmentation_overlay(images, masks, logits, path, class_names=names, ious=scores)
        shutil.copyfile(path, os.path.join(folder, "overlay.png"))

    return write


def run_segmentation(args) -> float:
    import striate as st
    from ..data import DataLoader
    from ..metrics import MeanIoU
    from ..train import fit

    _set_threads(args.threads)
    st.manual_seed(args.seed)
    folder = {"image_size": getattr(args, "image_size", None), "val_fraction": getattr(args, "val_fraction", 0.2)}
    train_set, test_set, names = _segmentation_sets(args.data, args.limit, args.seed, **folder)
    num_classes = len(names)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              transform=_augmentation(args.augment))
    test_loader = DataLoader(test_set, batch_size=100)
    model = build_model(args.model, num_classes).to(args.device)
    optimizer = _optimizer(args.optimizer, model.parameters(), args.lr)
    scheduler = (st.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
                 if args.schedule == "cosine" else None)
    meta = {"task": "segment", "model": args.model, "model_args": dict(SEGMENT_MODELS[args.model]),
            "num_classes": num_classes, "data": args.data, "optimizer": args.optimizer,
            "lr": optimizer.param_groups[0]["lr"], "batch_size": args.batch_size,
            "schedule": args.schedule, "seed": args.seed, "epochs": args.epochs, "limit": args.limit}
    if args.data not in DATASETS:
        meta.update(folder)
    image = train_set[0][0]
    side = f"{image.shape[1]}x{image.shape[2]}"
    print(f"training {args.model} ({', '.join(f'{k}={v}' for k, v in SEGMENT_MODELS[args.model].items())}) "
          f"to segment {args.data} ({len(train_set)} train / {len(test_set)} held-out images of "
          f"{side}, {num_classes} classes), {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.optimizer} lr {meta['lr']:g} (schedule {args.schedule}), {st.get_num_threads()} threads",
          flush=True)
    began = time.perf_counter()
    history = fit(model, train_loader, optimizer, args.epochs, loss_fn=segmentation_loss, val_loader=test_loader,
                  scheduler=scheduler, checkpoint_dir=args.out, progress=args.progress, resume=args.resume,
                  meta=meta, metrics={"miou": MeanIoU(num_classes)},
                  on_epoch_end=_overlay_writer(args.out, test_set, names))
    seconds = time.perf_counter() - began
    history.save(args.out)
    metric = MeanIoU(num_classes)
    result = _segmentation_scores(model, test_loader, metric)
    print(f"training took {seconds:.1f} s; wrote {args.out}/ (last.safetensors, history.json, curves.png, "
          f"overlay.png, overlay_epochNNN.png)")
    _print_segmentation_scores(result, metric, names)
    return result["miou"]


def _segmentation_scores(model, loader, metric) -> dict:
    from ..train import evaluate

    return evaluate(model, loader, loss_fn=segmentation_loss, metrics={"miou": metric})


def _print_segmentation_scores(result, metric, names) -> None:
    per_class = metric.per_class()
    print("per-class IoU: " + ", ".join(f"{n} {v:.4f}" for n, v in zip(names, per_class)))
    print(f"pixel accuracy: {result['accuracy']:.4f}")
    print(f"mean IoU: {result['miou']:.4f}", flush=True)


def _grid_indices(n):
    import numpy as np

    return np.linspace(0, n - 1, min(GRID_IMAGES, n)).astype(np.int64)
