package io.peft4j.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.adapters.Calibration;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.adapters.MethodConfig;
import io.peft4j.adapters.Methods;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.report.LinePlot;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The same data, steps and budget for several adapter methods over several seeds: held-out loss at fixed steps,
 * trainable parameters, peak heap, tokens/s, and initialisation time, as mean and spread over seeds. Writes
 * {@code comparison.md}, {@code comparison.json} and {@code comparison.png} (mean held-out loss curves), and each
 * run's adapter and metrics under {@code runs/<method>-seed<S>/}.
 */
public final class Comparison {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** Loads a fresh base model for each run (methods such as LoRA-GA rewrite base weights). */
    @FunctionalInterface
    public interface ModelFactory { CausalLM load() throws IOException; }

    /**
     * @param methods   the methods with their options, in table order
     * @param lora      rank, alpha, targets and dropout shared by every method
     * @param training  steps, learning rate, schedule, evaluation interval (the seed is replaced per run)
     * @param batchSize micro-batch size for training and evaluation
     * @param seeds     one run per seed and method
     */
    public record Spec(List<MethodConfig> methods, LoraConfig lora, TrainingOptions training, int batchSize, List<Long> seeds, int padId) {}

    /** One training run. {@code evalCurve} holds {step, held-out loss}, starting with the base at step 0. */
    public record Run(String method, long seed, long trainable, List<double[]> evalCurve, double tokensPerSecond,
                      long peakHeapBytes, double initSeconds, double trainSeconds) {
        double finalLoss() { return evalCurve.getLast()[1]; }
    }

    private Comparison() {}

    public static List<Run> run(ModelFactory models, Dataset train, Dataset eval, Spec spec, Path out, PrintStream log) throws IOException {
        if (eval == null || eval.isEmpty()) throw new IllegalArgumentException("compare needs held-out data (an eval split)");
        warmUp(models, train, spec, out.resolve("runs").resolve("warm-up"), log);
        List<Run> runs = new ArrayList<>();
        int total = spec.methods().size() * spec.seeds().size(), done = 0;
        for (MethodConfig mc : spec.methods()) {
            for (long seed : spec.seeds()) {
                log.printf(Locale.ROOT, "%n=== compare run %d/%d: %s, seed %d ===%n", ++done, total, mc.method(), seed);
                runs.add(runOne(models, train, eval, spec, mc, seed, out.resolve("runs").resolve(mc.method() + "-seed" + seed), log));
            }
        }
        write(runs, spec, out);
        return runs;
    }

    private static Run runOne(ModelFactory models, Dataset train, Dataset eval, Spec spec, MethodConfig mc, long seed, Path dir, PrintStream log) throws IOException {
        System.gc();
        resetPeaks();
        try (CausalLM model = models.load()) {
            LoraModel lm = new LoraModel(model, seed);
            long t0 = System.nanoTime();
            Calibration cal = Methods.get(mc.method()).needsCalibration()
                    ? CalibrationBatches.from(model, null, train, spec.batchSize(), seed, spec.padId()) : null;
            lm.add(LoraModel.DEFAULT, spec.lora(), mc, cal, log);
            double initSeconds = (System.nanoTime() - t0) / 1e9;
            TrainingOptions opt = spec.training();
            opt = new TrainingOptions(opt.steps(), opt.gradAccum(), opt.lr(), opt.weightDecay(), opt.schedule(), opt.warmupSteps(),
                    opt.maxGradNorm(), opt.evalEvery(), 0, opt.logEvery(), 0, opt.maxEvalBatches(), seed, false);
            Batcher batcher = new Batcher(train, Batcher.Options.training(spec.batchSize(), seed, spec.padId()));
            Trainer trainer = new Trainer(model, lm, LoraModel.DEFAULT, batcher, eval, spec.batchSize(), spec.padId(), opt, dir, log);
            Trainer.Result res = trainer.run();
            return new Run(mc.method(), seed, lm.trainableCount(LoraModel.DEFAULT), trainer.evalCurve(), trainer.tokensPerSecond(),
                    peakHeap(), initSeconds, res.seconds());
        }
    }

    /**
     * A few untimed plain-LoRA steps first, so the JIT has compiled the kernels before the first measured run (else
     * the first method's tokens/s carries the warm-up).
     */
    private static void warmUp(ModelFactory models, Dataset train, Spec spec, Path dir, PrintStream log) throws IOException {
        try (CausalLM model = models.load()) {
            LoraModel lm = new LoraModel(model, 0);
            lm.add(LoraModel.DEFAULT, spec.lora());
            TrainingOptions opt = TrainingOptions.defaults(Math.min(5, spec.training().steps())).withLogEvery(1000);
            Batcher batcher = new Batcher(train, Batcher.Options.training(spec.batchSize(), 0, spec.padId()));
            log.println("warming up the JIT (" + opt.steps() + " untimed steps)");
            new Trainer(model, lm, LoraModel.DEFAULT, batcher, null, spec.batchSize(), spec.padId(), opt, dir,
                    new PrintStream(java.io.OutputStream.nullOutputStream())).run();
        }
    }

    private static void resetPeaks() {
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) if (p.getType() == MemoryType.HEAP) p.resetPeakUsage();
    }

    /** Sum of the heap pools' peaks since the last reset (an upper bound on the peak heap in use). */
    private static long peakHeap() {
        long s = 0;
        for (MemoryPoolMXBean p : ManagementFactory.getMemoryPoolMXBeans()) if (p.getType() == MemoryType.HEAP) s += p.getPeakUsage().getUsed();
        return s;
    }

    /** Mean and sample standard deviation. */
    static double[] meanStd(double[] v) {
        double m = 0;
        for (double x : v) m += x;
        m /= v.length;
        double s = 0;
        for (double x : v) s += (x - m) * (x - m);
        return new double[] {m, v.length > 1 ? Math.sqrt(s / (v.length - 1)) : 0};
    }

    private static void write(List<Run> runs, Spec spec, Path out) throws IOException {
        Files.createDirectories(out);
        Map<String, List<Run>> byMethod = new LinkedHashMap<>();
        for (Run r : runs) byMethod.computeIfAbsent(r.method(), k -> new ArrayList<>()).add(r);
        double[] steps = runs.getFirst().evalCurve().stream().mapToDouble(p -> p[0]).toArray();

        StringBuilder md = new StringBuilder();
        md.append(String.format(Locale.ROOT, "Held-out loss (mean ± std over %d seeds), rank %d, %d steps, lr %.1e, batch %d.%n%n",
                spec.seeds().size(), spec.lora().r(), spec.training().steps(), spec.training().lr(), spec.batchSize()));
        md.append("| method | trainable |");
        for (double s : steps) md.append(String.format(Locale.ROOT, " loss @%d |", (int) s));
        md.append(" tokens/s | peak heap MB | init s |\n|---|---:|");
        md.append("---:|".repeat(steps.length)).append("---:|---:|---:|\n");

        ObjectNode root = JSON.createObjectNode();
        root.put("steps", spec.training().steps()).put("rank", spec.lora().r()).put("lr", spec.training().lr()).put("batch", spec.batchSize());
        ArrayNode seeds = root.putArray("seeds");
        spec.seeds().forEach(seeds::add);
        ArrayNode methods = root.putArray("methods");
        LinePlot plot = new LinePlot("held-out loss (mean over seeds)", "step", "loss");
        for (Map.Entry<String, List<Run>> e : byMethod.entrySet()) {
            List<Run> rs = e.getValue();
            ObjectNode mo = methods.addObject();
            mo.put("method", e.getKey());
            mo.put("trainable", rs.getFirst().trainable());
            md.append("| ").append(e.getKey()).append(" | ").append(String.format(Locale.ROOT, "%,d", rs.getFirst().trainable())).append(" |");
            ArrayNode curve = mo.putArray("eval_loss");
            double[] means = new double[steps.length];
            for (int i = 0; i < steps.length; i++) {
                final int k = i;
                double[] ms = meanStd(rs.stream().mapToDouble(r -> r.evalCurve().size() > k ? r.evalCurve().get(k)[1] : Double.NaN).toArray());
                means[i] = ms[0];
                curve.addObject().put("step", (int) steps[i]).put("mean", ms[0]).put("std", ms[1]);
                md.append(String.format(Locale.ROOT, " %.4f ± %.4f |", ms[0], ms[1]));
            }
            double[] tps = meanStd(rs.stream().mapToDouble(Run::tokensPerSecond).toArray());
            double[] heap = meanStd(rs.stream().mapToDouble(r -> r.peakHeapBytes() / 1e6).toArray());
            double[] init = meanStd(rs.stream().mapToDouble(Run::initSeconds).toArray());
            mo.put("tokens_per_s", tps[0]).put("tokens_per_s_std", tps[1]).put("peak_heap_mb", heap[0]).put("init_seconds", init[0]);
            ArrayNode per = mo.putArray("runs");
            for (Run r : rs) per.addObject().put("seed", r.seed()).put("final_eval_loss", r.finalLoss())
                    .put("tokens_per_s", r.tokensPerSecond()).put("train_seconds", r.trainSeconds());
            md.append(String.format(Locale.ROOT, " %.0f ± %.0f | %.0f | %.2f |%n", tps[0], tps[1], heap[0], init[0]));
            plot.add(e.getKey(), steps, means);
        }
        Files.writeString(out.resolve("comparison.md"), md.toString());
        Files.writeString(out.resolve("comparison.json"), JSON.writeValueAsString(root) + "\n");
        plot.writePng(out.resolve("comparison.png"), 900, 540);
    }
}
