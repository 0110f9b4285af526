"""Checkpoints: ``save`` and ``load`` in the safetensors format, written by hand.

File layout (the safetensors format, https://github.com/huggingface/safetensors)::

    8 bytes   N, the header length (unsigned, little-endian)
    N bytes   JSON: {name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
                     "__metadata__": {str: str}}   (padded with spaces)
    rest      every tensor's raw little-endian C-order bytes, back to back; the
              offsets count from the start of this section and tile it exactly

Nested objects (model and optimizer state dicts) are flattened: each Tensor or
numpy array is stored under its path (``"state.0.exp_avg"``), and the rest of
the object is kept as JSON in ``__metadata__["striate.structure"]``. There every
node is a one-entry object whose key says its type (``{"int": 3}``,
``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}``, ``{"tensor": name}``), so
int keys, tuples and float bit patterns come back exactly.

Safety: ``load`` reads the file with ``json`` and plain byte copies, checks
every shape, size and offset against the file before allocating anything, and
never unpickles. Pickle files (``torch.save`` output included) are refused with
a ``ValueError``. A ``.npz`` archive of plain arrays is also accepted and loads
as a flat ``{name: Tensor}`` dict: each member's ``.npy`` header is parsed
without pickle and its shape checked against the member's size before the data
is read. Every refusal is a ``ValueError`` naming the file (and the tensor).

Atomicity: ``save`` writes a temporary file ``.<name>.<pid>.<random>.tmp``
beside the target, fsyncs it, renames it over the target and fsyncs the
directory, so a crash at any point leaves either the old file or the new one.
A process killed mid-save (SIGKILL) leaves its temporary file behind; the next
successful save to the same path removes it (see :func:`_remove_stale_temps`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import time
import tokenize
import zipfile
import zlib

import numpy as np

from . import _backend
from .tensor import Tensor

__all__ = ["save", "load"]

_STRUCTURE_KEY = "striate.structure"
_FORMAT_KEY = "striate.format"
_FORMAT_VERSION = "1"
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors reference implementation's limit
_MAX_DIMS = 64                                   # numpy's limit on ndim
_MAX_ARRAY_BYTES = int(np.iinfo(np.intp).max)    # numpy's limit on one array's bytes
_DEFLATE_MAX_RATIO = 1032                        # deflate never expands data more than this (zlib docs)
_READ_CHUNK = 16 * 1024 * 1024

# safetensors dtype name <-> little-endian numpy dtype
_DTYPES = {"BOOL": np.dtype("|b1"), "U8": np.dtype("|u1"), "I8": np.dtype("|i1"),
           "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"),
           "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
           "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8")}
_NAME_OF = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}


# ----------------------------------------------------------------------- save
def save(obj, path) -> None:
    """Write obj (nested dicts/lists/tuples of Tensors, arrays, numbers, strings, None) atomically.

    Args:
        obj: the object; Tensors and arrays on any device are stored as CPU data (and load on the CPU).
        path: the file to write (replaced atomically if it exists).
    """
    path = os.fspath(path)
    encoder = _Encoder()
    structure = encoder.node(obj, ())
    header = {"__metadata__": {_FORMAT_KEY: _FORMAT_VERSION,
                               _STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}}
    offset = 0
    for name, array in encoder.arrays.items():
        header[name] = {"dtype": _NAME_OF[(array.dtype.kind, array.dtype.itemsize)],
                        "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    _write_atomic(path, [len(header_bytes).to_bytes(8, "little"), header_bytes]
                  + [a.reshape(-1).view(np.uint8) for a in encoder.arrays.values() if a.size])


class _Encoder:
    """Turns an object into a structure node, collecting its arrays (name -> little-endian C array)."""

    def __init__(self):
        self.arrays = {}
        self.names_by_id = {}
        self.open_containers = set()

    def node(self, obj, path):
        if isinstance(obj, Tensor):
            return {"tensor": self.array(obj.data if obj.device == "cpu" else obj.numpy(), obj, path)}
        if isinstance(obj, np.ndarray):
            return {"ndarray": self.array(obj, obj, path)}
        if _backend.is_cuda_array(obj):  # a cupy array is stored like a numpy one and loads as numpy
            return {"ndarray": self.array(obj.get(), obj, path)}
        if isinstance(obj, np.generic):  # before float/int: np.float64 subclasses float
            return {"npscalar": self.array(np.asarray(obj), obj, path)}
        if obj is None:
            return {"none": None}
        if isinstance(obj, bool):
            return {"bool": obj}
        if isinstance(obj, int):
            return {"int": int(obj)}
        if isinstance(obj, float):
            return {"float": repr(float(obj))}
        if isinstance(obj, str):
            return {"str": str(obj)}
        if isinstance(obj, (list, tuple, dict)):
            if id(obj) in self.open_containers:
                raise ValueError(f"save: the object contains itself at {_path_name(path)!r}")
            self.open_containers.add(id(obj))
            if isinstance(obj, dict):
                out = {"dict": [[self.key(k, path), self.node(v, path + (k,))] for k, v in obj.items()]}
            else:
                out = {"tuple" if isinstance(obj, tuple) else "list":
                       [self.node(v, path + (i,)) for i, v in enumerate(obj)]}
            self.open_containers.discard(id(obj))
            return out
        raise TypeError(f"save: cannot store a {type(obj).__name__} at {_path_name(path)!r}; supported: "
                        "Tensor, numpy/cupy array, dict, list, tuple, str, int, float, bool, None")

    def key(self, key, path):
        if _is_plain_key(key):
            return self.node(key, path)
        raise TypeError(f"save: dict key {key!r} at {_path_name(path)!r} must be a str, int, float, "
                        "bool, None or a tuple of those")

    def array(self, array, owner, path) -> str:
        """Register an array under its path name (once per object) and return the name."""
        if id(owner) in self.names_by_id:
            return self.names_by_id[id(owner)]
        dtype = _DTYPES.get(_NAME_OF.get((array.dtype.kind, array.dtype.itemsize), ""))
        if dtype is None:
            raise TypeError(f"save: dtype {array.dtype} at {_path_name(path)!r} is not supported; "
                            f"supported: bool, (u)int8/16/32/64, float16/32/64")
        name = base = _path_name(path)
        n = 1
        while name in self.arrays or name == "__metadata__":
            name, n = f"{base}#{n}", n + 1
        self.arrays[name] = array.astype(dtype, order="C", copy=False)
        self.names_by_id[id(owner)] = name
        return name


def _is_plain_key(key) -> bool:
    if isinstance(key, tuple):
        return all(_is_plain_key(k) for k in key)
    return key is None or isinstance(key, (str, int, float, np.generic))


def _path_name(path) -> str:
    return ".".join(str(p) for p in path) or "(root)"


def _write_atomic(path: str, chunks) -> None:
    """Write chunks to a new file beside path, fsync it, rename it over path, fsync the directory;
    then remove the temporary files that killed saves to path left behind."""
    began = time.time()
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        except OSError:  # some file systems cannot fsync a directory; the data is already synced
            pass
        finally:
            os.close(dir_fd)
    _remove_stale_temps(path, directory, began)


def _remove_stale_temps(path: str, directory: str, began: float) -> None:
    """Delete ``.<name>.<pid>.<8 hex>.tmp`` files of this path whose save cannot still be running.

    A temp file is stale when its pid is not a live process on this machine and it was last
    written before this save began. A live pid (even a recycled one) keeps the file, so a save
    under way in another process here is never disturbed; the time rule also spares a writer on
    another machine sharing the directory while it keeps writing. Temp files of this process are
    kept (another thread may be saving; a failed save removes its own). Best effort: a file that
    cannot be examined or removed stays, and the save still succeeds.
    """
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.") + r"(\d+)\.[0-9a-f]{8}\.tmp")
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match is None or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < began:
                    os.unlink(entry.path)


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # no cheap check: assume alive, keep the file
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (OverflowError: no pid is that large)
        return False
    except PermissionError:  # the process exists but belongs to another user
        pass
    return True


# ----------------------------------------------------------------------- load
def load(path):
    """Read a file written by :func:`save` (or any safetensors file, or a plain ``.npz``).

    Loading never runs code from the file. Tensors come back on the CPU
    without ``requires_grad``.

    Args:
        path: the file.

    Returns:
        The saved object, rebuilt exactly (a foreign safetensors file or an
        ``.npz`` gives a flat ``{name: Tensor}`` dict).

    Raises:
        ValueError: the file is not a valid checkpoint (a pickle, a
            ``torch.save`` archive, truncated or corrupt).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = f.read(9)
        if start[:4] == b"PK\x03\x04":
            return _load_npz(path, size)
        header_len = int.from_bytes(start[:8], "little") if len(start) >= 8 else -1
        if (len(start) < 9 or header_len > size - 8 or header_len > _MAX_HEADER_BYTES
                or start[8:9] != b"{"):
            f.seek(max(size - 1, 0))
            raise ValueError(_not_safetensors(path, start, f.read(1), size, header_len))
        f.seek(8)
        header = _parse_header(path, f.read(header_len))
        entries = _check_entries(path, header, data_size=size - 8 - header_len)
        arrays = {}
        for name, (dtype, shape, begin, end) in entries.items():
            array = np.empty(shape, dtype)
            if end > begin:
                f.seek(8 + header_len + begin)
                if f.readinto(array.reshape(-1).view(np.uint8)) != end - begin:
                    raise ValueError(f"load: {path}: the file ended while reading tensor {name!r}")
            if dtype.kind == "b" and (array.reshape(-1).view(np.uint8) > 1).any():
                raise ValueError(f"load: {path}: BOOL tensor {name!r} holds bytes other than 0 and 1")
            arrays[name] = array
    metadata = header.get("__metadata__", {})
    if _STRUCTURE_KEY not in metadata:
        return {name: Tensor(array) for name, array in arrays.items()}
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
        return _Decoder(arrays).node(structure)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"load: {path}: corrupt structure metadata: {exc}") from None


def _not_safetensors(path, start, last, size, header_len) -> str:
    # Protocol 2+ pickles start with PROTO (0x80), all end with STOP ('.'); either way their first
    # 8 bytes, read as a header length, are far beyond the format's limit.
    if not 0 <= header_len <= _MAX_HEADER_BYTES and (start[:1] == b"\x80" or last == b"."):
        return (f"load: {path} looks like a pickle file (e.g. torch.save's legacy format); pickle files "
                "are refused because loading them can run arbitrary code. Re-save it with striate.save "
                "(safetensors).")
    if size < 9:
        return f"load: {path} is too short ({size} bytes) to be a safetensors file (truncated?)"
    if header_len > size - 8:
        return (f"load: {path} is not a safetensors file: its header length ({header_len}) is beyond "
                f"the file size ({size} bytes); the file is truncated or of another format")
    if header_len > _MAX_HEADER_BYTES:
        return f"load: {path}: header of {header_len} bytes exceeds the {_MAX_HEADER_BYTES}-byte limit"
    return f"load: {path} is not a safetensors file: the header does not start with '{{'"


def _reject_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in the header")
    return dict(pairs)


def _parse_header(path, raw: bytes) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"load: {path}: the header is not valid JSON: {exc}") from None
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"load: {path}: __metadata__ must map strings to strings")
    return header


def _check_entries(path, header: dict, data_size: int) -> dict:
    """Validate every tensor entry; their offsets must tile the data section exactly.

    Returns:
        name -> (dtype, shape, begin, end).
    """
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"load: {path}: tensor {name!r} must have exactly dtype, shape and "
                             "data_offsets")
        dtype = _DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        if dtype is None:
            raise ValueError(f"load: {path}: tensor {name!r} has unknown dtype {info['dtype']!r}; "
                             f"expected one of {sorted(_DTYPES)}")
        shape, offsets = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise ValueError(f"load: {path}: tensor {name!r} has invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)
                and offsets[0] <= offsets[1]):
            raise ValueError(f"load: {path}: tensor {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        nbytes = _array_bytes(path, f"tensor {name!r}", shape, dtype)
        if end - begin != nbytes:
            raise ValueError(f"load: {path}: tensor {name!r} spans {end - begin} bytes, but its dtype "
                             f"{info['dtype']} and shape {_brief(shape)} need {nbytes}")
        entries[name] = (dtype, tuple(shape), begin, end)
    expected = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: (e[1][2], e[1][3])):
        if begin != expected:
            raise ValueError(f"load: {path}: tensor {name!r} data_offsets [{begin}, {end}] "
                             f"{'overlap another tensor' if begin < expected else 'leave a gap'}")
        if end > data_size:
            raise ValueError(f"load: {path}: tensor {name!r} needs data bytes [{begin}, {end}) but the "
                             f"file holds {data_size} (truncated or corrupt)")
        expected = end
    if expected != data_size:
        raise ValueError(f"load: {path}: the tensors need {expected} data bytes but the file holds "
                         f"{data_size} (corrupt: trailing bytes)")
    return entries


def _is_count(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _array_bytes(path, what: str, shape, dtype) -> int:
    """The bytes of an array of shape (non-negative ints) and dtype; ValueError naming path and what
    when numpy could not make such an array (too many dimensions, or a size that overflows)."""
    if len(shape) > _MAX_DIMS:
        raise ValueError(f"load: {path}: {what} has {len(shape)} dimensions; at most {_MAX_DIMS} are "
                         "supported")
    if math.prod(n for n in shape if n) * dtype.itemsize > _MAX_ARRAY_BYTES:  # numpy skips zeros too
        raise ValueError(f"load: {path}: {what} has shape {_brief(shape)} of {dtype}, whose size "
                         f"overflows the {_MAX_ARRAY_BYTES}-byte limit of an array")
    return math.prod(shape) * dtype.itemsize


def _brief(shape) -> str:
    text = str(list(shape))
    return text if len(text) <= 80 else text[:76] + " ...]"


class _Decoder:
    """Rebuilds an object from its structure node; each stored array becomes one object."""

    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.objects = {}

    def node(self, node):
        if not isinstance(node, dict) or len(node) != 1:
            raise ValueError(f"a structure node must be a one-entry object, got {node!r:.80}")
        (tag, value), = node.items()
        if tag in ("tensor", "ndarray", "npscalar"):
            if not isinstance(value, str) or value not in self.arrays:
                raise ValueError(f"{tag} refers to a missing tensor {value!r:.80}")
            key = (tag, value)
            if key not in self.objects:
                array = self.arrays[value]
                self.objects[key] = (Tensor(array) if tag == "tensor" else array if tag == "ndarray"
                                     else array[()])
            return self.objects[key]
        if tag == "none" and value is None:
            return None
        if tag == "bool" and isinstance(value, bool):
            return value
        if tag == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tag == "float" and isinstance(value, str):
            return float(value)
        if tag == "str" and isinstance(value, str):
            return value
        if tag in ("list", "tuple") and isinstance(value, list):
            items = [self.node(v) for v in value]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and isinstance(value, list) and all(isinstance(kv, list) and len(kv) == 2
                                                              for kv in value):
            out = {}
            for k, v in value:
                key = self.node(k)
                hash(key)  # a list or dict key is refused (TypeError)
                out[key] = self.node(v)
            return out
        raise ValueError(f"unknown or malformed structure node {node!r:.80}")


def _load_npz(path, size: int):
    """An .npz of plain arrays as {name: Tensor}; each member's .npy header is read (never
    unpickled) and checked against the member's size before its data is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            foreign = [m.filename for m in members if not m.filename.endswith(".npy")]
            if foreign:
                raise ValueError(f"load: {path} is a zip archive holding {foreign[0]!r}, not an .npz of "
                                 "arrays. torch.save writes such a zip around a pickle (data.pkl); pickle "
                                 "files are refused because loading them can run arbitrary code. Re-save it "
                                 "with striate.save (safetensors).")
            return {m.filename[:-4]: Tensor(_read_npy_member(path, size, archive, m)) for m in members}
    # NotImplementedError: an unsupported zip feature; OSError: a seek to a corrupt offset
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise ValueError(f"load: {path}: corrupt zip archive: {exc}") from None


def _read_npy_member(path, size: int, archive, member) -> np.ndarray:
    """One member of the .npz at path (size bytes): sizes checked, then the data read in chunks."""
    what = f"array {member.filename[:-4]!r}"
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or member.flag_bits & 1:
        raise ValueError(f"load: {path}: {what} is encrypted or uses zip compression method "
                         f"{member.compress_type}; an .npz member is stored or deflated")
    compressed = min(member.compress_size, size)  # a member cannot be larger than the file
    ratio = 1 if member.compress_type == zipfile.ZIP_STORED else _DEFLATE_MAX_RATIO
    if member.file_size > compressed * ratio + 1024:
        raise ValueError(f"load: {path}: {what} claims {member.file_size} bytes, more than its compressed "
                         f"data (at most {compressed} bytes of this {size}-byte file) can hold "
                         "(corrupt archive)")
    with archive.open(member) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version[0]}.{version[1]}; 1.0 and 2.0 are supported")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(f, max_header_size=64 * 1024)
        except (ValueError, SyntaxError, TypeError, RecursionError, tokenize.TokenError) as exc:
            raise ValueError(f"load: {path}: {what} has an invalid .npy header: {exc}") from None
        if dtype.hasobject:
            raise ValueError(f"load: {path}: {what} has dtype {dtype}, which holds Python objects; "
                             "loading those needs pickle, which is refused because it can run arbitrary "
                             "code. Only an .npz of plain arrays is accepted.")
        nbytes = _array_bytes(path, what, shape, dtype)
        stored = member.file_size - f.tell()
        if nbytes != stored:
            raise ValueError(f"load: {path}: {what} has shape {_brief(shape)} of {dtype}, which needs "
                             f"{nbytes} bytes, but the archive holds {stored} bytes of it (truncated or "
                             "corrupt)")
        array = np.empty(shape[::-1] if fortran_order else shape, dtype)
        done = 0
        while done < nbytes:
            n = f.readinto(array.reshape(-1).view(np.uint8)[done:done + _READ_CHUNK])
            if not n:
                raise ValueError(f"load: {path}: the archive ended while reading {what}")
            done += n
        f.read()  # reach the member's end, where zipfile checks its CRC
    return array.T if fortran_order else array
