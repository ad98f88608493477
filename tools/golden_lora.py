#!/usr/bin/env python3
"""Golden fixtures for peft4j's LoRA layers, in Hugging Face PEFT's on-disk format.

For small random-weight models written by tools/golden_models.py, writes PEFT adapter folders
(adapter_config.json + adapter_model.safetensors, keys as PEFT names them) with random NON-ZERO A and B, and a
golden.safetensors with the reference logits of base + adapter, computed as PEFT's LoRA / DoRA layers compute them
(plain torch, float32; no peft package is installed here). For `llama_lora` it also records one training step the
llm.c way: the masked cross-entropy loss, the gradient of every adapter tensor, and the losses and adapter values
after three AdamW steps (torch.optim.AdamW).

Run after golden_models.py:  /usr/bin/python3 tools/golden_lora.py
Check an adapter saved by peft4j against the reference:  /usr/bin/python3 tools/golden_lora.py --check MODEL_CASE ADAPTER_DIR
(prints the max abs logit difference between the reference forward with that adapter and the case's golden logits).
"""

import json
import math
import pathlib
import shutil
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import golden_models as gm  # noqa: E402
from safetensors_io import load, save  # noqa: E402

MODELS = HERE.parent / "core" / "src" / "test" / "resources" / "golden" / "models"
OUT = HERE.parent / "core" / "src" / "test" / "resources" / "golden" / "lora"
PREFIX = "base_model.model."


def peft_config(r, alpha, targets, **extra):
    c = {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": None, "bias": "none",
         "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layers_pattern": None,
         "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha, "lora_dropout": 0.0,
         "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA",
         "r": r, "rank_pattern": {}, "revision": None, "target_modules": targets, "task_type": "CAUSAL_LM",
         "use_dora": False, "use_rslora": False}
    c.update(extra)
    return c


def scaling(cfg, module):
    r, alpha = cfg["r"], cfg["lora_alpha"]
    for k, v in cfg["rank_pattern"].items():
        if module == k or module.endswith("." + k):
            r = v
            break
    for k, v in cfg["alpha_pattern"].items():
        if module == k or module.endswith("." + k):
            alpha = v
            break
    return (alpha / math.sqrt(r) if cfg["use_rslora"] else alpha / r), r


def load_model(case):
    d = MODELS / case
    cfg = json.loads((d / "config.json").read_text())
    w, _ = load(str(d / "model.safetensors"))
    return cfg, {k: torch.tensor(v) for k, v in w.items()}


def make_adapter(g, W, modules, cfg, weight_of, dora):
    """Random non-zero A [r, in], B [out, r] (and DoRA magnitudes) for each module; keys as PEFT saves them."""
    tensors = {}
    for m in modules:
        out_f, in_f = weight_of(m).shape
        s, r = scaling(cfg, m)
        A = torch.randn(r, in_f, generator=g) * 0.3
        B = torch.randn(out_f, r, generator=g) * 0.3
        tensors[PREFIX + m + ".lora_A.weight"] = A
        tensors[PREFIX + m + ".lora_B.weight"] = B
        if dora:
            norm = torch.linalg.norm(weight_of(m) + s * (B @ A), dim=1)
            tensors[PREFIX + m + ".lora_magnitude_vector"] = norm * (1 + 0.2 * torch.randn(out_f, generator=g))
    return tensors


def lora_lin_factory(cfg, adapter):
    """A replacement for golden_models.lin that adds each targeted module's LoRA / DoRA term, as PEFT's Linear does."""
    base_lin = gm.lin

    def lin(x, W, name, bias=None):
        y = base_lin(x, W, name)
        key = PREFIX + name
        if key + ".lora_A.weight" not in adapter:
            return y
        A, B = adapter[key + ".lora_A.weight"], adapter[key + ".lora_B.weight"]
        s, _ = scaling(cfg, name)
        lora = (x @ A.t()) @ B.t()
        mag = adapter.get(key + ".lora_magnitude_vector")
        if mag is None:
            return y + lora * s
        Wt = W[name + ".weight"]
        norm = torch.linalg.norm(Wt + s * (B @ A), dim=1).detach()   # PEFT detaches the weight norm
        scale = mag / norm
        b = W.get(name + ".bias")
        base = y - b if b is not None else y
        return y + (scale - 1) * base + scale * lora * s

    return lin


def llama_logits(model_cfg, W, cfg, adapter, ids):
    saved = gm.lin
    gm.lin = lora_lin_factory(cfg, adapter)
    try:
        return gm.llama_forward(model_cfg, W, ids)
    finally:
        gm.lin = saved


def gpt2_logits(model_cfg, W, cfg, adapter, ids):
    """GPT-2's Conv1D stores [in, out] (fan_in_fan_out): merge s·(B A)^T into a copy of the weights."""
    merged = dict(W)
    for key in adapter:
        if key.endswith(".lora_A.weight"):
            module = key[len(PREFIX):-len(".lora_A.weight")]
            ckpt = module[len("transformer."):]
            s, _ = scaling(cfg, module)
            delta = adapter[key.replace("lora_A", "lora_B")] @ adapter[key]
            merged[ckpt + ".weight"] = W[ckpt + ".weight"] + s * delta.t()
    return gm.gpt2_forward(model_cfg, merged, ids)


def write_case(name, cfg, adapter, golden):
    d = OUT / name
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    save(str(d / "adapter_model.safetensors"), {k: v.detach() for k, v in adapter.items()}, metadata={"format": "pt"})
    save(str(d / "golden.safetensors"), {k: v.detach() for k, v in golden.items()},
         metadata={"generator": "tools/golden_lora.py", "torch": torch.__version__})
    print(f"{name}: {len(adapter)} adapter tensors", file=sys.stderr)


def llama_case(name, g, modules_suffixes, cfg, train=False):
    model_cfg, W = load_model("llama_gqa")
    golden_in, _ = load(str(MODELS / "llama_gqa" / "golden.safetensors"))
    ids = golden_in["input_ids"].tolist()
    modules = [k[: -len(".weight")] for k in W if any(k.endswith(s + ".weight") for s in modules_suffixes)]
    adapter = make_adapter(g, W, modules, cfg, lambda m: W[m + ".weight"], cfg["use_dora"])
    golden = {"input_ids": torch.tensor(ids, dtype=torch.int64)}
    with torch.no_grad():
        golden["logits"] = llama_logits(model_cfg, W, cfg, adapter, ids)
    if train:
        targets = ids[1:] + [0]
        targets[3] = -100     # an ignored position
        targets[-1] = -100
        params = {k: v.clone().requires_grad_(True) for k, v in adapter.items()}
        logits = llama_logits(model_cfg, W, cfg, params, ids)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets), ignore_index=-100)
        loss.backward()
        golden["targets"] = torch.tensor(targets, dtype=torch.int64)
        golden["loss"] = loss.detach().reshape(())
        for k, p in params.items():
            golden["grad." + k] = p.grad.detach().clone()
        opt = torch.optim.AdamW(list(params.values()), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            l = torch.nn.functional.cross_entropy(llama_logits(model_cfg, W, cfg, params, ids), torch.tensor(targets), ignore_index=-100)
            losses.append(l.item())
            l.backward()
            opt.step()
        golden["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)
        for k, p in params.items():
            golden["after." + k] = p.detach().clone()
    write_case(name, cfg, adapter, golden)


def llama_embedding_case(name, g):
    """LoRA on model.embed_tokens (PEFT keys lora_embedding_A [r, V], lora_embedding_B [d, r]) plus q_proj."""
    model_cfg, W = load_model("llama_gqa")
    golden_in, _ = load(str(MODELS / "llama_gqa" / "golden.safetensors"))
    ids = golden_in["input_ids"].tolist()
    cfg = peft_config(4, 8, ["embed_tokens", "q_proj"])
    q_modules = [k[: -len(".weight")] for k in W if k.endswith("q_proj.weight")]
    adapter = make_adapter(g, W, q_modules, cfg, lambda m: W[m + ".weight"], False)
    V, d = W["model.embed_tokens.weight"].shape
    A = torch.randn(4, V, generator=g) * 0.3
    B = torch.randn(d, 4, generator=g) * 0.3
    adapter[PREFIX + "model.embed_tokens.lora_embedding_A"] = A
    adapter[PREFIX + "model.embed_tokens.lora_embedding_B"] = B
    s, _ = scaling(cfg, "model.embed_tokens")
    Wm = dict(W)
    # the lookup of (W + s (B A)^T) equals PEFT's W[ids] + s A^T[ids] B^T
    Wm["model.embed_tokens.weight"] = W["model.embed_tokens.weight"] + s * (B @ A).t()
    with torch.no_grad():
        golden = {"input_ids": torch.tensor(ids, dtype=torch.int64), "logits": llama_logits(model_cfg, Wm, cfg, adapter, ids)}
    write_case(name, cfg, adapter, golden)


def gpt2_case(name, g):
    model_cfg, W = load_model("gpt2")
    golden_in, _ = load(str(MODELS / "gpt2" / "golden.safetensors"))
    ids = golden_in["input_ids"].tolist()
    cfg = peft_config(4, 8, ["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True)
    modules = ["transformer." + k[: -len(".weight")] for k in W
               if any(k.endswith(s + ".weight") for s in ("c_attn", "c_proj", "c_fc"))]
    adapter = make_adapter(g, W, modules, cfg, lambda m: W[m[len("transformer."):] + ".weight"].t(), dora=False)
    with torch.no_grad():
        golden = {"input_ids": torch.tensor(ids, dtype=torch.int64), "logits": gpt2_logits(model_cfg, W, cfg, adapter, ids)}
    write_case(name, cfg, adapter, golden)


def check(case, adapter_dir):
    """Reference logits with an adapter folder written by peft4j, against the case's golden logits."""
    adapter_dir = pathlib.Path(adapter_dir)
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    a, _ = load(str(adapter_dir / "adapter_model.safetensors"))
    adapter = {k: torch.tensor(v) for k, v in a.items()}
    golden, _ = load(str(OUT / case / "golden.safetensors"))
    ids = golden["input_ids"].tolist()
    with torch.no_grad():
        if case.startswith("gpt2"):
            model_cfg, W = load_model("gpt2")
            logits = gpt2_logits(model_cfg, W, cfg, adapter, ids)
        else:
            model_cfg, W = load_model("llama_gqa")
            logits = llama_logits(model_cfg, W, cfg, adapter, ids)
    diff = (logits - torch.tensor(golden["logits"])).abs().max().item()
    print(f"{case}: max |logits(peft4j-saved adapter) - golden| = {diff:.3g}")
    return diff


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3]) < 1e-4 else 1)
    torch.manual_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    all_llama = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    llama_case("llama_lora", torch.Generator().manual_seed(1), all_llama, peft_config(4, 8, list(all_llama)), train=True)
    llama_case("llama_rslora_patterns", torch.Generator().manual_seed(2), ("q_proj", "v_proj", "down_proj"),
               peft_config(4, 16, ["q_proj", "v_proj", "down_proj"], use_rslora=True,
                           rank_pattern={"down_proj": 2}, alpha_pattern={"v_proj": 5}))
    llama_case("llama_dora", torch.Generator().manual_seed(3), ("q_proj", "v_proj", "up_proj"),
               peft_config(4, 8, ["q_proj", "v_proj", "up_proj"], use_dora=True))
    gpt2_case("gpt2_lora", torch.Generator().manual_seed(4))
    llama_embedding_case("llama_embedding", torch.Generator().manual_seed(5))
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
