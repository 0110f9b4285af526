"""``striate.Tensor``: an array (numpy on the CPU, cupy on the GPU) with autograd.

Every differentiable operation is a :class:`striate.autograd.Function`; the
methods here only route to them. ``Tensor.data`` is the underlying array.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _backend
from .autograd import math as M
from .autograd import shape as S
from .autograd.function import Function, run_backward
from .autograd.grad_mode import no_grad

_FLOAT = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _device_of(array) -> str:
    return "cuda" if _backend.is_cuda_array(array) else "cpu"


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


class Tensor:
    """A multi-dimensional array that can record operations for autograd.

    Attributes:
        data: the numpy (CPU) or cupy (CUDA) array.
        requires_grad: whether gradients flow to this tensor.
        grad: the accumulated gradient (a Tensor) of a leaf, or None.
    """

    __array_priority__ = 1000  # numpy scalars defer to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False):
        if not (isinstance(data, np.ndarray) or _backend.is_cuda_array(data)):
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self._ctx = None
        self._out_index = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------ properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return _device_of(self.data)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({self.numpy()!r}, device='{self.device}'{grad})"

    # -------------------------------------------------------------- autograd
    def requires_grad_(self, mode: bool = True) -> "Tensor":
        if mode and self.dtype not in _FLOAT:
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(mode)
        return self

    def backward(self, gradient=None) -> None:
        """Accumulate d(self)/d(leaf) * gradient into every leaf's ``.grad``."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError("backward: gradient must be given for a non-scalar tensor")
            gradient = Tensor(_backend.array_module(self.data).ones(self.shape, dtype=self.dtype))
        elif not isinstance(gradient, Tensor):
            gradient = Tensor(gradient)
        if gradient.device != self.device:
            gradient = Tensor(_backend.to_device(gradient.data, self.device))
        if gradient.shape != self.shape:
            raise ValueError(f"backward: gradient shape {gradient.shape} must equal {self.shape}")
        run_backward(self, gradient)

    def _accumulate_grad(self, g) -> None:
        g = g.astype(self.dtype, copy=False)
        if g.shape != self.shape:
            g = _backend.array_module(g).broadcast_to(g, self.shape)
        if self.grad is None:
            self.grad = Tensor(g.copy())
        else:
            self.grad = Tensor(self.grad.data + g)

    def detach(self) -> "Tensor":
        return Tensor(self.data)

    def zero_grad_(self) -> None:
        self.grad = None

    # ---------------------------------------------------------- conversions
    def numpy(self) -> np.ndarray:
        """A numpy copy of the data (from any device)."""
        if _backend.is_cuda_array(self.data):
            return self.data.get()
        return np.array(self.data, copy=True)

    def item(self):
        return self.data.reshape(-1)[0].item() if self.numel() == 1 else self._item_error()

    def _item_error(self):
        raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device=None, dtype=None) -> "Tensor":
        """Copy to a device ("cpu" / "cuda") and/or dtype; differentiable."""
        out = self
        if device is not None and str(device) != self.device:
            out = _ToDevice.apply(out, str(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = _Cast.apply(out, np.dtype(dtype))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=np.float64)

    # ------------------------------------------------------------ arithmetic
    def __add__(self, o):
        return M.Add.apply(self, o)

    def __radd__(self, o):
        return M.Add.apply(o, self)

    def __sub__(self, o):
        return M.Sub.apply(self, o)

    def __rsub__(self, o):
        return M.Sub.apply(o, self)

    def __mul__(self, o):
        return M.Mul.apply(self, o)

    def __rmul__(self, o):
        return M.Mul.apply(o, self)

    def __truediv__(self, o):
        return M.Div.apply(self, o)

    def __rtruediv__(self, o):
        return M.Div.apply(o, self)

    def __neg__(self):
        return M.Neg.apply(self)

    def __pow__(self, p):
        if not isinstance(p, numbers.Real):
            raise TypeError("pow: the exponent must be a number")
        return M.Pow.apply(self, p)

    def __matmul__(self, o):
        return M.MatMul.apply(self, o)

    def __rmatmul__(self, o):
        return M.MatMul.apply(o, self)

    def _compare(self, o, op):
        other = o.data if isinstance(o, Tensor) else o
        return Tensor(op(self.data, other))

    def __eq__(self, o):
        return self._compare(o, lambda a, b: a == b)

    def __ne__(self, o):
        return self._compare(o, lambda a, b: a != b)

    def __lt__(self, o):
        return self._compare(o, lambda a, b: a < b)

    def __le__(self, o):
        return self._compare(o, lambda a, b: a <= b)

    def __gt__(self, o):
        return self._compare(o, lambda a, b: a > b)

    def __ge__(self, o):
        return self._compare(o, lambda a, b: a >= b)

    __hash__ = object.__hash__

    def __bool__(self):
        if self.numel() != 1:
            raise ValueError("the truth value of a tensor with more than one element is ambiguous")
        return bool(self.data.reshape(-1)[0])

    def exp(self):
        return M.Exp.apply(self)

    def log(self):
        return M.Log.apply(self)

    def sqrt(self):
        return M.Sqrt.apply(self)

    def abs(self):
        return M.Abs.apply(self)

    def clamp(self, min=None, max=None):
        return M.Clamp.apply(self, min, max)

    def pow(self, p):
        return self ** p

    # ------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False):
        return M.Sum.apply(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return M.Mean.apply(self, dim, keepdim)

    def max(self, dim=None, keepdim=False):
        return M.Max.apply(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        xp = _backend.array_module(self.data)
        if dim is None:
            return Tensor(xp.asarray(self.data.argmax()))
        idx = self.data.argmax(axis=dim)
        return Tensor(xp.expand_dims(idx, dim) if keepdim else idx)

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return S.Reshape.apply(self, tuple(shape))

    view = reshape

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return S.Permute.apply(self, tuple(dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(dims)

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def t(self):
        return self.transpose(0, 1)

    def flatten(self, start_dim=0, end_dim=-1):
        shape = self.shape
        if not shape:
            return self.reshape(1)
        start, end = start_dim % len(shape), end_dim % len(shape)
        middle = 1
        for n in shape[start:end + 1]:
            middle *= n
        return self.reshape(shape[:start] + (middle,) + shape[end + 1:])

    def unsqueeze(self, dim):
        shape = list(self.shape)
        shape.insert(dim % (len(shape) + 1), 1)
        return self.reshape(tuple(shape))

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        if self.shape[dim] != 1:
            return self
        shape = list(self.shape)
        del shape[dim]
        return self.reshape(tuple(shape))

    def __getitem__(self, index):
        return S.GetItem.apply(self, _unwrap_index(index))

    def contiguous(self):
        return self

    def clone(self) -> "Tensor":
        return M.Mul.apply(self, 1) if self.requires_grad else Tensor(self.data.copy())

    # -------------------------------------------------------- in-place (no graph)
    # Used by initialisers and optimizers; like PyTorch, refused on a tensor
    # that requires grad while grad mode records.
    def _inplace(self, name):
        from .autograd.grad_mode import is_grad_enabled

        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{name}: a tensor that requires grad cannot be modified in place "
                               "outside striate.no_grad()")

    def _operand(self, other):
        if isinstance(other, Tensor):
            other = other.data
        if hasattr(other, "shape"):
            return _backend.to_device(other, self.device)
        return other

    def copy_(self, src) -> "Tensor":
        self._inplace("copy_")
        self.data[...] = self._operand(src)
        return self

    def fill_(self, value) -> "Tensor":
        self._inplace("fill_")
        self.data[...] = value
        return self

    def zero_(self) -> "Tensor":
        return self.fill_(0)

    def add_(self, other, alpha=1) -> "Tensor":
        self._inplace("add_")
        o = self._operand(other)
        self.data += o if alpha == 1 else o * alpha
        return self

    def sub_(self, other, alpha=1) -> "Tensor":
        return self.add_(other, -alpha)

    def mul_(self, other) -> "Tensor":
        self._inplace("mul_")
        self.data *= self._operand(other)
        return self

    def div_(self, other) -> "Tensor":
        self._inplace("div_")
        self.data /= self._operand(other)
        return self

    def addcmul_(self, t1, t2, value=1) -> "Tensor":
        """self += value * t1 * t2"""
        self._inplace("addcmul_")
        self.data += value * self._operand(t1) * self._operand(t2)
        return self

    def addcdiv_(self, t1, t2, value=1) -> "Tensor":
        """self += value * t1 / t2"""
        self._inplace("addcdiv_")
        self.data += value * self._operand(t1) / self._operand(t2)
        return self


class _ToDevice(Function):
    def forward(self, a, device):
        self.source = _device_of(a)
        return _backend.to_device(a, device)

    def backward(self, g):
        return _backend.to_device(g, self.source), None


class _Cast(Function):
    def forward(self, a, dtype):
        self.source = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.source), None


# ------------------------------------------------------------------ factories
def _resolve_dtype(data, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    a = np.asarray(data)
    if a.dtype == np.float64 and not isinstance(data, np.ndarray):
        return np.dtype(np.float32)  # Python floats default to float32, like torch
    return a.dtype


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor (a copy) from a list, number, numpy/cupy array or Tensor."""
    if isinstance(data, Tensor):
        data = data.data
    if _backend.is_cuda_array(data):
        arr = data.astype(dtype or data.dtype, copy=True)
    else:
        arr = np.array(data, dtype=_resolve_dtype(data, dtype), copy=True)
    if device is not None:
        arr = _backend.to_device(arr, str(device))
    return Tensor(arr, requires_grad=requires_grad)


def from_numpy(array) -> Tensor:
    """A tensor sharing memory with a numpy array."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def from_dlpack(obj) -> Tensor:
    """A tensor from any object implementing the DLPack protocol (zero-copy)."""
    if getattr(obj, "__dlpack_device__", None) and obj.__dlpack_device__()[0] == 2:  # kDLCUDA
        return Tensor(_backend.cupy_from_dlpack(obj))
    return Tensor(np.from_dlpack(obj))


def _full(shape, value, dtype, device, requires_grad):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    arr = np.full(shape, value, dtype=np.dtype(dtype or np.float32))
    if device is not None:
        arr = _backend.to_device(arr, str(device))
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _full(shape, 0, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _full(shape, 1, dtype, device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the global generator (see manual_seed)."""
    from .random import generator

    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    arr = generator().standard_normal(shape).astype(np.dtype(dtype or np.float32))
    return tensor(arr, device=device, requires_grad=requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform [0, 1) samples from the global generator (see manual_seed)."""
    from .random import generator

    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    arr = generator().random(shape).astype(np.dtype(dtype or np.float32))
    return tensor(arr, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None) -> Tensor:
    if end is None:
        start, end = 0, start
    ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    arr = np.arange(start, end, step, dtype=np.dtype(dtype or (np.int64 if ints else np.float32)))
    return tensor(arr, device=device)


def cat(tensors, dim=0) -> Tensor:
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    return S.Cat.apply(*tensors, axis=dim)


def stack(tensors, dim=0) -> Tensor:
    tensors = [t if isinstance(t, Tensor) else tensor(t) for t in tensors]
    return S.Stack.apply(*tensors, axis=dim)


__all__ = ["Tensor", "tensor", "from_numpy", "from_dlpack", "zeros", "ones", "randn", "rand",
           "arange", "cat", "stack", "no_grad"]
