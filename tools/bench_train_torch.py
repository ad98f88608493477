#!/usr/bin/env python3
"""PyTorch reference for `peft4j bench train`: the same random-weight Llama shapes, LoRA r=16 (alpha 32, dropout
0.05) on q,k,v,o,gate,up,down with the base frozen, AdamW, seq 256, batch 4, 2 threads; prints one JSON object
with training tokens/s (mean over the timed steps) and peak RSS.

Run side by side with peft4j:
    env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/bench_train_torch.py small
    ./peft4j bench train small --json
(Debian's torch 1.13 uses OpenBLAS 0.3.21, which must be told the core type or it runs SSE3 kernels.)
"""

import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(vocab=4000, d=256, ffn=688, layers=4, heads=4),
    "small": dict(vocab=32000, d=512, ffn=1408, layers=8, heads=8),
}


class LoraLinear(nn.Module):
    def __init__(self, d_in, d_out, r, alpha, dropout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * 0.02, requires_grad=False)
        self.A = nn.Parameter(torch.empty(r, d_in).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in)))
        self.B = nn.Parameter(torch.zeros(d_out, r))
        self.scale = alpha / r
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return F.linear(x, self.weight) + F.linear(F.linear(self.drop(x), self.A), self.B) * self.scale


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        return self.w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        d, f = c["d"], c["ffn"]
        self.h = c["heads"]
        L = lambda i, o: LoraLinear(i, o, r, 2 * r, 0.05)
        self.q, self.k, self.v, self.o = L(d, d), L(d, d), L(d, d), L(d, d)
        self.gate, self.up, self.down = L(d, f), L(d, f), L(f, d)
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)

    def forward(self, x, cos, sin):
        B, T, d = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, T, self.h, -1).transpose(1, 2)
        k = self.k(h).view(B, T, self.h, -1).transpose(1, 2)
        v = self.v(h).view(B, T, self.h, -1).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") else \
            torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + torch.triu(torch.full((T, T), float("-inf")), 1), -1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, d))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.emb = nn.Parameter(torch.randn(c["vocab"], c["d"]) * 0.02, requires_grad=False)
        self.blocks = nn.ModuleList(Block(c, r) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["d"])
        self.head = nn.Parameter(torch.randn(c["vocab"], c["d"]) * 0.02, requires_grad=False)
        dh = c["d"] // c["heads"]
        inv = 1.0 / (10000 ** (torch.arange(0, dh, 2).float() / dh))
        freqs = torch.outer(torch.arange(4096).float(), inv)
        emb = torch.cat((freqs, freqs), -1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())

    def forward(self, ids):
        T = ids.shape[1]
        x = self.emb[ids]
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin)
        return self.norm(x) @ self.head.t()


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "small"
    steps, warmup, seq, batch, r = 6, 2, 256, 4, 16
    torch.set_num_threads(2)
    torch.manual_seed(0)
    c = CONFIGS[name]
    model = Llama(c, r)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, c["vocab"], (batch, seq + 1))
    x, y = ids[:, :-1], ids[:, 1:]
    total = 0.0
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).reshape(-1, c["vocab"]), y.reshape(-1))
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        print(f"step {s + 1}: {dt:.3f} s ({batch * seq / dt:.0f} tok/s)", file=sys.stderr)
        if s >= warmup:
            total += dt
    out = {"config": name, "params": sum(p.numel() for p in model.parameters()), "trainable": sum(p.numel() for p in params),
           "seq_len": seq, "batch": batch, "threads": torch.get_num_threads(), "torch": torch.__version__,
           "tokens_per_s": batch * seq * steps / total,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
