"""striate.optim against torch.optim: parameters after 20 steps, LR schedules, state dicts.

The problem is small and has no nn dependency: a few leaf tensors of different
shapes (one 0-d, one that gets no gradient) and a loss built from Tensor ops,
written once and run on both libraries' tensors.
"""
import math
import warnings

import numpy as np
import pytest

import striate as st
from striate.optim import SGD, Adam, AdamW, Optimizer
from striate.optim.lr_scheduler import CosineAnnealingLR, StepLR

SHAPES = [(3, 4), (4,), (), (2, 5)]  # the last one is not used by the loss: its grad stays None
TOL = {np.float64: 1e-6, np.float32: 1e-5}


def _arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    x = rng.standard_normal((6, 3)).astype(dtype)
    y = rng.standard_normal((6, 4)).astype(dtype)
    return params, x, y


def _loss(params, x, y):
    """Same expression for striate and torch tensors: squares, products, broadcasting, a matmul."""
    w, b, s, _unused = params
    r = x @ w + b - y
    c = (w * b).sum() * s - 1.0
    return (r * r).mean() + c * c * 0.1 + s * s * 0.5 + (w * w).sum() * 0.1


def _train(make_opt, params, x, y, steps):
    opt = make_opt(params)
    for _ in range(steps):
        opt.zero_grad()
        _loss(params, x, y).backward()
        opt.step()
    return opt


def _pair(torch, dtype, seed=0):
    arrays, x, y = _arrays(dtype, seed)
    st_params = [st.tensor(a, requires_grad=True) for a in arrays]
    torch_params = [torch.tensor(a, requires_grad=True) for a in arrays]
    return (st_params, st.tensor(x), st.tensor(y)), (torch_params, torch.tensor(x), torch.tensor(y))


def _assert_params_close(st_params, torch_params, tol):
    for p, tp in zip(st_params, torch_params):
        assert p.dtype == tp.detach().numpy().dtype
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=tol, atol=tol)


CASES = [
    ("sgd", "SGD", dict(lr=0.02)),
    ("sgd_momentum", "SGD", dict(lr=0.02, momentum=0.9)),
    ("sgd_dampening", "SGD", dict(lr=0.02, momentum=0.9, dampening=0.3)),
    ("sgd_nesterov_wd", "SGD", dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", "Adam", dict(lr=0.01)),
    ("adam_wd", "Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.05)),
    ("adam_amsgrad", "Adam", dict(lr=0.01, amsgrad=True, eps=1e-6)),
    ("adamw", "AdamW", dict(lr=0.01)),
    ("adamw_amsgrad", "AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]
OURS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=[c[0] for c in CASES])
def test_twenty_steps_match_torch(torch, name, cls, kwargs, dtype):
    (sp, sx, sy), (tp, tx, ty) = _pair(torch, dtype)
    _train(lambda ps: OURS[cls](ps, **kwargs), sp, sx, sy, 20)
    _train(lambda ps: getattr(torch.optim, cls)(ps, foreach=False, **kwargs), tp, tx, ty, 20)
    _assert_params_close(sp, tp, TOL[dtype])
    initial = _arrays(dtype)[0]
    assert np.array_equal(sp[3].numpy(), initial[3]), "a parameter without a gradient must not move"
    assert not np.allclose(sp[0].numpy(), initial[0])


def test_state_matches_torch_layout(torch):
    (sp, sx, sy), (tp, tx, ty) = _pair(torch, np.float64)
    ours = _train(lambda ps: Adam(ps, lr=0.01, amsgrad=True), sp, sx, sy, 3).state_dict()
    ref = _train(lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True, foreach=False), tp, tx, ty, 3)
    ref = ref.state_dict()
    assert sorted(ours["state"]) == sorted(ref["state"]) == [0, 1, 2]  # index 3 had no gradient
    for i, state in ours["state"].items():
        assert set(state) == set(ref["state"][i])
        assert state["step"] == ref["state"][i]["step"].item() == 3
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_allclose(state[key].numpy(), ref["state"][i][key].numpy(), rtol=1e-9)
    assert ours["param_groups"][0]["params"] == ref["param_groups"][0]["params"] == [0, 1, 2, 3]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad"):
        assert ours["param_groups"][0][key] == ref["param_groups"][0][key]


def test_plain_sgd_keeps_no_state_like_torch(torch):
    (sp, sx, sy), (tp, tx, ty) = _pair(torch, np.float64)
    ours = _train(lambda ps: SGD(ps, lr=0.1), sp, sx, sy, 2).state_dict()
    ref = _train(lambda ps: torch.optim.SGD(ps, lr=0.1, foreach=False), tp, tx, ty, 2).state_dict()
    assert ours["state"] == ref["state"] == {}
    momentum = _train(lambda ps: SGD(ps, lr=0.1, momentum=0.9), sp, sx, sy, 2).state_dict()
    assert sorted(momentum["state"]) == [0, 1, 2] and set(momentum["state"][0]) == {"momentum_buffer"}


def test_param_groups_with_their_own_options_match_torch(torch):
    (sp, sx, sy), (tp, tx, ty) = _pair(torch, np.float64)

    def groups(ps):
        return [{"params": [ps[0]], "lr": 0.2, "momentum": 0.5}, {"params": ps[1:], "weight_decay": 0.1}]

    opt = _train(lambda ps: SGD(groups(ps), lr=0.01, momentum=0.9), sp, sx, sy, 20)
    _train(lambda ps: torch.optim.SGD(groups(ps), lr=0.01, momentum=0.9, foreach=False), tp, tx, ty, 20)
    _assert_params_close(sp, tp, 1e-6)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.5, 0.9]

    (sp, sx, sy), (tp, tx, ty) = _pair(torch, np.float64)
    _train(lambda ps: Adam(groups(ps)[:1] + [{"params": ps[1:], "lr": 0.05}], lr=0.01), sp, sx, sy, 20)
    _train(lambda ps: torch.optim.Adam(groups(ps)[:1] + [{"params": ps[1:], "lr": 0.05}], lr=0.01,
                                       foreach=False), tp, tx, ty, 20)
    _assert_params_close(sp, tp, 1e-6)


def test_add_param_group_later_matches_torch(torch):
    (sp, sx, sy), (tp, tx, ty) = _pair(torch, np.float64)
    for params, x, y, cls in ((sp, sx, sy, Adam), (tp, tx, ty, torch.optim.Adam)):
        opt = cls(params[:2], lr=0.01)
        for step in range(10):
            if step == 4:
                opt.add_param_group({"params": [params[2]], "lr": 0.1})
            opt.zero_grad()
            _loss(params, x, y).backward()
            opt.step()
    _assert_params_close(sp, tp, 1e-6)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}]),
], ids=["sgd", "adam", "adamw_groups"])
def test_state_dict_round_trip_continues_identically(make):
    straight, x, y = _striate_problem()
    _train(make, straight, x, y, 20)

    first, _, _ = _striate_problem()
    old = _train(make, first, x, y, 10)
    resumed = [st.tensor(p.numpy(), requires_grad=True) for p in first]
    opt = make(resumed)
    opt.load_state_dict(old.state_dict())
    for p in first:  # the loaded state is a copy: stepping the old optimizer must not change it
        p.grad = st.tensor(np.ones(p.shape, p.dtype))
    old.step()
    for _ in range(10):
        opt.zero_grad()
        _loss(resumed, x, y).backward()
        opt.step()
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _striate_problem(dtype=np.float64):
    arrays, x, y = _arrays(dtype)
    return [st.tensor(a, requires_grad=True) for a in arrays], st.tensor(x), st.tensor(y)


def test_load_state_dict_casts_to_the_parameter_dtype_and_keeps_step_a_number():
    params64, x, y = _striate_problem(np.float64)
    saved = _train(lambda ps: Adam(ps, lr=0.01), params64, x, y, 2).state_dict()
    saved["state"][0]["step"] = st.tensor(2.0)  # torch keeps step as a 0-d tensor
    params32 = [st.tensor(p.numpy().astype(np.float32), requires_grad=True) for p in params64]
    opt = Adam(params32, lr=0.01)
    opt.load_state_dict(saved)
    assert opt.state[params32[0]]["exp_avg"].dtype == np.float32
    step = opt.state[params32[0]]["step"]
    assert step == 2.0 and not isinstance(step, st.Tensor)


def test_add_param_group_forms_and_errors():
    params, _, _ = _striate_problem()
    opt = SGD(params[:1], lr=0.1)
    opt.add_param_group({"params": params[1], "momentum": 0.5})  # a lone Tensor
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is params[1]
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["momentum"] == 0.5
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([params[2]])
    with pytest.raises(ValueError, match="no 'params' entry"):
        opt.add_param_group({"lr": 0.1})
    assert repr(SGD.__init__.__defaults__[0]) == "<required parameter>"


def test_load_state_dict_keeps_state_entries_it_cannot_match():
    params, x, y = _striate_problem()
    saved = _train(lambda ps: SGD(ps, lr=0.1, momentum=0.9), params, x, y, 1).state_dict()
    saved["state"]["note"] = {"epoch": 3}
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.load_state_dict(saved)
    assert opt.state["note"] == {"epoch": 3}
    assert opt.state_dict()["state"]["note"] == {"epoch": 3}


def test_load_state_dict_refuses_mismatched_groups():
    params, x, y = _striate_problem()
    saved = _train(lambda ps: SGD(ps, lr=0.1), params, x, y, 1).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="parameter group 0 has 4 parameters"):
        SGD(params[:2], lr=0.1).load_state_dict(saved)


def test_zero_grad():
    params, x, y = _striate_problem()
    opt = SGD(params, lr=0.1)
    _loss(params, x, y).backward()
    opt.zero_grad(set_to_none=False)
    assert params[3].grad is None
    assert all(np.array_equal(p.grad.numpy(), np.zeros(p.shape)) for p in params[:3])
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_with_closure_returns_the_loss():
    params, x, y = _striate_problem()
    opt = SGD(params, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        return loss

    with st.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert math.isfinite(loss.item())


@pytest.mark.parametrize("make,match", [
    (lambda ps: SGD(ps[0], lr=0.1), "iterable of Tensors or dicts"),
    (lambda ps: SGD([], lr=0.1), "empty parameter list"),
    (lambda ps: SGD(ps), "required optimization parameter lr"),
    (lambda ps: SGD({ps[0], ps[1]}, lr=0.1), "ordered collection"),
    (lambda ps: SGD([{"params": {ps[0]}}], lr=0.1), "ordered collection"),
    (lambda ps: SGD([ps[0], 3.0], lr=0.1), "can only optimize Tensors"),
    (lambda ps: SGD([ps[0] * 2], lr=0.1), "leaf"),
    (lambda ps: SGD([ps[0], ps[0]], lr=0.1), "twice"),
    (lambda ps: SGD([{"params": ps[:2]}, {"params": ps[1:]}], lr=0.1), "more than one parameter group"),
    (lambda ps: SGD(ps, lr=-1.0), "learning rate"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-0.5), "weight_decay"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda ps: Adam(ps, lr=-0.1), "learning rate"),
    (lambda ps: Adam(ps, betas=(1.0, 0.999)), "beta at index 0"),
    (lambda ps: AdamW(ps, betas=(0.9, -0.1)), "beta at index 1"),
    (lambda ps: Adam(ps, eps=-1.0), "eps"),
    (lambda ps: AdamW(ps, weight_decay=-1.0), "weight_decay"),
])
def test_bad_arguments_are_refused(make, match):
    params, _, _ = _striate_problem()
    with pytest.raises((TypeError, ValueError), match=match):
        make(params)


def test_optimizer_repr_and_base_class():
    params, _, _ = _striate_problem()
    text = repr(AdamW(params))
    assert text.startswith("AdamW (") and "weight_decay: 0.01" in text
    assert isinstance(SGD(params, lr=0.1), Optimizer)


# ------------------------------------------------------------------ schedulers
def _lr_sequences(make_ours, make_torch, torch, steps=30):
    p = st.tensor(np.zeros(2), requires_grad=True)
    tp = torch.zeros(2, requires_grad=True)
    q = st.tensor(np.zeros(1), requires_grad=True)
    tq = torch.zeros(1, requires_grad=True)
    ours_opt = SGD([{"params": [p]}, {"params": [q], "lr": 0.3}], lr=0.1)
    ref_opt = torch.optim.SGD([{"params": [tp]}, {"params": [tq], "lr": 0.3}], lr=0.1)
    ours, ref = make_ours(ours_opt), make_torch(ref_opt)
    seq_ours, seq_ref = [ours.get_last_lr()], [ref.get_last_lr()]
    for _ in range(steps):
        ours_opt.step()
        ref_opt.step()
        ours.step()
        ref.step()
        seq_ours.append(ours.get_last_lr())
        seq_ref.append(ref.get_last_lr())
        assert [g["lr"] for g in ours_opt.param_groups] == seq_ours[-1]
    return seq_ours, seq_ref


@pytest.mark.parametrize("name,ours,kwargs", [
    ("step", StepLR, dict(step_size=7, gamma=0.5)),
    ("step_default_gamma", StepLR, dict(step_size=3)),
    ("cosine", CosineAnnealingLR, dict(T_max=10, eta_min=0.001)),
    ("cosine_long", CosineAnnealingLR, dict(T_max=25)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_scheduler_lr_sequence_matches_torch(torch, name, ours, kwargs):
    ref_cls = getattr(torch.optim.lr_scheduler, ours.__name__)
    seq_ours, seq_ref = _lr_sequences(lambda o: ours(o, **kwargs), lambda o: ref_cls(o, **kwargs), torch)
    assert len(seq_ours) == 31
    for a, b in zip(seq_ours, seq_ref):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("ours,kwargs", [(StepLR, dict(step_size=4, gamma=0.5)),
                                         (CosineAnnealingLR, dict(T_max=10, eta_min=0.01))])
def test_scheduler_closed_form_epoch_matches_torch(torch, ours, kwargs):
    ref_cls = getattr(torch.optim.lr_scheduler, ours.__name__)
    opt = SGD([st.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    ref_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched, ref = ours(opt, **kwargs), ref_cls(ref_opt, **kwargs)
    ref_opt.step()
    for epoch in (3, 8, 17, 5):
        sched.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates step(epoch)
            ref.step(epoch)
        assert sched.get_last_lr() == pytest.approx(ref.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("make", [lambda o: StepLR(o, step_size=4, gamma=0.5),
                                  lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.01)],
                         ids=["step", "cosine"])
def test_scheduler_state_dict_round_trip(make):
    def setup():
        opt = SGD([st.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
        return opt, make(opt)

    opt, sched = setup()
    for _ in range(9):
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in sched_state and sched_state["last_epoch"] == 9
    straight = [(sched.step(), sched.get_last_lr())[1] for _ in range(12)]

    opt2, sched2 = setup()
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert [(sched2.step(), sched2.get_last_lr())[1] for _ in range(12)] == straight


def test_scheduler_resume_and_bad_arguments():
    opt = SGD([st.tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(opt, step_size=2, last_epoch=5)
    with pytest.raises(TypeError, match="not a striate Optimizer"):
        StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(opt, T_max=0)
    StepLR(opt, step_size=2)
    resumed = StepLR(opt, step_size=2, gamma=0.5, last_epoch=5)
    assert resumed.base_lrs == [0.1] and resumed.last_epoch == 6


# CPU float32/float64 parameters take striate._cpu's fused one-pass updates; the Tensor-operation
# update (the one GPU arrays and float16 take) is their reference, on a problem large enough for
# the kernels' threads (40,000 elements).
FUSED_CASES = [
    (SGD, dict(lr=0.05)),
    (SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    (SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)),
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
    (AdamW, dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", FUSED_CASES, ids=[f"{c.__name__}-{sorted(k)}" for c, k in FUSED_CASES])
def test_fused_cpu_update_matches_tensor_update(cls, kwargs, dtype, monkeypatch):
    import striate.optim.optimizer as optimizer_module
    from striate.optim import adam, sgd

    rng = np.random.default_rng(5)
    start = [rng.standard_normal(s).astype(dtype) for s in [(200, 200), (7,), ()]]
    grads = [[rng.standard_normal(a.shape).astype(dtype) for a in start] for _ in range(4)]

    def run():
        params = [st.tensor(a.copy(), requires_grad=True) for a in start]
        opt = cls(params, **kwargs)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = st.tensor(g)
            opt.step()
        return params, opt

    calls = []
    for module in (sgd, adam):  # count the fused kernel's calls, then run it
        kernel = getattr(module._cpu, "sgd_update" if module is sgd else "adam_update")
        monkeypatch.setattr(module, "_cpu", type("CountingCpu", (), {
            kernel.__name__: staticmethod(lambda *a, k=kernel: (calls.append(k.__name__), k(*a)))}))
    fused, fused_opt = run()
    assert len(calls) == len(start) * len(grads), "the CPU float32/float64 update must be the fused one"
    for module in (sgd, adam, optimizer_module):
        monkeypatch.setattr(module, "fused_arrays", lambda *t: None)
    reference, reference_opt = run()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for p, q in zip(fused, reference):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=tol, atol=tol)
    for i in range(len(start)):  # and the optimizer's state, which a state dict carries
        for key, value in reference_opt.state[reference[i]].items():
            got = fused_opt.state[fused[i]][key]
            if isinstance(value, st.Tensor):
                np.testing.assert_allclose(got.numpy(), value.numpy(), rtol=tol, atol=tol, err_msg=key)
            else:
                assert got == value, key


def test_fused_update_checks_its_arrays():
    p, g = np.zeros(6, np.float32), np.ones(6, np.float32)
    with pytest.raises(ValueError, match="sgd_update: grad must have 6 elements"):
        st._cpu.sgd_update(p, np.ones(5, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="sgd_update: grad must have dtype float32"):
        st._cpu.sgd_update(p, g.astype(np.float64), None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="momentum needs buf"):
        st._cpu.sgd_update(p, g, None, 0.1, 0.9, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="adam_update: step must be >= 1"):
        st._cpu.adam_update(p, g, p.copy(), p.copy(), None, 0.1, 0.9, 0.99, 1e-8, 0.0, False, 0)
    with pytest.raises(ValueError, match="must be writable"):
        ro = p.copy()
        ro.flags.writeable = False
        st._cpu.sgd_update(ro, g, None, 0.1, 0.0, 0.0, 0.0, False, False)
    st._cpu.sgd_update(p, g, None, 0.5, 0.0, 0.0, 0.0, False, False)
    np.testing.assert_array_equal(p, np.full(6, -0.5, np.float32))
