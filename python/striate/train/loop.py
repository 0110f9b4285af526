"""The training loop: ``fit``, ``evaluate`` and the resumable per-epoch checkpoint.

A loader is anything iterable that yields ``(inputs, targets)`` batches
(Tensors or arrays); ``len(loader)``, when defined, sizes the progress bar.

Checkpoint contract (``<checkpoint_dir>/last.safetensors``, written atomically
by :func:`striate.save` after every epoch, once validation and the scheduler
step are done)::

    {"epoch": int (epochs completed), "model": state_dict, "optimizer": state_dict,
     "scheduler": state_dict or None, "rng": striate.get_rng_state(),
     "loader": loader.state_dict() or None, "history": History.to_dict(), "meta": dict or None}

Bit-exact resumption: everything random in an epoch (dropout masks, and the
data order when the loader draws it from :func:`striate.random.generator`) is a
function of the random state at the epoch's start. The checkpoint is taken at
an epoch boundary and restores that state, so ``fit(..., epochs=4, resume=True)``
after an interrupted 2-epoch run replays epochs 3 and 4 exactly as an
uninterrupted run would. A loader with its own random state exposes it with
``state_dict()`` / ``load_state_dict()``; it is saved and restored too.
"""
from __future__ import annotations

import math
import os
import sys
import time

from .. import random as st_random
from ..autograd import no_grad
from ..nn import functional as F
from ..serialization import load, save
from ._device import _as_tensor, _model_device
from .history import History

CHECKPOINT_NAME = "last.safetensors"
_CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scheduler", "rng", "loader", "history")


def _is_accumulator(metric) -> bool:
    return all(callable(getattr(metric, name, None)) for name in ("reset", "update", "compute"))


def _start_metrics(metrics) -> None:
    for metric in (metrics or {}).values():
        if _is_accumulator(metric):
            metric.reset()


def _batch_stats(logits, targets, loss, metrics) -> dict:
    """Sums over the batch: loss, correct predictions and each per-batch metric (times the batch size).

    Accumulator metrics are updated with the batch instead; :func:`_means` reads them out.
    Accuracy counts every target element, so dense (per-pixel) targets give pixel accuracy.
    """
    n = targets.shape[0]
    stats = {"n": n, "loss": float(loss.item()) * n}
    if logits.ndim >= 2 and targets.ndim == logits.ndim - 1:
        stats["correct"] = int((logits.argmax(1) == targets).sum().item())
        stats["labels"] = int(targets.numel())
    for name, fn in (metrics or {}).items():
        if _is_accumulator(fn):
            fn.update(logits, targets)
        else:
            stats[name] = float(fn(logits, targets)) * n
    return stats


def _add(total: dict, stats: dict) -> None:
    for key, value in stats.items():
        total[key] = total.get(key, 0) + value


def _means(total: dict, metrics) -> dict:
    n = total.get("n", 0)
    if n == 0:
        return {"loss": math.nan, "accuracy": math.nan, **{name: math.nan for name in metrics or {}}}
    out = {"loss": total["loss"] / n,
           "accuracy": total["correct"] / total["labels"] if "correct" in total else math.nan}
    for name, fn in (metrics or {}).items():
        out[name] = float(fn.compute()) if _is_accumulator(fn) else total[name] / n
    return out


def evaluate(model, loader, loss_fn=F.cross_entropy, metrics=None) -> dict:
    """Mean loss and accuracy of model over loader, in eval mode and without gradients.

    Args:
        model: the module; its train/eval mode is restored afterwards.
        loader: an iterable of ``(inputs, targets)`` batches.
        loss_fn: ``loss_fn(logits, targets)``, a mean over the batch.
        metrics: optional ``{name: metric}``: either ``fn(logits, targets) -> float``, averaged
            over the samples, or an accumulator with ``reset()``, ``update(logits, targets)`` and
            ``compute()`` (e.g. :class:`striate.metrics.MeanIoU`), read once over all batches.

    Returns:
        ``{"loss": float, "accuracy": float, **metrics}`` (NaN for an empty loader).
    """
    was_training = model.training
    device = _model_device(model)
    total = {}
    model.eval()
    _start_metrics(metrics)
    try:
        with no_grad():
            for inputs, targets in loader:
                inputs, targets = _as_tensor(inputs, device), _as_tensor(targets, device)
                logits = model(inputs)
                _add(total, _batch_stats(logits, targets, loss_fn(logits, targets), metrics))
    finally:
        model.train(was_training)
    return _means(total, metrics)


def _progress_bar(loader, epoch, epochs, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    total = len(loader) if hasattr(loader, "__len__") else None
    return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", file=sys.stderr, leave=False,
                dynamic_ncols=True, unit="batch")


def _report(line, bar_used):
    if bar_used:
        from tqdm import tqdm
        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


def _train_epoch(model, loader, optimizer, loss_fn, metrics, bar):
    device = _model_device(model)
    total = {}
    model.train()
    _start_metrics(metrics)
    for inputs, targets in loader:
        inputs, targets = _as_tensor(inputs, device), _as_tensor(targets, device)
        optimizer.zero_grad()
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        _add(total, _batch_stats(logits.detach(), targets, loss, metrics))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total['loss'] / total['n']:.4f}", refresh=False)
    return _means(total, metrics)


def checkpoint_path(checkpoint_dir) -> str:
    """Where :func:`fit` keeps its checkpoint inside checkpoint_dir."""
    return os.path.join(os.fspath(checkpoint_dir), CHECKPOINT_NAME)


def _save_checkpoint(path, epoch, model, optimizer, scheduler, loader, history, meta):
    save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
          "scheduler": scheduler.state_dict() if scheduler is not None else None,
          "rng": st_random.get_rng_state(),
          "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
          "history": history.to_dict(), "meta": meta}, path)


def load_weights(module, state_dict, source, caller: str) -> None:
    """``module.load_state_dict(state_dict)``, with a state that does not fit the module (missing,
    unexpected or mis-shaped entries: load_state_dict's RuntimeError) raised as a ValueError that
    names caller and source (the checkpoint file)."""
    try:
        module.load_state_dict(state_dict)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{caller}: {source} does not fit {type(module).__name__}: {exc}") from exc


def _restore_checkpoint(path, model, optimizer, scheduler, loader) -> tuple[int, History]:
    state = load(path)
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"fit: {path} is not a checkpoint of fit: it lacks {', '.join(missing)}")
    load_weights(model, state["model"], path, "fit")
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            raise ValueError(f"fit: {path} holds no scheduler state, but a scheduler was given")
        scheduler.load_state_dict(state["scheduler"])
    if state["loader"] is not None and hasattr(loader, "load_state_dict"):
        loader.load_state_dict(state["loader"])
    st_random.set_rng_state(state["rng"])
    return int(state["epoch"]), History.from_dict(state["history"])


def fit(model, train_loader, optimizer, epochs, loss_fn=F.cross_entropy, val_loader=None,
        scheduler=None, checkpoint_dir=None, progress=True, metrics=None, resume=False,
        meta=None, on_epoch_end=None) -> History:
    """Train model for a number of epochs; optionally validate, schedule and checkpoint.

    Args:
        model: the module to train (moved batches follow its parameters' device).
        train_loader: an iterable of ``(inputs, targets)`` batches, iterated once per epoch.
        optimizer: a striate optimizer over the model's parameters.
        epochs: the total number of epochs (with ``resume``, counting those already done).
        loss_fn: ``loss_fn(logits, targets)``, a mean over the batch.
        val_loader: evaluated with :func:`evaluate` after every epoch.
        scheduler: an lr scheduler, stepped once after every epoch.
        checkpoint_dir: a folder for ``last.safetensors``, written after every epoch.
        progress: show a tqdm bar with the running loss and an epoch summary (stderr).
        metrics: optional ``{name: metric}`` (a per-batch function or an accumulator, as in
            :func:`evaluate`), recorded per epoch as ``train_<name>`` / ``val_<name>``. Accuracy
            counts every target element: with per-pixel targets it is pixel accuracy.
        resume: continue from ``checkpoint_dir``'s checkpoint when there is one
            (bit-exactly, see the module docstring); without one, start afresh.
        meta: plain values stored with every checkpoint under ``"meta"`` (e.g. the model name).
        on_epoch_end: optional ``on_epoch_end(epoch, model, history)``, called after each
            epoch is recorded and checkpointed (e.g. to write figures); it must not draw from
            striate's random state if bit-exact resumption matters.

    Returns:
        The :class:`History` of every epoch (those restored from the checkpoint included).

    Raises:
        ValueError: with ``resume``, a checkpoint that is corrupt, not one of ``fit``, or of
            another model (naming the file).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("fit: resume=True needs checkpoint_dir")
    path = None
    if checkpoint_dir is not None:
        os.makedirs(checkpoint_dir, exist_ok=True)
        path = checkpoint_path(checkpoint_dir)
    history, start = History(list(metrics or {})), 0
    if resume and os.path.exists(path):
        start, history = _restore_checkpoint(path, model, optimizer, scheduler, train_loader)
    for epoch in range(start + 1, epochs + 1):
        began = time.perf_counter()
        bar = _progress_bar(train_loader, epoch, epochs, progress)
        try:
            train = _train_epoch(model, train_loader, optimizer, loss_fn, metrics, bar)
        finally:
            if bar is not None:
                bar.close()
        lr = optimizer.param_groups[0]["lr"]
        val = evaluate(model, val_loader, loss_fn, metrics) if val_loader is not None else None
        if scheduler is not None:
            scheduler.step()
        history.append(epoch, train, val, lr, time.perf_counter() - began)
        if progress:
            _report(history.summary(-1), bar is not None)
        if path is not None:
            _save_checkpoint(path, epoch, model, optimizer, scheduler, train_loader, history, meta)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, history)
    return history
