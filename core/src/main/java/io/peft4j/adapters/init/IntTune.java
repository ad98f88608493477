package io.peft4j.adapters.init;

import io.peft4j.adapters.AdapterMethod;
import io.peft4j.adapters.MethodContext;
import io.peft4j.adapters.MethodOption;

import java.util.List;

/**
 * IntTune (Intermediate Tune): NLoRA's Nyström initialisation ({@link NLora}: {@code s B M A} starts at the
 * Nyström sketch of W, the base rewritten to the residual) with A and B frozen, so only the r x r middle matrix M trains:
 * {@code r^2} trainable parameters per layer. From "NLoRA: Nyström-Initiated Low-Rank Adaptation for Large Language
 * Models" (Guo, Chang, Wu; arXiv 2502.14482), section on IntTune; the authors' code sets {@code requires_grad = False}
 * on lora_A and lora_B after the NLoRA init. Same options as NLoRA.
 */
public final class IntTune implements AdapterMethod {
    @Override public String name() { return "inttune"; }

    @Override public String summary() { return "NLoRA's Nyström init with A and B frozen: only the r x r middle matrix trains (r^2 per layer)"; }

    @Override public String paper() { return "NLoRA: Nyström-Initiated Low-Rank Adaptation for Large Language Models (arXiv 2502.14482), IntTune"; }

    @Override public List<MethodOption> options() { return NLora.OPTIONS; }

    @Override
    public Initialised initialise(MethodContext ctx) { return NLora.build(ctx, false, name()); }
}
