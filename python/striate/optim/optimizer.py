"""``Optimizer``: parameter groups, per-parameter state and state dicts, as in torch.optim.

An optimizer holds ``param_groups`` (a list of dicts, each with a ``"params"``
list and that group's options) and ``state`` (per parameter, e.g. Adam's
moments). Subclasses implement ``step()``: they update parameters in place
under ``no_grad`` with Tensor operations only, so the same code runs on CPU
and GPU arrays; parameters whose ``.grad`` is None are skipped.

``state_dict()`` uses torch's layout: ``{"state": {index: {name: Tensor or
number}}, "param_groups": [{option: value, ..., "params": [index, ...]}]}``,
where parameters are numbered in group order. Like torch, it holds references
to the live state tensors; ``load_state_dict`` copies them.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor


class _Required:
    """Marks an option (SGD's ``lr``) that every parameter group must give."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


def fused_arrays(*tensors):
    """The arrays of tensors for striate._cpu's fused updates (one pass per parameter), or None
    where those cannot run them: a None, a GPU array, another dtype than float32/float64, dtypes
    that differ, a non-contiguous or read-only array. The Tensor-operation update then runs."""
    arrays = []
    for t in tensors:
        a = None if t is None else t.data
        if (not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64)
                or a.dtype != tensors[0].data.dtype or not a.flags.c_contiguous
                or not a.flags.writeable):
            return None
        arrays.append(a)
    return arrays
_SET_ERROR = ("optimizer parameters must be an ordered collection (a list), not a set: a set's order "
              "changes between runs, and state dicts number parameters by position")


class Optimizer:
    """Base class of the optimizers.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each
            with a ``"params"`` entry and optional per-group options.
        defaults: the options, used by groups that do not set them.
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("params given to the optimizer must be an iterable of Tensors or dicts, "
                            "got a single Tensor")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_ERROR)
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (missing ones come from the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"add_param_group: a parameter group must be a dict, "
                            f"got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_ERROR)
        elif params is None:
            raise ValueError("add_param_group: the group has no 'params' entry")
        group["params"] = params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("optimizer can only optimize leaf Tensors (this one was computed "
                                 "from others; optimize its inputs instead)")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group did not specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("a parameter group contains the same parameter twice")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (default, like torch), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad, group)
        return loss

    def _update(self, param: Tensor, grad: Tensor, group: dict) -> None:
        """Update one parameter in place (grad mode is off); its state is ``self.state[param]``."""
        raise NotImplementedError

    # ----------------------------------------------------------- state dicts
    def state_dict(self) -> dict:
        """The optimizer's state and options, parameters replaced by their index (torch's layout)."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state dict from :meth:`state_dict` (ours, or torch's converted to Tensors).

        Parameters are matched by position; tensors are copied to each
        parameter's device (floating ones also to its dtype).
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the state dict has {len(saved_groups)} parameter "
                             f"groups, this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"load_state_dict: parameter group {i} has {len(saved['params'])} "
                                 f"parameters in the state dict, {len(group['params'])} here")
        by_index = {i: p for saved, group in zip(saved_groups, self.param_groups)
                    for i, p in zip(saved["params"], group["params"])}
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            param = by_index.get(key)
            if param is None:
                state[key] = value
            else:
                state[param] = {name: _cast(param, name, v) for name, v in value.items()}
        self.state = state
        self.param_groups = [dict(saved, params=group["params"])
                             for saved, group in zip(saved_groups, self.param_groups)]


def _cast(param: Tensor, name, value):
    """A copy of one state value, placed like param (``step`` stays a plain number)."""
    if not isinstance(value, Tensor):
        return value
    if name == "step":
        return value.item()
    dtype = param.dtype if param.dtype.kind == "f" else None
    moved = value.to(device=param.device, dtype=dtype)
    return moved.clone() if moved is value else moved
