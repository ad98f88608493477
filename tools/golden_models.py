#!/usr/bin/env python3
"""Golden fixtures for peft4j's model architectures.

Writes small random-weight Hugging Face model directories (config.json + model.safetensors) and, beside each, a
golden.safetensors with a fixed input and the logits (BERT: hidden states, pooled output, classifier logits) of a
reference forward. There is no `transformers` package here, so the reference forwards below are compact plain-torch
transcriptions of HF's modeling code (modeling_llama / mistral / qwen2 / gpt2 / bert), in float32; BF16 weights
are upcast to float32, which is also how peft4j computes with them.

Run:  /usr/bin/python3 tools/golden_models.py   (writes core/src/test/resources/golden/models/<name>/)
"""

import json
import math
import pathlib
import shutil
import sys

import torch
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from safetensors_io import save  # noqa: E402

OUT = HERE.parent / "core" / "src" / "test" / "resources" / "golden" / "models"


# ------------------------------------------------------------------------------------------------ reference forwards

def rope_inv_freq(cfg):
    """HF's rope init functions (default, linear, llama3), in float32 as HF computes them."""
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv_freq
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        return inv_freq / rs["factor"]
    assert kind == "llama3", kind
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv_freq
    inv_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, inv_llama)


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def lin(x, W, name, bias=None):
    y = x @ W[name + ".weight"].t()
    b = W.get(name + ".bias")
    return y + b if b is not None else y


def causal_attention(q, k, v, scale):
    """q [H, T, Dh], k/v [H, T, Dh] (already repeated for GQA)."""
    t = q.shape[1]
    scores = (q @ k.transpose(-1, -2)) * scale
    mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
    p = torch.softmax(scores + mask, dim=-1, dtype=torch.float32)
    return p @ v


def llama_forward(cfg, W, ids):
    """LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (eager attention, no cache)."""
    H, Hkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    Dh = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    T = len(ids)
    inv = rope_inv_freq(cfg)
    freqs = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(h, W, p + "self_attn.q_proj").view(T, H, Dh).transpose(0, 1)
        k = lin(h, W, p + "self_attn.k_proj").view(T, Hkv, Dh).transpose(0, 1)
        v = lin(h, W, p + "self_attn.v_proj").view(T, Hkv, Dh).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=0)   # HF repeat_kv: query head h reads kv head h // n_rep
        v = v.repeat_interleave(H // Hkv, dim=0)
        a = causal_attention(q, k, v, Dh ** -0.5).transpose(0, 1).reshape(T, H * Dh)
        x = x + lin(a, W, p + "self_attn.o_proj")
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        act = {"silu": F.silu, "gelu": F.gelu, "gelu_pytorch_tanh": lambda z: F.gelu(z, approximate="tanh")}[cfg.get("hidden_act", "silu")]
        x = x + lin(act(lin(h, W, p + "mlp.gate_proj")) * lin(h, W, p + "mlp.up_proj"), W, p + "mlp.down_proj")
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.t()


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(cfg, W, ids):
    """GPT2LMHeadModel; W uses checkpoint names without the 'transformer.' prefix, Conv1D weights [in, out]."""
    d, H = cfg["n_embd"], cfg["n_head"]
    Dh = d // H
    eps = cfg["layer_norm_epsilon"]
    T = len(ids)

    def conv1d(x, name):
        return x @ W[name + ".weight"] + W[name + ".bias"]

    def ln(x, name):
        return F.layer_norm(x, (d,), W[name + ".weight"], W[name + ".bias"], eps)

    x = W["wte.weight"][torch.tensor(ids)] + W["wpe.weight"][torch.arange(T)]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        qkv = conv1d(ln(x, p + "ln_1"), p + "attn.c_attn")
        q, k, v = (t.view(T, H, Dh).transpose(0, 1) for t in qkv.split(d, dim=1))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        scores = torch.where(causal, scores, torch.tensor(torch.finfo(scores.dtype).min))
        a = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, d)
        x = x + conv1d(a, p + "attn.c_proj")
        x = x + conv1d(gelu_new(conv1d(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    x = ln(x, "ln_f")
    return x @ W["wte.weight"].t()


def bert_forward(cfg, W, ids, types, mask):
    """BertForSequenceClassification (eval mode): returns hidden [T, d], pooled [d], logits [labels]."""
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Dh = d // H
    eps = cfg["layer_norm_eps"]
    T = len(ids)

    def ln(x, name):
        return F.layer_norm(x, (d,), W[name + ".weight"], W[name + ".bias"], eps)

    e = "bert.embeddings."
    x = (W[e + "word_embeddings.weight"][torch.tensor(ids)] + W[e + "token_type_embeddings.weight"][torch.tensor(types)]
         + W[e + "position_embeddings.weight"][torch.arange(T)])
    x = ln(x, e + "LayerNorm")
    ext = (1.0 - torch.tensor(mask, dtype=torch.float32)) * torch.finfo(torch.float32).min   # [T] over keys
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        q = lin(x, W, p + "attention.self.query").view(T, H, Dh).transpose(0, 1)
        k = lin(x, W, p + "attention.self.key").view(T, H, Dh).transpose(0, 1)
        v = lin(x, W, p + "attention.self.value").view(T, H, Dh).transpose(0, 1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(Dh) + ext
        a = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, d)
        x = ln(lin(a, W, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        m = F.gelu(lin(x, W, p + "intermediate.dense"))
        x = ln(lin(m, W, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = torch.tanh(lin(x[0], W, "bert.pooler.dense"))
    logits = lin(pooled, W, "classifier")
    return x, pooled, logits


# ------------------------------------------------------------------------------------------------ random weights

def rnd(g, *shape, std=0.1):
    return torch.randn(*shape, generator=g) * std


def llama_weights(cfg, g):
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    H, Hkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    Dh = cfg.get("head_dim") or d // H
    arch = cfg["architectures"][0]
    qkv_bias = arch == "Qwen2ForCausalLM" or cfg.get("attention_bias", False)
    o_bias = arch != "Qwen2ForCausalLM" and cfg.get("attention_bias", False)
    W = {"model.embed_tokens.weight": rnd(g, cfg["vocab_size"], d, std=0.5)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = 1 + rnd(g, d)
        for name, out, inp, bias in (("self_attn.q_proj", H * Dh, d, qkv_bias), ("self_attn.k_proj", Hkv * Dh, d, qkv_bias),
                                     ("self_attn.v_proj", Hkv * Dh, d, qkv_bias), ("self_attn.o_proj", d, H * Dh, o_bias),
                                     ("mlp.gate_proj", f, d, False), ("mlp.up_proj", f, d, False), ("mlp.down_proj", d, f, False)):
            W[p + name + ".weight"] = rnd(g, out, inp, std=inp ** -0.5)
            if bias:
                W[p + name + ".bias"] = rnd(g, out, std=0.2)
        W[p + "post_attention_layernorm.weight"] = 1 + rnd(g, d)
    W["model.norm.weight"] = 1 + rnd(g, d)
    if not cfg.get("tie_word_embeddings"):
        W["lm_head.weight"] = rnd(g, cfg["vocab_size"], d, std=d ** -0.5)
    return W


def gpt2_weights(cfg, g):
    d = cfg["n_embd"]
    f = cfg.get("n_inner") or 4 * d
    W = {"wte.weight": rnd(g, cfg["vocab_size"], d, std=0.5), "wpe.weight": rnd(g, cfg["n_positions"], d, std=0.2)}
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            W[p + ln + ".weight"] = 1 + rnd(g, d)
            W[p + ln + ".bias"] = rnd(g, d)
        for name, inp, out in (("attn.c_attn", d, 3 * d), ("attn.c_proj", d, d), ("mlp.c_fc", d, f), ("mlp.c_proj", f, d)):
            W[p + name + ".weight"] = rnd(g, inp, out, std=inp ** -0.5)    # Conv1D: [in, out]
            W[p + name + ".bias"] = rnd(g, out, std=0.1)
        # the causal-mask buffer old GPT-2 checkpoints carry; a loader must ignore it
        W[p + "attn.bias"] = torch.tril(torch.ones(cfg["n_positions"], cfg["n_positions"])).view(1, 1, cfg["n_positions"], cfg["n_positions"])
    W["ln_f.weight"] = 1 + rnd(g, d)
    W["ln_f.bias"] = rnd(g, d)
    return W


def bert_weights(cfg, g):
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    e = "bert.embeddings."
    W = {e + "word_embeddings.weight": rnd(g, cfg["vocab_size"], d, std=0.5),
         e + "position_embeddings.weight": rnd(g, cfg["max_position_embeddings"], d, std=0.2),
         e + "token_type_embeddings.weight": rnd(g, cfg["type_vocab_size"], d, std=0.2),
         e + "LayerNorm.weight": 1 + rnd(g, d), e + "LayerNorm.bias": rnd(g, d)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        for name, out, inp in (("attention.self.query", d, d), ("attention.self.key", d, d), ("attention.self.value", d, d),
                               ("attention.output.dense", d, d), ("intermediate.dense", f, d), ("output.dense", d, f)):
            W[p + name + ".weight"] = rnd(g, out, inp, std=inp ** -0.5)
            W[p + name + ".bias"] = rnd(g, out, std=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            W[p + ln + ".weight"] = 1 + rnd(g, d)
            W[p + ln + ".bias"] = rnd(g, d)
    W["bert.pooler.dense.weight"] = rnd(g, d, d, std=d ** -0.5)
    W["bert.pooler.dense.bias"] = rnd(g, d)
    W["classifier.weight"] = rnd(g, len(cfg["id2label"]), d, std=d ** -0.5)
    W["classifier.bias"] = rnd(g, len(cfg["id2label"]))
    return W


# ------------------------------------------------------------------------------------------------ fixtures

LLAMA_BASE = {"model_type": "llama", "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32", "initializer_range": 0.02,
              "use_cache": True, "an_unknown_key_to_ignore": {"nested": [1, 2]}}

CASES = {
    # odd sizes, GQA 6/2, untied head
    "llama_gqa": dict(LLAMA_BASE, architectures=["LlamaForCausalLM"], vocab_size=97, hidden_size=48, intermediate_size=71,
                      num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=False),
    # BF16 weights, tied embeddings, llama3 rope scaling, explicit head_dim != hidden/heads, attention biases (q,k,v,o)
    "llama3_bf16_tied": dict(LLAMA_BASE, architectures=["LlamaForCausalLM"], vocab_size=83, hidden_size=40, intermediate_size=60,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                             max_position_embeddings=128, tie_word_embeddings=True, attention_bias=True, rope_theta=500000.0,
                             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                           "original_max_position_embeddings": 16},
                             torch_dtype="bfloat16"),
    # Mistral: sliding window larger than the sequence, rope_theta 1e6, gelu_pytorch_tanh MLP
    "mistral": dict(LLAMA_BASE, architectures=["MistralForCausalLM"], model_type="mistral", vocab_size=61, hidden_size=32,
                    intermediate_size=45, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    max_position_embeddings=256, sliding_window=4096, rope_theta=1000000.0, tie_word_embeddings=False,
                    hidden_act="gelu_pytorch_tanh"),
    # Qwen2: q/k/v biases, tied, linear rope scaling, eps 1e-6
    "qwen2": dict(LLAMA_BASE, architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=71, hidden_size=48,
                  intermediate_size=53, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                  rope_scaling={"type": "linear", "factor": 2.0}, sliding_window=32, use_sliding_window=False),
    "gpt2": {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 101, "n_embd": 48, "n_head": 4,
             "n_layer": 2, "n_positions": 32, "n_ctx": 32, "n_inner": None, "activation_function": "gelu_new",
             "layer_norm_epsilon": 1e-5, "bos_token_id": 100, "eos_token_id": 100, "attn_pdrop": 0.1},
    "bert_cls": {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 89, "hidden_size": 32,
                 "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 50, "hidden_act": "gelu",
                 "max_position_embeddings": 40, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
                 "position_embedding_type": "absolute", "id2label": {"0": "neg", "1": "neutral", "2": "pos"},
                 "label2id": {"neg": 0, "neutral": 1, "pos": 2}, "hidden_dropout_prob": 0.1},
}


def main():
    torch.manual_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    for i, (name, cfg) in enumerate(CASES.items()):
        g = torch.Generator().manual_seed(1000 + i)
        d = OUT / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        arch = cfg["architectures"][0]
        vocab = cfg["vocab_size"]
        T = 11 if arch != "BertForSequenceClassification" else 9
        ids = torch.randint(0, vocab, (T,), generator=g).tolist()
        if arch == "GPT2LMHeadModel":
            W = gpt2_weights(cfg, g)
            golden = {"input_ids": torch.tensor(ids, dtype=torch.int64), "logits": gpt2_forward(cfg, W, ids)}
            stored = W
        elif arch == "BertForSequenceClassification":
            W = bert_weights(cfg, g)
            types = [0] * 5 + [1] * 4
            mask = [1] * 7 + [0] * 2
            hidden, pooled, logits = bert_forward(cfg, W, ids, types, mask)
            golden = {"input_ids": torch.tensor(ids, dtype=torch.int64), "token_type_ids": torch.tensor(types, dtype=torch.int64),
                      "attention_mask": torch.tensor(mask, dtype=torch.int64), "hidden": hidden, "pooled": pooled, "logits": logits}
            stored = W
        else:
            W = llama_weights(cfg, g)
            if cfg.get("torch_dtype") == "bfloat16":
                stored = {k: v.to(torch.bfloat16) for k, v in W.items()}
                W = {k: v.float() for k, v in stored.items()}     # the reference computes with the rounded weights
            else:
                stored = W
            golden = {"input_ids": torch.tensor(ids, dtype=torch.int64), "logits": llama_forward(cfg, W, ids)}
        with torch.no_grad():
            save(str(d / "model.safetensors"), stored, metadata={"format": "pt"})
            save(str(d / "golden.safetensors"), {k: v.detach() for k, v in golden.items()},
                 metadata={"generator": "tools/golden_models.py", "torch": torch.__version__})
        print(f"{name}: {arch}, {sum(v.numel() for v in stored.values())} weights, input {ids}", file=sys.stderr)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
