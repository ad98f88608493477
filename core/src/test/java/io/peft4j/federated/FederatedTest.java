package io.peft4j.federated;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraLayer;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.models.CausalLM;
import io.peft4j.models.RandomModels;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * FFA-LoRA's federated path on a tiny random Llama and synthetic, learnable token data: exact aggregation of B (and
 * LoRA's inexact one), a run that learns, DP-SGD's clipping and noise scale, reproducibility, privacy accounting, and
 * the saved adapter.
 */
class FederatedTest {
    static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());
    static final int SEQ = 16;

    static CausalLM tiny() { return RandomModels.causalLM(RandomModels.namedConfig("tiny"), DType.F32, 7); }

    static FederatedClient client(CausalLM m, String method, long seed) {
        return client(m, method, seed, LoraConfig.builder().r(4).alpha(8).dropout(0).targets("q_proj", "v_proj").build());
    }

    static FederatedClient client(CausalLM m, String method, long seed, LoraConfig c) {
        LoraModel lm = new LoraModel(m, seed);
        lm.add(LoraModel.DEFAULT, c, MethodConfig.of(method), null, null);
        return new FederatedClient(m, lm, LoraModel.DEFAULT, 0);
    }

    /** Sequences of a counting pattern (next = previous + stride, mod 40, offset 10): learnable, unlike the random model's guess. */
    static Dataset data(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int stride = 1 + r.nextInt(3), t = r.nextInt(40);
            int[] ids = new int[SEQ], labels = new int[SEQ];
            for (int j = 0; j < SEQ; j++) { ids[j] = 10 + t; t = (t + stride) % 40; labels[j] = 10 + t; }
            ex.add(new Example(ids, labels));
        }
        return Dataset.of(ex);
    }

    static FederatedConfig cfg(int clients, int rounds, int steps, double fraction) {
        return FederatedConfig.plain(clients, rounds, steps, fraction, 1e-2, 4, SEQ, 11);
    }

    /** s · B · A of every layer, flattened: the adapter's weight update. */
    static Map<String, float[]> updates(FederatedClient c) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, LoraLayer> e : c.adapters().layers(LoraModel.DEFAULT).entrySet()) {
            LoraLayer l = e.getValue();
            float[] a = l.loraA().toFloatArray(), b = l.loraB().toFloatArray();
            int r = l.rank(), in = a.length / r, outF = b.length / r;
            float[] w = new float[outF * in];
            for (int o = 0; o < outF; o++)
                for (int i = 0; i < in; i++) {
                    double s = 0;
                    for (int k = 0; k < r; k++) s += (double) b[o * r + k] * a[k * in + i];
                    w[o * in + i] = (float) (l.scaling() * s);
                }
            out.put(e.getKey(), w);
        }
        return out;
    }

    /** max |avg_c(B_c A_c) - B_avg A_avg| / max |avg_c(B_c A_c)| over layers, after one round of two clients. */
    static double aggregationError(String method) {
        CausalLM m = tiny();
        FederatedClient c = client(m, method, 3);
        FederatedConfig cfg = cfg(2, 1, 4, 1.0);
        List<Dataset> shards = List.of(data(12, 1), data(20, 2));
        Map<String, float[]> global = c.values();
        List<FederatedClient.Update> ups = new ArrayList<>();
        List<Map<String, float[]>> products = new ArrayList<>();
        for (int k = 0; k < 2; k++) {
            FederatedClient.Update u = c.run(global, shards.get(k), k, 1, cfg, Double.NaN);
            ups.add(u);
            products.add(updates(c));            // the client's own B A after its local steps
        }
        Map<String, float[]> next = FederatedTrainer.aggregate(global, ups);
        c.load(next);
        Map<String, float[]> server = updates(c);
        double w0 = 12 / 32.0, w1 = 20 / 32.0, maxDiff = 0, maxMag = 0;
        for (String layer : server.keySet()) {
            float[] s = server.get(layer), p0 = products.get(0).get(layer), p1 = products.get(1).get(layer);
            for (int i = 0; i < s.length; i++) {
                double avg = w0 * p0[i] + w1 * p1[i];
                maxDiff = Math.max(maxDiff, Math.abs(avg - s[i]));
                maxMag = Math.max(maxMag, Math.abs(avg));
            }
        }
        assertTrue(maxMag > 1e-4, method + ": the clients moved (" + maxMag + ")");
        return maxDiff / maxMag;
    }

    @Test
    void averagingBIsTheAverageOfTheUpdatesForFfaLoraButNotForLora() {
        double ffa = aggregationError("ffa-lora");
        double lora = aggregationError("lora");
        // FFA-LoRA: exact up to float rounding (B's are averaged in double, then BA formed in double from float factors)
        assertTrue(ffa < 1e-5, "FFA-LoRA aggregation error " + ffa);
        // plain LoRA: mean(B) mean(A) != mean(B A); the cross terms are of the size of the updates themselves
        assertTrue(lora > 1e-2, "LoRA aggregation error " + lora);
    }

    @Test
    void aFederatedRunLowersHeldOutLossAndSavesAPeftAdapter(@TempDir Path out) throws Exception {
        CausalLM m = tiny();
        FederatedClient c = client(m, "ffa-lora", 5, LoraConfig.builder().r(8).alpha(16).dropout(0.05).targetRegex(LoraConfig.ALL_LINEAR).build());
        FederatedConfig cfg = FederatedConfig.plain(3, 5, 5, 1.0, 3e-2, 4, SEQ, 11);
        List<Dataset> shards = Shards.split(data(60, 3), cfg);
        Dataset held = data(16, 99);
        FederatedTrainer.Result res = new FederatedTrainer(cfg, c, shards, held, FederatedTrainer.inProcess(c, shards, cfg), out, QUIET).run();
        double last = res.rounds().getLast().evalLoss();
        assertTrue(last < res.baseEvalLoss() - 0.3, "held-out loss " + res.baseEvalLoss() + " -> " + last);
        for (String f : new String[] {"adapter_model.safetensors", "adapter_config.json", MethodConfig.FILE, "metrics.jsonl", "loss.png"})
            assertTrue(Files.exists(out.resolve(f)), f);
        assertEquals(1 + cfg.rounds(), Files.readAllLines(out.resolve("metrics.jsonl")).size());
        // the saved adapter, loaded onto a fresh copy of the model, has the final global B and the same A
        CausalLM fresh = tiny();
        LoraModel lm = new LoraModel(fresh, 123);
        lm.load(out, LoraModel.DEFAULT, w -> {});
        for (Map.Entry<String, LoraLayer> e : lm.layers(LoraModel.DEFAULT).entrySet()) {
            LoraLayer saved = c.adapters().layers(LoraModel.DEFAULT).get(e.getKey());
            assertArrayEquals(saved.loraB().toFloatArray(), e.getValue().loraB().toFloatArray(), e.getKey());
            assertArrayEquals(saved.loraA().toFloatArray(), e.getValue().loraA().toFloatArray(), e.getKey());
        }
        assertEquals("ffa-lora", MethodConfig.read(out.resolve(MethodConfig.FILE)).config().method());
    }

    @Test
    void clippingBoundsEveryExamplesContribution() {
        CausalLM m = tiny();
        FederatedClient c = client(m, "ffa-lora", 5);
        // move B off zero so that every example has a gradient of its own size
        Map<String, float[]> v = c.values();
        SplittableRandom r = new SplittableRandom(4);
        v.replaceAll((k, a) -> { float[] b = a.clone(); for (int i = 0; i < b.length; i++) b[i] = (float) (0.3 * r.nextGaussian()); return b; });
        c.load(v);
        Map<String, Tensor> params = c.adapters().parameters(LoraModel.DEFAULT);
        double clip = 0.05;
        DpSgd dp = new DpSgd(params, clip, 0.0);
        dp.begin();
        Dataset d = data(6, 8);
        double[] sumExpected = null;
        int clipped = 0;
        for (Example e : d.examples()) {
            try (var tape = io.peft4j.autograd.Tape.record()) {
                var b = io.peft4j.data.Batcher.allInOrder(Dataset.of(List.of(e)), 1, 0).getFirst();
                tape.backward(io.peft4j.autograd.NnOps.crossEntropy(m.forward(b.ids(), 1, b.seqLen(), null), b.labels(), Example.IGNORE));
            }
            double norm = dp.addExample();
            assertTrue(dp.lastClippedNorm() <= clip * (1 + 1e-6), "clipped norm " + dp.lastClippedNorm() + " > C " + clip);
            if (norm > clip) { clipped++; assertEquals(clip, dp.lastClippedNorm(), 1e-4 * clip); }
            else assertEquals(norm, dp.lastClippedNorm(), 1e-5 * norm);
            for (Tensor p : params.values()) if (p.grad() != null) for (float g : p.grad().data()) assertEquals(0f, g, "buffers zeroed after each example");
        }
        assertTrue(clipped > 0, "some examples exceeded C and were clipped");
        // with sigma 0 the privatised gradient is the plain mean of the clipped gradients: its norm is at most C
        dp.finish(d.size(), new SplittableRandom(1));
        double sq = 0;
        for (Tensor p : params.values()) for (float g : p.grad().data()) sq += (double) g * g;
        assertTrue(Math.sqrt(sq) <= clip * (1 + 1e-5), "mean of clipped gradients has norm " + Math.sqrt(sq));
        assertTrue(Math.sqrt(sq) > 0);
    }

    @Test
    void noiseHasStandardDeviationSigmaTimesClip() {
        Tensor big = Tensor.zeros(400, 250).requiresGrad(true);        // 100k coordinates
        double sigma = 1.3, clip = 0.7, batch = 4;
        DpSgd dp = new DpSgd(Map.of("b", big), clip, sigma);
        dp.begin();
        dp.finish(batch, new SplittableRandom(42));                   // no example: the gradient is pure noise / batch
        float[] g = big.grad().data();
        double mean = 0, sq = 0;
        for (float x : g) { mean += x; sq += (double) x * x; }
        mean /= g.length;
        double std = Math.sqrt(sq / g.length - mean * mean) * batch;   // undo the division by the expected batch
        assertEquals(sigma * clip, std, 0.01 * sigma * clip, "empirical noise std");
        assertEquals(0, mean * batch, 5 * sigma * clip / Math.sqrt(g.length), "noise mean");
    }

    static FederatedTrainer.Result dpRun(long seed, double fraction) throws Exception {
        CausalLM m = tiny();
        FederatedClient c = client(m, "ffa-lora", 5);
        FederatedConfig base = FederatedConfig.plain(4, 3, 2, fraction, 1e-2, 4, SEQ, seed);
        FederatedConfig cfg = base.withDp(1.0, 0.9, 1e-5).withSplit(FederatedConfig.Split.DIRICHLET, 0.5);
        List<Dataset> shards = Shards.split(data(48, 3), cfg);
        return new FederatedTrainer(cfg, c, shards, null, FederatedTrainer.inProcess(c, shards, cfg), null, QUIET).run();
    }

    @Test
    void theSameSeedGivesABitIdenticalRunAndAnotherSeedDoesNot() throws Exception {
        FederatedTrainer.Result a = dpRun(21, 0.5), b = dpRun(21, 0.5), other = dpRun(22, 0.5);
        boolean anyDiff = false;
        for (String k : a.global().keySet()) {
            assertArrayEquals(a.global().get(k), b.global().get(k), k);
            anyDiff |= !Arrays.equals(a.global().get(k), other.global().get(k));
        }
        assertTrue(anyDiff, "another seed gives another run");
        for (int i = 0; i < a.rounds().size(); i++) assertEquals(a.rounds().get(i).trainLoss(), b.rounds().get(i).trainLoss());
    }

    @Test
    void reportedEpsilonIsTheAccountantsForTheMostUsedClient() throws Exception {
        long seed = 21;
        FederatedTrainer.Result res = dpRun(seed, 0.5);
        FederatedConfig cfg = FederatedConfig.plain(4, 3, 2, 0.5, 1e-2, 4, SEQ, seed).withDp(1.0, 0.9, 1e-5)
                .withSplit(FederatedConfig.Split.DIRICHLET, 0.5);
        List<Dataset> shards = Shards.split(data(48, 3), cfg);
        int[] rounds = new int[4];
        for (int r = 1; r <= cfg.rounds(); r++) {
            for (int c : FederatedTrainer.sampleClients(cfg, r)) rounds[c]++;
            double expected = 0;
            for (int c = 0; c < 4; c++)
                if (rounds[c] > 0)
                    expected = Math.max(expected, RdpAccountant.epsilon(FederatedClient.samplingRate(cfg, shards.get(c).size()), 0.9,
                            (long) rounds[c] * cfg.localSteps(), 1e-5));
            assertEquals(expected, res.rounds().get(r - 1).epsilon(), 1e-12, "round " + r);
            assertEquals(2, FederatedTrainer.sampleClients(cfg, r).length, "half of 4 clients per round");
        }
        assertTrue(res.rounds().getLast().epsilon() > res.rounds().getFirst().epsilon() || rounds[0] + rounds[1] + rounds[2] + rounds[3] == 6);
    }

    @Test
    void aTargetEpsilonIsReachedButNotExceeded() {
        FederatedConfig cfg = FederatedConfig.plain(4, 5, 3, 1.0, 1e-2, 4, SEQ, 1).withTargetEpsilon(1.0, 8, 1e-5);
        List<Dataset> shards = Shards.split(data(80, 3), cfg);
        double sigma = FederatedTrainer.noiseMultiplier(cfg, shards);
        double eps = RdpAccountant.epsilon(4 / 20.0, sigma, 15, 1e-5);
        assertTrue(eps <= 8 && eps > 7.95, "sigma " + sigma + " -> epsilon " + eps);
    }

    @Test
    void shardsPartitionTheDataIidOrSkewed() {
        Dataset d = data(103, 5);
        FederatedConfig iid = cfg(4, 1, 1, 1.0);
        List<Dataset> s = Shards.split(d, iid);
        int total = 0, min = Integer.MAX_VALUE, max = 0;
        for (Dataset x : s) { total += x.size(); min = Math.min(min, x.size()); max = Math.max(max, x.size()); }
        assertEquals(103, total);
        assertTrue(max - min <= 1, "IID sizes " + min + ".." + max);
        assertEquals(s.get(2).fingerprint(), Shards.split(d, iid).get(2).fingerprint(), "deterministic");

        // Dirichlet over contiguous chunks, small alpha: each client draws most of its data from few chunks
        List<Dataset> skew = Shards.split(d, iid.withSplit(FederatedConfig.Split.DIRICHLET, 0.1));
        total = 0;
        double maxShare = 0;
        for (Dataset x : skew) {
            assertFalse(x.isEmpty());
            total += x.size();
        }
        assertEquals(103, total);
        for (Dataset x : skew) {
            int[] perChunk = new int[4];
            for (Example e : x.examples()) perChunk[d.examples().indexOf(e) * 4 / 103]++;
            maxShare = Math.max(maxShare, Arrays.stream(perChunk).max().orElse(0) / (double) x.size());
        }
        assertTrue(maxShare > 0.6, "a skewed client gets most of its data from one chunk (" + maxShare + ")");
        assertThrows(IllegalArgumentException.class, () -> Shards.split(data(3, 1), iid));
    }

    @Test
    void badSettingsAreRefusedWithTheirName() {
        var e = assertThrows(IllegalArgumentException.class, () -> FederatedConfig.plain(0, 1, 1, 1, 1e-3, 1, 8, 1));
        assertTrue(e.getMessage().contains("clients"));
        e = assertThrows(IllegalArgumentException.class, () -> FederatedConfig.plain(2, 1, 1, 1.5, 1e-3, 1, 8, 1));
        assertTrue(e.getMessage().contains("fraction"));
        e = assertThrows(IllegalArgumentException.class, () -> FederatedConfig.plain(2, 1, 1, 1, 1e-3, 1, 8, 1).withDp(0, 1, 1e-5));
        assertTrue(e.getMessage().contains("clip"));
    }

    /** stories260K on tiny Shakespeare, 2 clients x 2 rounds: the real setting loads and learns (skipped without the assets). */
    @Test
    void storiesOnShakespeareThroughTheSetup() throws Exception {
        Path model = io.peft4j.testing.Assets.require("models/stories260K/stories260K.bin");
        Path tok = io.peft4j.testing.Assets.require("models/stories260K/tok512.bin");
        Path text = io.peft4j.testing.Assets.require("datasets/tinyshakespeare/input.txt");
        FederatedConfig cfg = FederatedConfig.plain(2, 2, 5, 1.0, 5e-3, 8, 64, 1);
        FederatedSetup setup = new FederatedSetup(model.toString(), tok.toString(), text.toString(), "text", 0.1, 400, 32,
                "ffa-lora", Map.of(), 8, 16, 0, "all-linear", cfg);
        try (FederatedSetup.Loaded l = setup.load()) {
            FederatedTrainer.Result res = new FederatedTrainer(cfg, l.client(), l.shards(), l.heldOut(),
                    FederatedTrainer.inProcess(l.client(), l.shards(), cfg), null, QUIET).run();
            assertTrue(res.rounds().getLast().evalLoss() < res.baseEvalLoss(), res.baseEvalLoss() + " -> " + res.rounds().getLast().evalLoss());
        }
    }
}
