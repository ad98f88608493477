#!/usr/bin/env python3
"""PyTorch reference for `peft4j bench generate`: the same random Llama shapes, batch 1, greedy decode with a KV cache.

Prints one JSON object with the same keys as `peft4j bench generate --json` (timings are best of --runs).
Weights are F32 by default (PyTorch 1.13's CPU BF16 matmuls are far slower than F32 here); `--dtype bf16` keeps
BF16 weights and BF16 compute, which is how PyTorch runs a BF16 checkpoint without an upcast.

Run:  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/bench_generate_torch.py --config 100m --json
(Debian's OpenBLAS needs OPENBLAS_CORETYPE or it runs SSE3 kernels; see DESIGN.md.) Debian's python3-torch calls
whatever libblas.so.3 the system selects; with only the reference BLAS installed it is ~20x slower, so the JSON
reports which BLAS was loaded ("blas"). Without installing anything system-wide, an OpenBLAS can be used from an
unpacked package:  apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb ob &&
LD_LIBRARY_PATH=$PWD/ob/usr/lib/x86_64-linux-gnu/openblas-pthread ... python3 tools/bench_generate_torch.py
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(vocab=512, d=64, ffn=176, layers=4, heads=8, kv=4, max_pos=1024),
    "100m": dict(vocab=32000, d=768, ffn=2048, layers=12, heads=12, kv=4, max_pos=2048),
}


GEMV = False   # --gemv: single-row products through torch.mv (sgemv) instead of F.linear (sgemm with M = 1)


def lin(x, w):
    if GEMV and x.shape[0] == 1:
        return torch.mv(w, x[0]).unsqueeze(0)
    return F.linear(x, w)


class Llama:
    def __init__(self, c, dtype, seed=42):
        g = torch.Generator().manual_seed(seed)
        d, f, H, Hkv = c["d"], c["ffn"], c["heads"], c["kv"]
        self.c, self.Dh = c, d // H

        def w(*shape):
            return (torch.rand(*shape, generator=g) * 2 - 1).mul_(math.sqrt(3) / math.sqrt(shape[-1])).to(dtype)

        self.embed = w(c["vocab"], d)
        self.layers = []
        for _ in range(c["layers"]):
            self.layers.append(dict(n1=torch.ones(d, dtype=dtype), q=w(H * self.Dh, d), k=w(Hkv * self.Dh, d), v=w(Hkv * self.Dh, d),
                                    o=w(d, H * self.Dh), n2=torch.ones(d, dtype=dtype), gate=w(f, d), up=w(f, d), down=w(d, f)))
        self.norm = torch.ones(d, dtype=dtype)
        self.head = w(c["vocab"], d)
        inv = 1.0 / (10000.0 ** (torch.arange(0, self.Dh, 2).float() / self.Dh))
        fr = torch.outer(torch.arange(c["max_pos"]).float(), inv)
        emb = torch.cat((fr, fr), dim=-1)
        self.cos, self.sin = emb.cos().to(dtype), emb.sin().to(dtype)
        self.dtype = dtype

    def weight_bytes(self):
        b = self.head.numel() * self.head.element_size()
        for L in self.layers:
            b += sum(L[k].numel() * L[k].element_size() for k in ("q", "k", "v", "o", "gate", "up", "down"))
        return b

    def new_cache(self, max_seq):
        c = self.c
        return [(torch.zeros(c["kv"], max_seq, self.Dh, dtype=self.dtype), torch.zeros(c["kv"], max_seq, self.Dh, dtype=self.dtype))
                for _ in range(c["layers"])], [0]

    @staticmethod
    def rms(x, w, eps=1e-5):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    @staticmethod
    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def forward(self, ids, cache):
        """ids [T] at positions cache_len..; returns logits of the last position."""
        kv, length = cache
        pos, T = length[0], len(ids)
        H, Hkv, Dh = self.c["heads"], self.c["kv"], self.Dh
        cos, sin = self.cos[pos:pos + T], self.sin[pos:pos + T]
        x = self.embed[ids]
        for L, (ck, cv) in zip(self.layers, kv):
            h = self.rms(x, L["n1"])
            q = lin(h, L["q"]).view(T, H, Dh).transpose(0, 1)
            k = lin(h, L["k"]).view(T, Hkv, Dh).transpose(0, 1)
            v = lin(h, L["v"]).view(T, Hkv, Dh).transpose(0, 1)
            q = q * cos + self.rot(q) * sin
            k = k * cos + self.rot(k) * sin
            ck[:, pos:pos + T] = k
            cv[:, pos:pos + T] = v
            S, rep = pos + T, H // Hkv   # HF's repeat_kv (expand + reshape; repeat_interleave is far slower in 1.13)
            K = ck[:, :S].unsqueeze(1).expand(Hkv, rep, S, Dh).reshape(H, S, Dh)
            V = cv[:, :S].unsqueeze(1).expand(Hkv, rep, S, Dh).reshape(H, S, Dh)
            s = (q @ K.transpose(-1, -2)) * (Dh ** -0.5)
            if T > 1:
                s = s + torch.triu(torch.full((T, pos + T), float("-inf"), dtype=s.dtype), diagonal=pos + 1)
            a = (torch.softmax(s.float(), dim=-1).to(s.dtype) @ V).transpose(0, 1).reshape(T, H * Dh)
            x = x + lin(a, L["o"])
            h = self.rms(x, L["n2"])
            x = x + lin(F.silu(lin(h, L["gate"])) * lin(h, L["up"]), L["down"])
        length[0] += T
        return lin(self.rms(x[-1:], self.norm), self.head)


def run(model, prompt, new_tokens):
    cache = model.new_cache(len(prompt) + new_tokens)
    t0 = time.perf_counter()
    logits = model.forward(prompt, cache)
    t1 = time.perf_counter()
    for _ in range(new_tokens):
        nxt = int(logits[0].argmax())
        logits = model.forward(torch.tensor([nxt]), cache)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def memcpy_bandwidth(nbytes):
    a = torch.ones(nbytes // 4, dtype=torch.float32)
    b = torch.empty_like(a)
    best = 0
    for _ in range(6):
        t0 = time.perf_counter()
        b.copy_(a)
        best = max(best, nbytes / (time.perf_counter() - t0))
    return best


def loaded_blas():
    """The BLAS library mapped into this process (after a matmul has run)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and ".so" in line}
    except OSError:
        return "unknown"
    return ", ".join(sorted(libs)) or "none"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="100m", choices=CONFIGS)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--gemv", action="store_true", help="decode products via torch.mv (HF models call F.linear, i.e. sgemm with M = 1)")
    a = ap.parse_args()
    global GEMV
    GEMV = a.gemv
    torch.set_num_threads(a.threads)
    dtype = torch.float32 if a.dtype == "f32" else torch.bfloat16
    c = CONFIGS[a.config]
    with torch.inference_mode():
        model = Llama(c, dtype)
        prompt = torch.randint(0, c["vocab"], (a.prompt_tokens,), generator=torch.Generator().manual_seed(7))
        run(model, prompt[:32], 16)   # warm-up
        best_p = best_d = 0
        for r in range(a.runs):
            tp, td = run(model, prompt, a.new_tokens)
            best_p, best_d = max(best_p, a.prompt_tokens / tp), max(best_d, a.new_tokens / td)
            print(f"run {r + 1}: prefill {a.prompt_tokens / tp:.1f} tok/s, decode {a.new_tokens / td:.2f} tok/s", file=sys.stderr)
        wb = model.weight_bytes()
        copy = memcpy_bandwidth(max(64 << 20, min(wb, 512 << 20)))
    res = {"engine": f"pytorch {torch.__version__}", "blas": loaded_blas(), "model": f"random:{a.config}:{a.dtype.upper()}" + (":gemv" if a.gemv else ""), "threads": torch.get_num_threads(),
           "prompt_tokens": a.prompt_tokens, "new_tokens": a.new_tokens, "prefill_tokens_per_s": round(best_p, 2),
           "decode_tokens_per_s": round(best_d, 3), "decode_weight_bytes_per_token": wb, "decode_weight_gb_per_s": round(wb * best_d / 1e9, 3),
           "memcpy_gb_per_s": round(copy / 1e9, 3), "weight_bw_over_memcpy": round(wb * best_d / copy, 3)}
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
