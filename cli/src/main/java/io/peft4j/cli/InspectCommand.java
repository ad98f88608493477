package io.peft4j.cli;

import io.peft4j.models.Model;
import io.peft4j.models.ModelConfig;
import io.peft4j.models.Models;
import io.peft4j.nn.Linear;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code peft4j inspect}: what a model is, how big, in which dtypes, and what it costs on disk and in memory; with
 * {@code --adapter}, per adapted module the norms behind the efficiency threshold of LoRA's gradient computation
 * ("Computational Limits of Low-Rank Adaptation (LoRA) for Transformer-Based Models", arXiv 2406.03136).
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Describe a model: architecture, config, parameter counts by module kind, dtypes, bytes on disk and in memory.")
public final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "PATH", description = "HF model directory or llama2.c .bin")
    Path path;
    @Option(names = "--adapter", paramLabel = "DIR",
            description = "also report, per adapted module, the norms bounding the entries of X (W + sBA)^T against the sqrt(ln L) threshold of arXiv 2406.03136")
    Path adapter;
    @Option(names = "--seq-len", paramLabel = "L", description = "sequence length L of the threshold (default: the model's maximum positions)")
    Integer seqLen;
    @Option(names = "--input-norm", paramLabel = "R", defaultValue = "0",
            description = "assumed l2 norm of an input row (default 0: sqrt(in), an RMS-normalised row with unit gain)")
    double inputNorm;

    @Override
    public Integer call() {
        PrintStream out = ModelOptions.utf8Out();
        try (Model m = Models.load(path)) {
            ModelConfig c = m.config();
            out.println("path:          " + path);
            out.println("architecture:  " + c.architecture.hfName + " (model_type " + c.modelType + ")");
            out.println("config:        " + c.summary());
            Map<String, long[]> byKind = new LinkedHashMap<>();      // kind -> {tensors, parameters}
            Map<DType, long[]> byDtype = new EnumMap<>(DType.class); // dtype -> {tensors, parameters, bytes}
            long total = 0, heapBytes = 0, mappedBytes = 0;
            IdentityHashMap<Object, Boolean> seenStorage = new IdentityHashMap<>();
            for (Map.Entry<String, Tensor> e : m.parameters().entrySet()) {
                Tensor t = e.getValue();
                long n = t.numel();
                total += n;
                long[] k = byKind.computeIfAbsent(kind(e.getKey()), x -> new long[2]);
                k[0]++;
                k[1] += n;
                long[] d = byDtype.computeIfAbsent(t.dtype(), x -> new long[3]);
                d[0]++;
                d[1] += n;
                d[2] += n * t.dtype().bytes;
                long bytes = n * t.dtype().bytes;
                if (t.storage().isHeap()) {
                    if (seenStorage.put(t.storage(), Boolean.TRUE) == null) heapBytes += bytes;
                } else mappedBytes += bytes;
            }
            out.printf("parameters:    %,d (%s)%n", total, human(total, ""));
            for (Map.Entry<String, long[]> k : byKind.entrySet())
                out.printf("  %-12s %,15d  %5.1f%%  (%d tensors)%n", k.getKey(), k.getValue()[1], 100.0 * k.getValue()[1] / Math.max(1, total), k.getValue()[0]);
            out.println("dtypes (as held: 1-D norm scales and biases are widened to F32 at load):");
            for (Map.Entry<DType, long[]> d : byDtype.entrySet())
                out.printf("  %-12s %,15d  (%d tensors, %s)%n", d.getKey(), d.getValue()[1], d.getValue()[0], human(d.getValue()[2], "B"));
            Map<String, Linear> lin = m.linears();
            out.println("linear layers: " + lin.size() + (lin.isEmpty() ? "" : " (e.g. " + lin.keySet().iterator().next() + ")"));
            out.println("bytes on disk: " + human(m.weights().bytesOnDisk(), "B"));
            out.println("in memory:     " + human(mappedBytes, "B") + " memory-mapped (paged in on use), " + human(heapBytes, "B") + " on the heap");
            out.printf("kv cache:      %s per position (batch 1, F32)%n", human(2L * c.numLayers * c.numKvHeads * c.headDim * 4, "B"));
            if (adapter != null) adapterNorms(m, c, out);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
        return 0;
    }

    /** The norm diagnostic of arXiv 2406.03136 for {@link #adapter} on {@code m}. */
    private void adapterNorms(Model m, ModelConfig c, PrintStream out) throws IOException {
        io.peft4j.adapters.LoraModel lm = new io.peft4j.adapters.LoraModel(m, 0);
        lm.load(adapter, io.peft4j.adapters.LoraModel.DEFAULT, w -> System.err.println("warning: " + w));
        int len = seqLen != null ? seqLen : c.maxPositions;
        java.util.List<io.peft4j.adapters.structure.NormThreshold.ModuleNorms> norms =
                io.peft4j.adapters.structure.NormThreshold.of(lm, io.peft4j.adapters.LoraModel.DEFAULT, len, inputNorm);
        double t = io.peft4j.adapters.structure.NormThreshold.threshold(len);
        out.printf("adapter:       %s (%s, %d modules)%n", adapter, lm.method(io.peft4j.adapters.LoraModel.DEFAULT).method(), norms.size());
        out.printf("LoRA efficiency threshold (arXiv 2406.03136): entries of X (W + sBA)^T below sqrt(ln L) = %.3f for L = %d%n", t, len);
        out.println("  (bound = R x max row norm of W + sBA; R = input row norm; a heuristic reading of an asymptotic threshold)");
        out.printf("  %-44s %10s %10s %10s %8s %10s  %s%n", "module", "max|W|", "max|sBA|", "row norm", "R", "bound", "");
        int below = 0;
        for (var n : norms) {
            if (n.below()) below++;
            out.printf("  %-44s %10.4g %10.4g %10.4g %8.3g %10.4g  %s%n", n.module(), n.weightMax(), n.deltaMax(), n.rowNorm(),
                    n.inputNorm(), n.entryBound(), n.below() ? "below" : "above");
        }
        out.printf("  %d of %d modules below the threshold%n", below, norms.size());
    }

    /** A module kind from an HF parameter name; norms first, since BERT's "attention.output.LayerNorm" is a norm. */
    static String kind(String name) {
        if (name.contains("norm") || name.contains("LayerNorm") || name.contains(".ln_") || name.startsWith("ln_") || name.contains("ln_f")) return "norm";
        if (name.contains("embed") || name.contains("wte") || name.contains("wpe")) return "embedding";
        if (name.startsWith("lm_head")) return "lm_head";
        if (name.contains("attn") || name.contains("attention")) return "attention";
        if (name.contains("mlp") || name.contains("intermediate") || name.contains(".output.dense")) return "mlp";
        if (name.contains("pooler") || name.contains("classifier")) return "head";
        return "other";
    }

    static String human(long v, String unit) {
        String[] p = {"", "K", "M", "G", "T"};
        double x = v;
        int i = 0;
        while (x >= 1000 && i < p.length - 1) { x /= 1000; i++; }
        return i == 0 ? v + (unit.isEmpty() ? "" : " " + unit) : String.format("%.2f %s%s", x, p[i], unit);
    }
}
