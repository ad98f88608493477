package io.peft4j.adapters.structure;

import io.peft4j.adapters.AdapterLayer;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.data.Batcher;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.tensor.Tensor;
import io.peft4j.testing.Assets;
import io.peft4j.testing.GradCheck;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.tokenizer.Tokenizers;
import io.peft4j.train.Evaluator;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static io.peft4j.adapters.structure.MixtureTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** MM-LoRA: each token goes through its modality's LoRA only; tags come from the data through batches to the layers. */
class MmLoraTest {
    private static final String[] MODULES = {"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"};

    static LoraModel adapt(MixtureToy m, Map<String, String> options) {
        LoraModel lm = new LoraModel(m, 7);
        lm.add("default", LoraConfig.builder().r(2).alpha(4).targets("q_proj", "v_proj", "down_proj").build(),
                MethodConfig.of("mm-lora", options), null, null);
        return lm;
    }

    static MmLoraLayer layer(LoraModel lm, String module) { return (MmLoraLayer) lm.otherLayers("default").get(module); }

    /** Runs forward + backward of sum(out ⊙ weights) with the given tags; returns the outputs. */
    private static float[] backward(MixtureToy m, LoraModel lm, Tensor x, int[] tags, Tensor weights) {
        for (Tensor p : lm.parameters("default").values()) p.clearGrad();
        lm.runtime().tokenTags(tags);
        try (Tape tape = Tape.record()) {
            Tensor out = m.forward(x);
            tape.backward(TensorOps.sum(TensorOps.mul(out, weights), false));
            return out.toFloatArray();
        } finally {
            lm.runtime().tokenTags(null);
        }
    }

    /** Gradient values of modality m's rows of A or columns of B. */
    private static float[] block(MmLoraLayer l, boolean ofA, int m) {
        Tensor g = ofA ? l.a.grad() : l.b.grad();
        if (g == null) return new float[0];
        float[] d = g.toFloatArray();
        int r = l.a.dim(0), in = l.a.dim(1), out = l.b.dim(0), from = l.offset(m), to = from + l.rank(m);
        List<Float> vals = new ArrayList<>();
        if (ofA) for (int j = from; j < to; j++) for (int i = 0; i < in; i++) vals.add(d[j * in + i]);
        else for (int o = 0; o < out; o++) for (int j = from; j < to; j++) vals.add(d[o * r + j]);
        float[] v = new float[vals.size()];
        for (int i = 0; i < v.length; i++) v[i] = vals.get(i);
        return v;
    }

    private static boolean allZero(float[] v) {
        for (float f : v) if (f != 0f) return false;
        return true;
    }

    @Test
    void aBatchOfOneModalityNeverTouchesTheOtherModalitysLora() {
        MixtureToy m = new MixtureToy(21, 8, 11, 2);
        LoraModel lm = adapt(m, Map.of("ranks", "2,3"));
        perturb(lm, 60, 0.3f);
        Tensor x = Tensor.randn(22, 1f, 6, 8), w = Tensor.randn(23, 1f, 6, 11);
        for (int mod = 0; mod < 2; mod++) {
            int[] tags = new int[6];
            Arrays.fill(tags, mod);
            backward(m, lm, x, tags, w);
            for (AdapterLayer a : lm.otherLayers("default").values()) {
                MmLoraLayer l = (MmLoraLayer) a;
                int other = 1 - mod;
                assertTrue(allZero(block(l, true, other)) && allZero(block(l, false, other)),
                        l.base().name() + ": modality " + other + "'s LoRA must get exactly zero gradient from modality-" + mod + " tokens");
                assertFalse(allZero(block(l, true, mod)) || allZero(block(l, false, mod)), l.base().name() + ": modality " + mod + "'s LoRA trains");
            }
        }
        // trainables: Σ_m r_m (in + out) = (2 + 3) · 16 per module, 6 modules
        assertEquals(6L * 5 * 16, lm.trainableCount("default"));
    }

    @Test
    void aMixedBatchSplitsTokenByToken() {
        MixtureToy m = new MixtureToy(24, 8, 11, 2);
        LoraModel lm = adapt(m, Map.of());
        perturb(lm, 61, 0.3f);
        Tensor x = Tensor.randn(25, 1f, 6, 8), w = Tensor.randn(26, 1f, 6, 11);
        int[] mixed = {0, 1, 1, 0, 1, 0};
        float[] outMixed = backward(m, lm, x, mixed, w);
        List<float[][]> gradMixed = new ArrayList<>();
        for (AdapterLayer a : lm.otherLayers("default").values())
            gradMixed.add(new float[][] {block((MmLoraLayer) a, true, 0), block((MmLoraLayer) a, false, 0), block((MmLoraLayer) a, true, 1), block((MmLoraLayer) a, false, 1)});
        for (int mod = 0; mod < 2; mod++) {
            // every token through modality mod's LoRA, with the loss weights kept only on the tokens tagged mod
            int[] all = new int[6];
            Arrays.fill(all, mod);
            float[] wm = w.toFloatArray().clone();
            for (int t = 0; t < 6; t++) if (mixed[t] != mod) Arrays.fill(wm, t * 11, t * 11 + 11, 0f);
            float[] outAll = backward(m, lm, x, all, Tensor.of(wm, 6, 11));
            for (int t = 0; t < 6; t++)
                if (mixed[t] == mod)
                    assertArrayEquals(Arrays.copyOfRange(outAll, t * 11, t * 11 + 11), Arrays.copyOfRange(outMixed, t * 11, t * 11 + 11),
                            "token " + t + " (modality " + mod + ") gives the same output in a mixed batch");
            int i = 0;
            for (AdapterLayer a : lm.otherLayers("default").values()) {
                MmLoraLayer l = (MmLoraLayer) a;
                assertClose(gradMixed.get(i)[2 * mod], block(l, true, mod), 1e-5, l.base().name() + " dA of modality " + mod);
                assertClose(gradMixed.get(i)[2 * mod + 1], block(l, false, mod), 1e-5, l.base().name() + " dB of modality " + mod);
                i++;
            }
        }
    }

    @Test
    void gradientsMatchFiniteDifferencesOnAMixedBatch() {
        MixtureToy m = new MixtureToy(27, 6, 7, 2);
        LoraModel lm = adapt(m, Map.of("ranks", "2,1"));
        perturb(lm, 62, 0.3f);
        Tensor x = Tensor.randn(28, 1f, 5, 6);
        lm.runtime().tokenTags(new int[] {1, 0, 0, 1, 1});
        try {
            GradCheck.defaults().check("mm-lora", in -> m.forward(x), lm.parameters("default").values().toArray(new Tensor[0]));
        } finally {
            lm.runtime().tokenTags(null);
        }
    }

    @Test
    void identitySaveLoadAndClearErrors(@TempDir Path dir) throws IOException {
        MixtureToy m = new MixtureToy(29, 8, 11, 2);
        Tensor x = Tensor.randn(30, 1f, 4, 8);
        float[] before = m.forward(x).toFloatArray();
        LoraModel lm = adapt(m, Map.of("ranks", "3,2"));
        lm.runtime().tokenTags(new int[] {0, 1, 1, 0});
        assertArrayEquals(before, m.forward(x).toFloatArray(), "both LoRAs' B are zero at init");
        perturb(lm, 63, 0.3f);
        float[] adapted = m.forward(x).toFloatArray();
        lm.save(dir, "default");
        MixtureToy fresh = new MixtureToy(29, 8, 11, 2);
        LoraModel lm2 = new LoraModel(fresh, 5);
        lm2.load(dir, "default", w -> fail(w));
        lm2.runtime().tokenTags(new int[] {0, 1, 1, 0});
        assertArrayEquals(adapted, fresh.forward(x).toFloatArray(), "reloaded LoRAs with the same tags give identical logits");
        assertEquals(3, layer(lm2, "model.layers.1.mlp.down_proj").rank(0));
        assertEquals(2, layer(lm2, "model.layers.1.mlp.down_proj").rank(1));
        assertThrows(IllegalStateException.class, lm::merge);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> lm.exportPlainLora("default")).getMessage().contains("own format"));

        lm.runtime().tokenTags(new int[] {0, 1, 1});
        var wrongLength = assertThrows(IllegalStateException.class, () -> m.forward(x));
        assertTrue(wrongLength.getMessage().contains("3 token tags") && wrongLength.getMessage().contains("4 rows"), wrongLength.getMessage());
        lm.runtime().tokenTags(new int[] {0, 2, 1, 0});
        var unknown = assertThrows(IllegalStateException.class, () -> m.forward(x));
        assertTrue(unknown.getMessage().contains("modality 2"), unknown.getMessage());
        lm.runtime().tokenTags(null);
        var ranks = assertThrows(IllegalArgumentException.class, () -> adapt(new MixtureToy(29, 8, 11, 1), Map.of("ranks", "2,2,2")));
        assertTrue(ranks.getMessage().contains("3 ranks for 2 modalities"), ranks.getMessage());
    }

    /** Mixed rows: a stand-in "image" segment (text tokens: peft4j has no vision encoder) then a caption. */
    private static String mixedRow(int i) {
        String[] colours = {"red", "blue", "green", "yellow", "big", "small"}, things = {"ball", "cat", "dog", "tree", "car"};
        String c = colours[i % colours.length], t = things[(i / colours.length) % things.length];
        return "{\"segments\": [{\"text\": \"<image: " + c + " " + t + " on the grass> \", \"modality\": \"image\"}, "
                + "{\"text\": \"Lily saw a " + c + " " + t + ". She was happy.\", \"modality\": \"text\"}]}";
    }

    @Test
    void trainsEndToEndOnMixedJsonlWithEachModalityTrainingOnlyItsLora(@TempDir Path dir) throws IOException {
        Path modelFile = Assets.require("models/stories260K/stories260K.bin");
        Path tokFile = Assets.require("models/stories260K/tok512.bin");
        List<String> mixed = new ArrayList<>(), textOnly = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            mixed.add(mixedRow(i));
            textOnly.add("{\"text\": \"Lily saw a ball number " + i + ". She was happy.\"}");
        }
        Path mixedFile = Files.write(dir.resolve("mixed.jsonl"), mixed), textFile = Files.write(dir.resolve("text.jsonl"), textOnly);
        try (CausalLM m = Models.loadCausalLM(modelFile); Tokenizer tok = Tokenizers.load(tokFile)) {
            // the data side: one row unpacked, checked token by token against the tokenizer
            Dataset rows = DataLoader.load(mixedFile, DataConfig.builder(DataFormat.TEXT, 64).optPacking(false).build(), tok);
            Example first = rows.get(0);
            int[] img = tok.encode("<image: red ball on the grass> ", false), txt = tok.encode("Lily saw a red ball. She was happy.", false);
            int bos = tok.bosId() >= 0 && tok.bosId() != tok.eosId() ? 1 : 0;
            assertEquals(bos + img.length + txt.length, first.length(), "BOS + both segments (the EOS is the last target)");
            for (int t = 0; t < first.length(); t++) {
                int want = t >= bos && t < bos + img.length ? 1 : 0;
                assertEquals(want, first.modalities()[t], "token " + t);
            }

            Dataset.Split split = DataLoader.loadSplit(mixedFile, null, 0.2, DataConfig.builder(DataFormat.TEXT, 32).build(), tok);
            assertNotNull(split.train().get(0).modalities(), "packed windows keep the tags");
            LoraModel lm = new LoraModel(m, 1);
            lm.add("default", LoraConfig.builder().r(4).alpha(8).targets("q_proj", "v_proj", "down_proj").build(), MethodConfig.of("mm-lora"), null, null);
            TrainingOptions opt = TrainingOptions.defaults(10).withLr(1e-2);      // evaluates at step 0 and at the end
            Trainer trainer = new Trainer(m, lm, "default", new Batcher(split.train(), Batcher.Options.training(4, 1, 0)), split.eval(), 4, 0,
                    opt, dir.resolve("mixed-run"), new PrintStream(new ByteArrayOutputStream()));
            Trainer.Result r = trainer.run();
            assertNull(lm.runtime().tokenTags(), "the Trainer clears the tags after each batch");
            double before = trainer.evalCurve().getFirst()[1];
            assertTrue(r.lastEval().loss() < before, "eval loss " + before + " -> " + r.lastEval().loss());
            for (AdapterLayer a : lm.otherLayers("default").values()) {
                MmLoraLayer l = (MmLoraLayer) a;
                for (int mod = 0; mod < 2; mod++) assertFalse(allZero(blockValues(l, mod)), l.base().name() + ": modality " + mod + " trained");
            }
            // the evaluator routes by the tags too: without them every token would use the language LoRA
            double withTags = Evaluator.evaluate(m, split.eval(), 4, 0, 0, lm.runtime()).loss();
            double untagged = Evaluator.evaluate(m, split.eval(), 4, 0, 0).loss();
            assertNotEquals(withTags, untagged, 1e-7);
            assertTrue(Files.exists(dir.resolve("mixed-run").resolve("adapter_model.safetensors")));
            lm.delete("default");

            // text-only data: the vision LoRA stays exactly as initialised (B zero, A untouched)
            Dataset text = DataLoader.load(textFile, DataConfig.builder(DataFormat.TEXT, 32).build(), tok);
            assertNull(text.get(0).modalities());
            LoraModel lm2 = new LoraModel(m, 1);
            lm2.add("default", LoraConfig.builder().r(4).alpha(8).targets("q_proj", "v_proj", "down_proj").build(), MethodConfig.of("mm-lora"), null, null);
            Map<String, float[]> initialA = new java.util.LinkedHashMap<>();
            lm2.otherLayers("default").forEach((k, v) -> initialA.put(k, ((MmLoraLayer) v).a.toFloatArray().clone()));
            new Trainer(m, lm2, "default", new Batcher(text, Batcher.Options.training(4, 1, 0)), null, 4, 0, TrainingOptions.defaults(4).withLr(1e-2),
                    dir.resolve("text-run"), new PrintStream(new ByteArrayOutputStream())).run();
            for (Map.Entry<String, AdapterLayer> e : lm2.otherLayers("default").entrySet()) {
                MmLoraLayer l = (MmLoraLayer) e.getValue();
                assertTrue(allZero(blockValues(l, 1)), e.getKey() + ": the vision LoRA's B stays zero");
                float[] a = l.a.toFloatArray(), a0 = initialA.get(e.getKey());
                int in = l.a.dim(1);
                assertArrayEquals(Arrays.copyOfRange(a0, l.offset(1) * in, a0.length), Arrays.copyOfRange(a, l.offset(1) * in, a.length),
                        e.getKey() + ": the vision LoRA's A is untouched");
                assertFalse(allZero(blockValues(l, 0)), e.getKey() + ": the language LoRA trained");
            }
        }
    }

    /** Modality m's columns of B (values, not gradients). */
    private static float[] blockValues(MmLoraLayer l, int m) {
        float[] d = l.b.toFloatArray();
        int r = l.b.dim(1), out = l.b.dim(0);
        float[] v = new float[out * l.rank(m)];
        int k = 0;
        for (int o = 0; o < out; o++) for (int j = l.offset(m); j < l.offset(m) + l.rank(m); j++) v[k++] = d[o * r + j];
        return v;
    }
}
