"""``striate.autograd``: Function, grad mode and gradient checking."""
from .function import Function
from .gradcheck import gradcheck
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "gradcheck", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled"]
