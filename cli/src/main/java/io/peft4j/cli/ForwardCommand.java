package io.peft4j.cli;

import io.peft4j.io.Safetensors;
import io.peft4j.models.CausalLM;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.tokenizer.Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code peft4j forward}: one full forward pass, logits written to a safetensors file (for comparisons with other engines). */
@Command(name = "forward", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Run one forward pass and write 'logits' (F32 [T, vocab]) and 'input_ids' (I64 [T]) to a safetensors file.")
public final class ForwardCommand implements Callable<Integer> {
    @Mixin ModelOptions modelOptions;
    @Mixin AdapterOptions adapterOptions;

    static final class Input {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "text, encoded with a BOS") String prompt;
        @Option(names = "--ids", paramLabel = "1,2,3", split = ",", description = "token ids, used as given") int[] ids;
    }

    @ArgGroup(exclusive = true, multiplicity = "1") Input input;

    @Option(names = "--out", required = true, paramLabel = "FILE.safetensors", description = "output file")
    Path out;

    @Override
    public Integer call() {
        try (CausalLM model = modelOptions.loadCausalLM()) {
            adapterOptions.apply(model);
            int[] ids;
            if (input.ids != null) ids = input.ids;
            else try (Tokenizer tok = modelOptions.loadTokenizer()) { ids = tok.encode(input.prompt, true); }
            if (ids.length == 0) throw new IllegalArgumentException("nothing to run: the input has no tokens");
            long t0 = System.nanoTime();
            Tensor logits = model.forward(ids);
            long t1 = System.nanoTime();
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("logits", logits);
            tensors.put("input_ids", i64(ids));
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("model", modelOptions.model.toString());
            meta.put("architecture", model.config().architecture.hfName);
            Safetensors.write(out, tensors, meta);
            System.err.printf("forward of %d tokens in %.1f ms -> %s%n", ids.length, (t1 - t0) / 1e6, out);
            ModelOptions.utf8Out().println(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
        return 0;
    }

    /** A segment-backed I64 [n] tensor: the safetensors writer writes each tensor in its own dtype. */
    static Tensor i64(int[] ids) {
        MemorySegment seg = Arena.ofAuto().allocate(8L * ids.length, 8);
        ValueLayout.OfLong le = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < ids.length; i++) seg.set(le, 8L * i, ids[i]);
        return Tensor.ofSegment(seg, DType.I64, ids.length);
    }
}
