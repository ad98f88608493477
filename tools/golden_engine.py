"""Golden fixtures for peft4j's engine ops (io.peft4j.autograd.NnOps), computed with PyTorch.

Run from the repository root (PyTorch 1.13 + numpy; nothing else)::

    /usr/bin/python3 tools/golden_engine.py                 # writes core/src/test/resources/golden/engine/
    /usr/bin/python3 tools/golden_engine.py --out DIR       # somewhere else

The script is deterministic (fixed seeds, float64 CPU math): re-running it rewrites byte-identical files, so a diff
in git means the reference changed. CI never runs it; ``EngineGoldenTest`` reads the checked-in files.

Every fixture is one safetensors file with

* ``in.<name>``   F32 inputs (integer inputs such as targets or positions as I64),
* ``grad_out``    the random upstream gradient G of the op's output (absent for scalar losses: G = 1),
* ``out``         the output, ``grad.<name>`` d(sum(out * G))/d(input) for each differentiable input,
* ``__metadata__`` the op's scalar settings (eps, scale, causal, ...) as strings.

Inputs are drawn in float32; the reference is then evaluated in float64 on exactly those float32 values and rounded
once to float32 when stored, so the fixtures carry no float32 accumulation error of their own and the Java tolerance
only has to cover peft4j's. Where Hugging Face computes something in float32 that the model's numerics depend on
(the RoPE cos/sin tables), the script does it in float32 the same way.

``io_all_dtypes.safetensors`` is a reader/writer fixture (every dtype, an empty and a scalar tensor, unicode
metadata) for ``SafetensorsTest``; its values follow formulas the Java test recomputes.
"""

import argparse
import math
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from safetensors_io import save  # noqa: E402

torch.set_num_threads(1)  # reductions in a fixed order: byte-identical output on every run
F32_MIN = float(np.finfo(np.float32).min)  # what HF puts in additive attention masks


def f32(x):
    """A float32-exact Python float and its shortest repr, so Java's Float.parseFloat recovers the same value."""
    v = float(np.float32(x))
    return v, repr(v)


def rand(gen, *shape, std=1.0, shift=0.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * std + shift).to(torch.float32)


def run(fn, inputs, upstream=True, gen=None):
    """Evaluates fn on float64 copies of the float32 inputs; returns (out, grads, grad_out) as float32."""
    leaves = {k: v.double().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    if upstream:
        g = rand(gen, *out.shape)
        (out * g.double()).sum().backward()
    else:
        g = None
        out.backward()
    grads = {k: v.grad.float() for k, v in leaves.items()}
    return out.detach().float(), grads, g


def fixture(out_dir, name, inputs, out, grads, grad_out=None, consts=None, metadata=None):
    tensors = {}
    for k, v in inputs.items():
        tensors["in." + k] = v
    for k, v in (consts or {}).items():
        tensors["in." + k] = v
    if grad_out is not None:
        tensors["grad_out"] = grad_out
    tensors["out"] = out
    for k, v in grads.items():
        tensors["grad." + k] = v
    meta = {"op": name, "generator": "tools/golden_engine.py", "torch": torch.__version__}
    meta.update(metadata or {})
    save(out_dir / (name + ".safetensors"), tensors, meta)


# ------------------------------------------------------------------------------------------------ attention


def attention_ref(q, k, v, mask, causal, query_offset, scale):
    """q [B,T,Hq,Dh], k/v [B,S,Hkv,Dh]; query head h reads kv head h // (Hq/Hkv), as HF's repeat_kv does."""
    b, t, hq, dh = q.shape
    s, hkv = k.shape[1], k.shape[2]
    rep = hq // hkv
    qh = q.transpose(1, 2)  # [B,Hq,T,Dh]
    kh = k.transpose(1, 2).repeat_interleave(rep, dim=1)  # [B,Hq,S,Dh]
    vh = v.transpose(1, 2).repeat_interleave(rep, dim=1)
    scores = qh @ kh.transpose(-1, -2) * scale
    if mask is not None:
        scores = scores + mask
    if causal:
        qpos = torch.arange(t).unsqueeze(1) + query_offset
        kpos = torch.arange(s).unsqueeze(0)
        scores = scores.masked_fill(kpos > qpos, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return (p @ vh).transpose(1, 2)  # [B,T,Hq,Dh]


def attention_fixture(out_dir, name, seed, b, t, s, hq, hkv, dh, causal, query_offset, scale, mask):
    gen = torch.Generator().manual_seed(seed)
    inputs = {"q": rand(gen, b, t, hq, dh), "k": rand(gen, b, s, hkv, dh), "v": rand(gen, b, s, hkv, dh)}
    scale, scale_s = f32(scale)
    consts = {} if mask is None else {"mask": mask}
    m64 = None if mask is None else mask.double()
    out, grads, g = run(lambda q, k, v: attention_ref(q, k, v, m64, causal, query_offset, scale), inputs, gen=gen)
    fixture(out_dir, name, inputs, out, grads, g, consts,
            {"causal": str(causal).lower(), "query_offset": str(query_offset), "scale": scale_s})


def attention_fixtures(out_dir):
    # (a) causal grouped-query attention with an additive mask [B,1,T,S]: soft biases plus right padding of batch 1
    b, t, hq, hkv, dh = 2, 7, 6, 2, 8
    gen = torch.Generator().manual_seed(100)
    mask = -torch.rand(b, 1, t, t, generator=gen, dtype=torch.float32)
    mask[1, :, :, 5:] = F32_MIN
    attention_fixture(out_dir, "attention_gqa_causal_mask", 101, b, t, t, hq, hkv, dh, True, 0, 1 / math.sqrt(dh), mask)
    # (b) decoding against a cache: 3 new queries at positions 4..6 over 7 keys, multi-query (Hkv = 1), custom scale
    attention_fixture(out_dir, "attention_mqa_offset", 102, 1, 3, 7, 4, 1, 8, True, 4, 0.3, None)
    # (c) bidirectional (encoder) attention with a key-padding mask [B,1,1,S] broadcast over heads and queries
    gen = torch.Generator().manual_seed(103)
    pad = torch.zeros(2, 1, 1, 5, dtype=torch.float32)
    pad[0, :, :, 4] = F32_MIN
    pad[1, :, :, 2:] = F32_MIN
    attention_fixture(out_dir, "attention_bidirectional_padding", 104, 2, 5, 5, 2, 2, 4, False, 0, 1 / math.sqrt(4), pad)


# ------------------------------------------------------------------------------------------------ norms, losses


def rmsnorm_fixture(out_dir):
    gen = torch.Generator().manual_seed(200)
    inputs = {"x": rand(gen, 2, 5, 16, std=2.0, shift=0.5), "weight": rand(gen, 16, std=0.1, shift=1.0)}
    eps = 1e-5

    def fn(x, weight):  # HF LlamaRMSNorm
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    out, grads, g = run(fn, inputs, gen=gen)
    fixture(out_dir, "rmsnorm", inputs, out, grads, g, metadata={"eps": repr(eps)})


def layernorm_fixture(out_dir):
    gen = torch.Generator().manual_seed(210)
    inputs = {"x": rand(gen, 3, 4, 12, std=1.5, shift=-0.3), "weight": rand(gen, 12, std=0.2, shift=1.0),
              "bias": rand(gen, 12, std=0.2)}
    eps = 1e-5
    out, grads, g = run(lambda x, weight, bias: F.layer_norm(x, (12,), weight, bias, eps), inputs, gen=gen)
    fixture(out_dir, "layernorm", inputs, out, grads, g, metadata={"eps": repr(eps)})


def cross_entropy_fixture(out_dir):
    gen = torch.Generator().manual_seed(300)
    n, vocab = 10, 37
    inputs = {"logits": rand(gen, n, vocab, std=3.0)}
    targets = torch.randint(0, vocab, (n,), generator=gen, dtype=torch.int64)
    targets[[2, 5, 9]] = -100
    out, grads, _ = run(lambda logits: F.cross_entropy(logits, targets, ignore_index=-100), inputs, upstream=False)
    fixture(out_dir, "cross_entropy", inputs, out, grads, consts={"targets": targets},
            metadata={"ignore_index": "-100", "reduction": "mean over non-ignored targets"})


def softmax_fixtures(out_dir):
    gen = torch.Generator().manual_seed(310)
    inputs = {"x": rand(gen, 3, 4, 9, std=2.0)}
    out, grads, g = run(lambda x: torch.softmax(x, -1), inputs, gen=gen)
    fixture(out_dir, "softmax", inputs, out, grads, g)
    out, grads, g = run(lambda x: torch.log_softmax(x, -1), inputs, gen=gen)
    fixture(out_dir, "log_softmax", inputs, out, grads, g)


# ------------------------------------------------------------------------------------------------ activations


def activation_fixtures(out_dir):
    gen = torch.Generator().manual_seed(400)
    # a grid over [-5, 5] (both tails and zero) plus random points
    grid = torch.linspace(-5, 5, 41, dtype=torch.float32)
    x = torch.cat([grid, rand(gen, 39, std=2.0)]).reshape(4, 20)
    for name, fn in [("gelu_erf", lambda x: F.gelu(x)), ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
                     ("silu", lambda x: F.silu(x))]:
        out, grads, g = run(fn, {"x": x}, gen=gen)
        fixture(out_dir, name, {"x": x}, out, grads, g)
    inputs = {"gate": rand(gen, 3, 17, std=2.0), "up": rand(gen, 3, 17, std=1.0)}
    out, grads, g = run(lambda gate, up: F.silu(gate) * up, inputs, gen=gen)
    fixture(out_dir, "swiglu", inputs, out, grads, g)


# ------------------------------------------------------------------------------------------------ RoPE


def hf_cos_sin(positions, rotary_dim, theta):
    """HF LlamaRotaryEmbedding in float32: [T, rotary_dim] tables, the half-frequencies repeated twice."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.int64).float() / rotary_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_rotate_half_ref(x, cos, sin, rotary_dim):
    """x [B,T,H,Dh]; HF apply_rotary_pos_emb on the first rotary_dim dims, the rest passed through (NeoX/Phi)."""
    c, s = cos.double()[None, :, None, :], sin.double()[None, :, None, :]
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    return torch.cat((rot * c + rotate_half(rot) * s, rest), dim=-1)


def meta_cos_sin(positions, dim, theta):
    """Meta llama / llama2.c precompute_freqs_cis in float32: [T, dim/2]."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(positions.float(), freqs).float()
    return angles.cos(), angles.sin()


def rope_interleaved_ref(x, cos, sin):
    """Pairs (2i, 2i+1) rotated as the complex product x * e^(i angle)."""
    c, s = cos.double()[None, :, None, :], sin.double()[None, :, None, :]
    xe, xo = x[..., 0::2], x[..., 1::2]
    return torch.stack((xe * c - xo * s, xe * s + xo * c), dim=-1).flatten(-2)


def rope_fixtures(out_dir):
    theta = 10000.0
    b, t, h, dh = 2, 5, 3, 8
    positions = torch.tensor([3, 4, 5, 6, 7], dtype=torch.int64)  # not starting at 0, as after a prompt
    meta = {"theta": repr(theta), "max_positions": "16"}
    gen = torch.Generator().manual_seed(500)
    inputs = {"x": rand(gen, b, t, h, dh)}

    cos, sin = hf_cos_sin(positions, dh, theta)
    out, grads, g = run(lambda x: rope_rotate_half_ref(x, cos, sin, dh), inputs, gen=gen)
    fixture(out_dir, "rope_rotate_half", inputs, out, grads, g, {"positions": positions},
            dict(meta, layout="ROTATE_HALF", rotary_dim=str(dh)))

    cos, sin = hf_cos_sin(positions, 4, theta)
    out, grads, g = run(lambda x: rope_rotate_half_ref(x, cos, sin, 4), inputs, gen=gen)
    fixture(out_dir, "rope_rotate_half_partial", inputs, out, grads, g, {"positions": positions},
            dict(meta, layout="ROTATE_HALF", rotary_dim="4"))

    cos, sin = meta_cos_sin(positions, dh, theta)
    out, grads, g = run(lambda x: rope_interleaved_ref(x, cos, sin), inputs, gen=gen)
    fixture(out_dir, "rope_interleaved", inputs, out, grads, g, {"positions": positions},
            dict(meta, layout="INTERLEAVED", rotary_dim=str(dh)))


# ------------------------------------------------------------------------------------------------ IO fixture


def io_fixture(out_dir):
    """Every dtype with values the Java test recomputes: element i (row-major) of each tensor is listed below."""
    i12 = np.arange(12)
    tensors = {
        "f32": (i12 * 0.5 - 2.75).astype(np.float32).reshape(3, 4),                # 0.5 i - 2.75
        "f16": (i12 * 0.25 - 1.5).astype(np.float16).reshape(4, 3),                # 0.25 i - 1.5
        "bf16": torch.tensor(i12 * 0.125 - 0.75, dtype=torch.bfloat16).reshape(2, 6),  # 0.125 i - 0.75
        "f64": (i12 / 3.0).reshape(2, 2, 3),                                       # i / 3
        "i64": (np.int64(1) << 62) + i12.astype(np.int64) * 1000003 - 7,           # 2^62 + 1000003 i - 7
        "i32": (i12.astype(np.int32) * -70001 + 5).reshape(12, 1),                 # -70001 i + 5
        "i8": (i12.astype(np.int8) * 11 - 60).reshape(3, 2, 2),                    # 11 i - 60
        "u8": (i12 * 21 + 7).astype(np.uint8),                                     # 21 i + 7
        "bool": (i12 % 3 == 0).reshape(6, 2),                                      # i % 3 == 0
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.array(3.25, dtype=np.float32),
    }
    save(out_dir / "io_all_dtypes.safetensors", tensors,
         {"format": "pt", "note": "written by tools/safetensors_io.py", "unicode": "Grüße, 世界"})


def main():
    default = pathlib.Path(__file__).resolve().parent.parent / "core/src/test/resources/golden/engine"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=default)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    attention_fixtures(args.out)
    rmsnorm_fixture(args.out)
    layernorm_fixture(args.out)
    cross_entropy_fixture(args.out)
    softmax_fixtures(args.out)
    activation_fixtures(args.out)
    rope_fixtures(args.out)
    io_fixture(args.out)
    total = sum(p.stat().st_size for p in args.out.glob("*.safetensors"))
    print("wrote %d fixtures, %d bytes, to %s" % (len(list(args.out.glob("*.safetensors"))), total, args.out))


if __name__ == "__main__":
    main()
