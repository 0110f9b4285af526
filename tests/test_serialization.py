"""st.save / st.load: bit-exact round trips, the safetensors layout, refusal of pickles and
corrupt files (safetensors and .npz, each error naming the file and the tensor), and atomic writes
(a save killed with SIGKILL leaves a loadable checkpoint; the next save removes its temp file)."""
import io
import json
import math
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import striate as st
from striate.optim import Adam
from tests.cuda.conftest import cupy_or_skip

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]


def assert_same(a, b, where="obj"):
    """Equal values of identical types; tensors and arrays bit for bit; floats by bit pattern."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, (st.Tensor, np.ndarray, np.generic)):
        x, y = (a.numpy(), b.numpy()) if isinstance(a, st.Tensor) else (np.asarray(a), np.asarray(b))
        assert (x.dtype, x.shape) == (y.dtype, y.shape), f"{where}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
        assert x.tobytes() == y.tobytes(), f"{where}: data differ"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for (ka, va), kb in zip(a.items(), b):
            assert_same(ka, kb, f"{where} key")
            assert_same(va, b[kb], f"{where}.{ka}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _nested(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "model": {
            "conv.weight": st.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
            "conv.bias": st.tensor(rng.standard_normal(4)),  # float64
            "bn.num_batches_tracked": st.tensor(np.array(7, dtype=np.int64)),  # 0-d
            "mask": st.tensor(rng.random((2, 5)) > 0.5),
            "image": st.tensor(rng.integers(0, 256, (2, 3, 4), dtype=np.uint8)),
            "empty": st.tensor(np.zeros((0, 3), np.float32)),
            "empty0": st.tensor(np.zeros((0,), np.int64)),
        },
        "optimizer": {
            "state": {0: {"step": 12, "exp_avg": st.tensor(rng.standard_normal(3).astype(np.float32))},
                      1: {"momentum_buffer": st.tensor(rng.standard_normal((2, 2)))}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False,
                              "initial_lr": None, "params": [0, 1]}],
        },
        "numpy": {"array": np.arange(12, dtype=np.int32).reshape(3, 4), "scalar": np.float32(2.5),
                  "int_scalar": np.int64(-3), "float64_scalar": np.float64(0.1)},
        "floats": [math.nan, -math.inf, -0.0, 5e-324, 1.0 / 3.0],
        "ints": [0, -1, 2**100, True, False],
        "text": ["", "héllo ☃", "dots.in.keys"],
        "keys": {(1, ("a", None)): "tuple key", 2.5: "float key", None: "none key", -4: "int key",
                 "": "empty"},
        "nested": [[1, [2, (3, (4,))]], [], (), {}, None],
    }


def test_round_trip_is_bit_exact(tmp_path):
    obj = _nested()
    st.save(obj, tmp_path / "ckpt.safetensors")
    assert_same(st.load(tmp_path / "ckpt.safetensors"), obj)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 0, 3), (3, 4, 5)], ids=str)
def test_every_dtype_and_shape_round_trips(tmp_path, dtype, shape):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 2, shape).astype(dtype) if dtype == np.bool_ else \
        (rng.standard_normal(shape) * 100).astype(dtype)
    obj = {"t": st.tensor(data), "a": data.copy()}
    st.save(obj, tmp_path / "x")
    assert_same(st.load(tmp_path / "x"), obj)


def test_non_contiguous_and_big_endian_data_are_saved_by_value(tmp_path):
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    obj = {"strided": st.from_numpy(base[:, ::2, 1:]), "transposed": st.tensor(base).permute(2, 0, 1),
           "reversed": base[::-1], "big_endian": base.astype(">f8"), "fortran": np.asfortranarray(base)}
    st.save(obj, tmp_path / "x")
    out = st.load(tmp_path / "x")
    np.testing.assert_array_equal(out["strided"].numpy(), base[:, ::2, 1:])
    np.testing.assert_array_equal(out["transposed"].numpy(), base.transpose(2, 0, 1))
    np.testing.assert_array_equal(out["reversed"], base[::-1])
    assert out["big_endian"].dtype == np.dtype("<f8")
    np.testing.assert_array_equal(out["big_endian"], base)
    np.testing.assert_array_equal(out["fortran"], base)


def test_loaded_tensors_are_writable_cpu_leaves_and_sharing_is_kept(tmp_path):
    t = st.tensor(np.ones(3), requires_grad=True)
    st.save({"a": t, "b": [t]}, tmp_path / "x")
    out = st.load(tmp_path / "x")
    assert out["a"] is out["b"][0]
    assert out["a"].device == "cpu" and not out["a"].requires_grad
    out["a"].add_(1.0)
    np.testing.assert_array_equal(out["a"].numpy(), [2.0, 2.0, 2.0])


def test_file_is_safetensors(tmp_path):
    """The layout of the format spec, parsed by hand: header length, JSON header, tiled byte buffer."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    obj = {"layer": {"w": st.tensor(w), "n": st.tensor(np.array([1, 2], np.int64))}, "step": 3}
    st.save(obj, tmp_path / "x")
    raw = (tmp_path / "x").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and raw[8:9] == b"{"
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    assert header["layer.w"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["layer.n"] == {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}
    assert len(data) == 40
    np.testing.assert_array_equal(np.frombuffer(data[:24], "<f4").reshape(2, 3), w)
    structure = json.loads(header["__metadata__"]["striate.structure"])
    assert structure["dict"][1] == [{"str": "step"}, {"int": 3}]


def test_foreign_safetensors_file_loads_as_flat_dict(tmp_path):
    a = np.arange(4, dtype=np.float32)
    header = {"__metadata__": {"format": "pt"},
              "embed.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    _write_raw(tmp_path / "x", header, a.tobytes())
    out = st.load(tmp_path / "x")
    assert list(out) == ["embed.weight"]
    np.testing.assert_array_equal(out["embed.weight"].numpy(), a.reshape(2, 2))


def test_name_collisions_get_distinct_tensors(tmp_path):
    obj = {"a.b": st.tensor(np.zeros(1)), "a": {"b": st.tensor(np.ones(1))}, "__metadata__": np.ones(2)}
    st.save(obj, tmp_path / "x")
    assert_same(st.load(tmp_path / "x"), obj)


def test_optimizer_state_round_trip_through_a_file(tmp_path):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in [(3, 4), (4,)]]
    x = st.tensor(rng.standard_normal((5, 3)))

    def run(params, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            y = x @ params[0] + params[1]
            (y * y).mean().backward()
            opt.step()

    straight = [st.tensor(a, requires_grad=True) for a in init]
    run(straight, Adam(straight, lr=0.01, amsgrad=True), 20)

    first = [st.tensor(a, requires_grad=True) for a in init]
    opt = Adam(first, lr=0.01, amsgrad=True)
    run(first, opt, 10)
    ckpt = {"params": [p.detach() for p in first], "optimizer": opt.state_dict(),
            "rng": st.get_rng_state()}
    st.save(ckpt, tmp_path / "ckpt")
    ckpt = st.load(tmp_path / "ckpt")
    assert list(ckpt["optimizer"]["state"]) == [0, 1]
    assert ckpt["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert ckpt["rng"] == st.get_rng_state()
    resumed = [st.tensor(p.numpy(), requires_grad=True) for p in ckpt["params"]]
    opt = Adam(resumed, lr=0.01, amsgrad=True)
    opt.load_state_dict(ckpt["optimizer"])
    run(resumed, opt, 10)
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("obj,match", [
    ({"f": lambda: 0}, "cannot store a function at 'f'"),
    ({"s": {1, 2}}, "cannot store a set"),
    ({"c": np.zeros(2, np.complex64)}, "dtype complex64"),
    ({("a", st.tensor(1.0)): 1}, "dict key"),
    ({frozenset(): 1}, "dict key"),
])
def test_unsupported_objects_are_refused(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        st.save(obj, tmp_path / "x")
    assert os.listdir(tmp_path) == []  # nothing written, no temp file left


def test_self_containing_object_is_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        st.save(loop, tmp_path / "x")


# ------------------------------------------------------------ refusing files
class _Payload:
    """Unpickling this creates a marker file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_payload_is_refused_and_does_not_run(tmp_path, protocol):
    live = tmp_path / "live_marker"
    pickle.loads(pickle.dumps(_Payload(live), protocol=protocol)).close()
    assert live.exists(), "the payload must be live for this test to mean anything"

    marker = tmp_path / "marker"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"weights": _Payload(marker)}, protocol=protocol))
    with pytest.raises(ValueError, match="pickle files are refused because loading them can run"):
        st.load(path)
    assert not marker.exists()


def test_torch_save_output_is_refused(tmp_path, torch):
    marker = tmp_path / "marker"
    torch.save({"w": torch.zeros(3), "evil": _Payload(marker)}, tmp_path / "zip.pth")
    torch.save({"w": torch.zeros(3)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="torch.save .*pickle files are refused"):
        st.load(tmp_path / "zip.pth")
    with pytest.raises(ValueError, match="looks like a pickle"):
        st.load(tmp_path / "legacy.pth")
    assert not marker.exists()


def test_npz_of_plain_arrays_loads_and_object_arrays_are_refused(tmp_path):
    a, b = np.arange(6.0).reshape(2, 3), np.array([1, 2], np.uint8)
    np.savez(tmp_path / "plain.npz", a=a, b=b)
    out = st.load(tmp_path / "plain.npz")
    assert sorted(out) == ["a", "b"] and isinstance(out["a"], st.Tensor)
    np.testing.assert_array_equal(out["a"].numpy(), a)
    np.testing.assert_array_equal(out["b"].numpy(), b)

    marker = tmp_path / "marker"
    np.savez(tmp_path / "objects.npz", x=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(ValueError, match="npz of plain arrays"):
        st.load(tmp_path / "objects.npz")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("data.pkl", pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="holding 'data.pkl'"):
        st.load(tmp_path / "other.zip")
    assert not marker.exists()


def _write_raw(path, header, data=b""):
    raw = json.dumps(header).encode("utf-8")
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _structure(text):
    return {"__metadata__": {"striate.structure": text}}


CORRUPT = [
    ("unknown_dtype", {"t": _entry(dtype="C64")}, b"\0" * 8, "unknown dtype 'C64'"),
    ("fp8_dtype", {"t": _entry(dtype="F8_E4M3", offsets=(0, 2))}, b"\0" * 2, "unknown dtype"),
    ("out_of_range", {"t": _entry(offsets=(0, 8))}, b"\0" * 4,
     r"'t' needs data bytes \[0, 8\) but the file holds 4"),
    ("overlap", {"a": _entry(offsets=(0, 8)), "b": _entry(offsets=(4, 12))}, b"\0" * 12, "overlap"),
    ("same_range", {"a": _entry(offsets=(0, 8)), "b": _entry(offsets=(0, 8))}, b"\0" * 8, "overlap"),
    ("gap", {"a": _entry(offsets=(8, 16))}, b"\0" * 16, "leave a gap"),
    ("trailing_bytes", {"a": _entry()}, b"\0" * 12, "need 8 data bytes but the file holds 12"),
    ("size_mismatch", {"a": _entry(shape=(3,))}, b"\0" * 8, "spans 8 bytes"),
    ("negative_offset", {"a": _entry(offsets=(-8, 0))}, b"", "invalid data_offsets"),
    ("reversed_offsets", {"a": _entry(offsets=(8, 0))}, b"\0" * 8, "invalid data_offsets"),
    ("huge_offset", {"a": _entry(shape=(2**40,), offsets=(0, 2**42))}, b"", "file holds 0"),
    ("negative_shape", {"a": _entry(shape=(-2,))}, b"", "invalid shape"),
    ("float_shape", {"a": _entry(shape=(2.0,))}, b"\0" * 8, "invalid shape"),
    ("extra_field", {"a": dict(_entry(), extra=1)}, b"\0" * 8, "exactly dtype, shape and data_offsets"),
    ("bad_bool", {"a": _entry(dtype="BOOL", offsets=(0, 2))}, b"\x01\x02", "bytes other than 0 and 1"),
    ("metadata_not_strings", {"__metadata__": {"a": 1}}, b"", "__metadata__ must map strings"),
    ("header_list", [1, 2], b"", "does not start with '{'"),
    ("missing_tensor", _structure('{"tensor": "nope"}'), b"", "missing tensor"),
    ("bad_node", _structure('{"eval": "1+1"}'), b"", "structure node"),
    ("two_entry_node", _structure('{"int": 1, "str": "a"}'), b"", "one-entry object"),
    ("bad_json_structure", _structure("{"), b"", "corrupt structure"),
    ("unhashable_key", _structure('{"dict": [[{"list": []}, {"none": null}]]}'), b"", "corrupt"),
    ("deep_structure", _structure('{"list": [' * 100000 + "]}" * 100000), b"", "corrupt structure"),
]


@pytest.mark.parametrize("name,header,data,match", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_headers_are_refused(tmp_path, name, header, data, match):
    _write_raw(tmp_path / "x", header, data)
    with pytest.raises(ValueError, match=match):
        st.load(tmp_path / "x")


@pytest.mark.parametrize("raw,match", [
    (b'{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "a": 1}', "duplicate key"),
    (b'{"a": ', "not valid JSON"),
    (b'{"\xff": 1}', "not valid JSON"),
])
def test_malformed_header_text_is_refused(tmp_path, raw, match):
    (tmp_path / "x").write_bytes(len(raw).to_bytes(8, "little") + raw)
    with pytest.raises(ValueError, match=match):
        st.load(tmp_path / "x")


def test_truncated_and_garbage_files_are_refused(tmp_path):
    st.save(_nested(), tmp_path / "good")
    raw = (tmp_path / "good").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    for cut in (0, 3, 8, 9, 8 + n // 2, 8 + n, 8 + n + 1, len(raw) - 1):
        (tmp_path / "bad").write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"truncated|too short|not valid JSON|file holds"):
            st.load(tmp_path / "bad")
    (tmp_path / "bad").write_bytes((len(raw) * 2).to_bytes(8, "little") + raw[8:])
    with pytest.raises(ValueError, match="header length .* is beyond the file size"):
        st.load(tmp_path / "bad")
    (tmp_path / "bad").write_bytes((2**40).to_bytes(8, "little") + b"{" + b" " * 20)
    with pytest.raises(ValueError, match="beyond the file size"):
        st.load(tmp_path / "bad")
    (tmp_path / "bad").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError):
        st.load(tmp_path / "bad")
    (tmp_path / "bad").write_bytes((10).to_bytes(8, "little") + b"[not json]")
    with pytest.raises(ValueError, match="does not start with"):
        st.load(tmp_path / "bad")
    (tmp_path / "bad").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(ValueError, match="corrupt zip archive"):
        st.load(tmp_path / "bad")


def test_oversized_header_is_refused_without_reading_it(tmp_path):
    limit = 100 * 1024 * 1024
    with open(tmp_path / "big", "wb") as f:  # sparse: cheap to create
        f.write((limit + 8).to_bytes(8, "little") + b"{")
        f.truncate(limit + 64)
    with pytest.raises(ValueError, match="exceeds the 104857600-byte limit"):
        st.load(tmp_path / "big")


@pytest.mark.parametrize("shape,offsets,match", [
    ([2**40, 0, 2**40], (0, 0), "size overflows"),
    ([2**62, 0, 3], (0, 0), "size overflows"),
    ([2**64, 2**64], (0, 8), "size overflows"),
    ([10**400], (0, 8), r"size overflows"),
    ([1] * 65, (0, 4), "65 dimensions; at most 64"),
    ([-1, 2], (0, 8), "invalid shape"),
    (["2"], (0, 8), "invalid shape"),
    ([True], (0, 4), "invalid shape"),
    ([3], (0, 8), "spans 8 bytes, but its dtype F32 and shape \\[3\\] need 12"),
    ([2**40], (0, 2**42), r"needs data bytes \[8, 4398046511112\) but the file holds 16"),
])
def test_impossible_shapes_and_sizes_name_the_file_and_the_tensor(tmp_path, shape, offsets, match):
    path = tmp_path / "bad.safetensors"
    _write_raw(path, {"ok": _entry(offsets=(0, 8)), "weird": _entry(shape=shape, offsets=(8 + offsets[0],
                                                                                          8 + offsets[1]))},
               b"\0" * 16)
    with pytest.raises(ValueError, match=f"^load: {re.escape(str(path))}: tensor 'weird' .*{match}"):
        st.load(path)


def _npz_bytes(arrays, compress=False):
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    return bytearray(buffer.getvalue())


def _npy_header(shape, dtype="<f4", version=(1, 0)):
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    write = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
    write(buffer, header)
    return buffer.getvalue()


def test_npz_round_trips_compressed_fortran_and_empty_arrays(tmp_path):
    arrays = {"f": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "e": np.zeros((0, 5), np.int16),
              "s": np.array(7, np.uint8), "big": np.arange(100_000, dtype=np.float32).reshape(100, 1000)}
    for compress in (False, True):
        (tmp_path / "a.npz").write_bytes(_npz_bytes(arrays, compress))
        out = st.load(tmp_path / "a.npz")
        for name, a in arrays.items():
            assert out[name].numpy().dtype == a.dtype
            np.testing.assert_array_equal(out[name].numpy(), a)


def test_npz_member_declaring_terabytes_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ok.npy", _npz_member(np.ones(3)))
        archive.writestr("huge.npy", _npy_header((2**40,)) + b"\0" * 16)  # 4 TiB declared, 16 bytes held
    with pytest.raises(ValueError, match=f"^load: {re.escape(str(path))}: array 'huge' has shape "
                       r"\[1099511627776\] of float32, which needs 4398046511104 bytes, but the archive holds 16"):
        st.load(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("zeros.npy", _npy_header((2**40, 0, 2**40)))
    with pytest.raises(ValueError, match="array 'zeros' has shape .* size overflows"):
        st.load(path)


def _npz_member(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("compress", [False, True])
def test_npz_member_whose_zip_entry_claims_more_than_the_file_is_refused(tmp_path, compress):
    raw = _npz_bytes({"a": np.zeros(1000, np.uint8)}, compress)
    central = raw.index(b"PK\x01\x02")  # central directory entry: uncompressed size at +24
    raw[central + 24:central + 28] = (0xFFFF_FF00).to_bytes(4, "little")
    (tmp_path / "lie.npz").write_bytes(raw)
    with pytest.raises(ValueError, match=r"lie.npz: array 'a' claims 4294967040 bytes, more than its compressed"):
        st.load(tmp_path / "lie.npz")


@pytest.mark.parametrize("member,match", [
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',", "array 'm' has an invalid .npy header"),
    (b"not an npy file at all", "array 'm' has an invalid .npy header"),
    (b"\x93NUMPY\x03\x00" + b"\0" * 8, "array 'm' has an invalid .npy header: .npy format version 3.0"),
    (_npy_header((2,), "|O"), "array 'm' has dtype object, which holds Python objects"),
    (_npy_header((2,), [("x", "<f4"), ("o", "|O")]), "array 'm' has dtype .* holds Python objects"),
    (_npy_header((2, 2), "<f8", version=(2, 0)) + b"\0" * 16, "array 'm' has shape \\[2, 2\\] of float64, "
     "which needs 32 bytes, but the archive holds 16"),
])
def test_bad_npz_members_name_the_file_and_the_array(tmp_path, member, match):
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m.npy", member)
    with pytest.raises(ValueError, match=f"^load: {re.escape(str(path))}: {match}"):
        st.load(path)


def test_truncated_and_corrupt_npz_files_name_the_file(tmp_path):
    raw = _npz_bytes({"a": np.arange(50.0), "b": np.ones((4, 4))}, compress=True)
    for cut in (10, len(raw) // 2, len(raw) - 10):
        (tmp_path / "cut.npz").write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=f"^load: {re.escape(str(tmp_path / 'cut.npz'))}: "):
            st.load(tmp_path / "cut.npz")
    data = raw.index(b"PK\x03\x04") + 60  # inside the first member's deflated data
    raw[data:data + 8] = b"\xff" * 8
    (tmp_path / "flip.npz").write_bytes(raw)
    with pytest.raises(ValueError, match=f"^load: {re.escape(str(tmp_path / 'flip.npz'))}: "):
        st.load(tmp_path / "flip.npz")


def test_a_failed_save_removes_its_temp_file_and_keeps_the_target(tmp_path):
    (tmp_path / "target").mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        st.save({"a": 1}, tmp_path / "target")
    assert os.listdir(tmp_path) == ["target"] and os.listdir(tmp_path / "target") == []


# ------------------------------------------------------------------ atomicity
def test_the_next_save_removes_only_stale_temp_files_of_its_path(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead, alive, now = child.pid, os.getppid(), time.time()
    names = {
        f".model.safetensors.{dead}.0123abcd.tmp": -60,   # stale: its process is gone -> removed
        f".model.safetensors.{dead}.89abcdef.tmp": -1,    # stale too
        f".model.safetensors.{dead}.01234567.tmp": 60,    # written after the save began -> kept
        f".model.safetensors.{alive}.0123abcd.tmp": -60,  # a live process may be writing it -> kept
        f".model.safetensors.{os.getpid()}.0123abcd.tmp": -60,  # this process (another thread) -> kept
        f".model.safetensors.bak.{dead}.0123abcd.tmp": -60,     # another path's temp -> kept
        f".model.{dead}.0123abcd.tmp": -60,
        f"model.safetensors.{dead}.0123abcd.tmp": -60,    # not the temp-name pattern -> kept
        f".model.safetensors.{dead}.0123abcd.tmp.old": -60,
        f".model.safetensors.{dead}.0123ABCD.tmp": -60,
    }
    for name, age in names.items():
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (now + age, now + age))
    st.save({"step": 1}, tmp_path / "model.safetensors")
    removed = set(names) - set(os.listdir(tmp_path))
    assert removed == {f".model.safetensors.{dead}.0123abcd.tmp", f".model.safetensors.{dead}.89abcdef.tmp"}
    assert st.load(tmp_path / "model.safetensors") == {"step": 1}


_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import striate as st

    path, signal_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]

    def state(i):
        return {"step": i, "weights": st.from_numpy(np.full(8_000_000, i, np.float32)),
                "optimizer": {"state": {0: {"exp_avg": st.tensor(np.full((300, 300), i, np.float64))}},
                              "param_groups": [{"lr": 0.1, "params": [0]}]}}

    def signal_parent(text, replace=os.replace):
        with open(signal_file + ".part", "w") as f:
            f.write(text)
        replace(signal_file + ".part", signal_file)

    if mode == "loop":
        for i in range(10**6):
            if i == 3:
                signal_parent("3")
            st.save(state(i), path)
    else:
        st.save(state(0), path)
        real_fdopen, real_replace = os.fdopen, os.replace

        class HaltAfterFirstChunk:
            def __init__(self, f):
                self.f, self.chunks = f, 0
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return self.f.__exit__(*exc)
            def fileno(self):
                return self.f.fileno()
            def flush(self):
                self.f.flush()
            def write(self, chunk):
                n = self.f.write(chunk)
                self.chunks += 1
                if self.chunks == 3:  # header length, header, first tensor's bytes
                    self.f.flush()
                    signal_parent("halted")
                    time.sleep(600)
                return n

        def halt_before_replace(src, dst):
            signal_parent("halted")
            time.sleep(600)

        if mode == "mid_write":
            os.fdopen = lambda *a, **k: HaltAfterFirstChunk(real_fdopen(*a, **k))
        else:
            os.replace = halt_before_replace
        st.save(state(1), path)
""")


def _start_child(tmp_path, mode):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    path, signal_file = ckpt_dir / "model.safetensors", tmp_path / "signal"
    child = subprocess.Popen([sys.executable, str(script), str(path), str(signal_file), mode])
    deadline = time.monotonic() + 120
    while not signal_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"the child exited or stalled before signalling (rc={child.poll()})")
        time.sleep(0.002)
    return child, path


def _kill(child):
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL


def _assert_complete_state(obj, steps):
    i = obj["step"]
    assert i in steps
    assert np.all(obj["weights"].numpy() == i) and obj["weights"].shape == (8_000_000,)
    assert np.all(obj["optimizer"]["state"][0]["exp_avg"].numpy() == i)
    assert obj["optimizer"]["param_groups"] == [{"lr": 0.1, "params": [0]}]
    return i


def _assert_later_saves_work(path):
    for i in range(2):
        st.save({"step": 100 + i}, path)
        assert st.load(path) == {"step": 100 + i}
    assert not [f for f in os.listdir(path.parent) if f.endswith(".tmp") and str(os.getpid()) in f]


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03])
def test_sigkill_during_repeated_saves_leaves_a_complete_checkpoint(tmp_path, delay):
    child, path = _start_child(tmp_path, "loop")  # signals as save #3 begins
    time.sleep(delay)
    _kill(child)
    _assert_complete_state(st.load(path), steps=range(2, 10**6))
    _assert_later_saves_work(path)


@pytest.mark.parametrize("mode", ["mid_write", "before_replace"])
def test_sigkill_inside_save_keeps_the_previous_checkpoint(tmp_path, mode):
    child, path = _start_child(tmp_path, mode)
    _kill(child)
    assert _assert_complete_state(st.load(path), steps={0}) == 0
    stray = [f for f in os.listdir(path.parent) if f.endswith(".tmp")]
    assert len(stray) == 1, "the killed save must have been under way"
    if mode == "mid_write":  # the half-written temp file itself is refused, not misread
        with pytest.raises(ValueError, match="truncated"):
            st.load(path.parent / stray[0])
    _assert_later_saves_work(path)
    assert os.listdir(path.parent) == ["model.safetensors"]  # the next save removed the killed one's temp


def test_gpu_tensors_are_saved_through_the_host(tmp_path):
    cupy_or_skip()
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    st.save({"w": st.tensor(a, device="cuda").permute(1, 0)}, tmp_path / "x")
    out = st.load(tmp_path / "x")
    assert out["w"].device == "cpu"
    np.testing.assert_array_equal(out["w"].numpy(), a.T)
