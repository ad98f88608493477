"""Tiny pure-Python safetensors reader/writer for peft4j's golden-fixture scripts.

No ``safetensors`` pip package is available here, so fixture generators import this module instead::

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from safetensors_io import save, load

    save("out.safetensors", {"x": torch.randn(3, 4), "ids": np.arange(5)}, metadata={"eps": "1e-5"})
    tensors, metadata = load("out.safetensors")          # numpy arrays; BF16 comes back as float32

Values may be numpy arrays or torch tensors (torch is imported only if such a tensor is passed). The layout follows
the reference implementation: 8-byte little-endian header length, compact UTF-8 JSON header with ``__metadata__``
first, padded with spaces to a multiple of 8 bytes, then each tensor's little-endian bytes. Unlike the reference,
tensors are written in the order given (not sorted), which is also what peft4j's Java writer does, so a file
re-written by ``io.peft4j.io.Safetensors.write`` with the same order and metadata is byte-identical.
"""

import json
import os
import struct

import numpy as np

_NP_TO_ST = {
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("float64"): "F64",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}
_ST_TO_NP = {v: k for k, v in _NP_TO_ST.items()}
_ST_TO_NP["BF16"] = np.dtype("<u2")  # raw bits; converted to float32 on load unless raw=True
_ST_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}


def _to_numpy(value):
    """Returns (dtype name, little-endian C-contiguous numpy array of the raw elements)."""
    if type(value).__module__.startswith("torch"):
        import torch

        t = value.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return "BF16", t.view(torch.int16).numpy().view("<u2")
        value = t.numpy()
    a = np.asarray(value)
    a = a.copy(order="C") if not a.flags.c_contiguous else a  # not ascontiguousarray: it turns shape () into (1,)
    if a.dtype not in _NP_TO_ST:
        raise TypeError("unsupported dtype %s" % a.dtype)
    return _NP_TO_ST[a.dtype], a.astype(a.dtype.newbyteorder("<"), copy=False)


def save(path, tensors, metadata=None):
    """Writes ``tensors`` (a dict, in its order) and optional string ``metadata`` to ``path``."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    pos = 0
    for name, value in tensors.items():
        dtype, arr = _to_numpy(value)
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [pos, pos + len(data)]}
        blobs.append(data)
        pos += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def bf16_bits_to_float32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def load(path, raw=False):
    """Returns (dict name -> numpy array, metadata dict). BF16 becomes float32 unless ``raw`` (then uint16 bits)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = info["dtype"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * _ST_BYTES[dtype]:
            raise ValueError("%s: tensor %r has a wrong byte count" % (path, name))
        if count == 0:
            arr = np.zeros(info["shape"], dtype=_ST_TO_NP[dtype])
        else:
            arr = np.frombuffer(buf, dtype=_ST_TO_NP[dtype], count=count, offset=base + begin).reshape(info["shape"])
        if dtype == "BF16" and not raw:
            arr = bf16_bits_to_float32(arr)
        out[name] = arr.copy()
    return out, metadata
