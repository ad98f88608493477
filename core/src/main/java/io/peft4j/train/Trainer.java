package io.peft4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.autograd.TensorOps;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.models.CausalLM;
import io.peft4j.report.LinePlot;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Fine-tunes one adapter of a causal LM: AdamW, a warm-up schedule, gradient clipping and accumulation, periodic
 * evaluation, early stopping, and checkpoints that resume exactly (adapter values, optimizer moments, dropout seed
 * stream, data position, step). Writes {@code metrics.jsonl}, {@code loss.png} and {@code checkpoints/} under the
 * output folder; the final adapter is saved there in PEFT's format.
 */
public final class Trainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final CausalLM model;
    private final LoraModel adapters;
    private final String adapter;
    private final Batcher train;
    private final Dataset eval;            // may be null
    private final int evalBatchSize;
    private final int padId;
    private final TrainingOptions opt;
    private final Path out;
    private final PrintStream log;

    private final AdamW optimizer;
    private io.peft4j.models.SequenceClassifier classifier;     // null for causal-LM training
    private Objective objective;                                // null: the default cross-entropy
    private final List<StepHook> beforeUpdate = new ArrayList<>(), afterUpdate = new ArrayList<>();
    private final List<double[]> trainCurve = new ArrayList<>();   // {step, loss}
    private final List<double[]> evalCurve = new ArrayList<>();    // {step, eval loss}
    private int step;
    private double bestEval = Double.POSITIVE_INFINITY;
    private int evalsWithoutImprovement;
    private double tokensPerSecond;
    private double evalSeconds;            // evaluation time of this run, left out of tokens/s

    /** The outcome: steps done, last training loss, last eval (or null), whether early stopping ended it. */
    public record Result(int steps, double lastLoss, Evaluator.Result lastEval, boolean stoppedEarly, double seconds) {}

    public Trainer(CausalLM model, LoraModel adapters, String adapter, Batcher train, Dataset eval, int evalBatchSize,
                   int padId, TrainingOptions opt, Path out, PrintStream log) {
        this.model = model;
        this.adapters = adapters;
        this.adapter = adapter;
        this.train = train;
        this.eval = eval;
        this.evalBatchSize = evalBatchSize;
        this.padId = padId;
        this.opt = opt;
        this.out = out;
        this.log = log;
        this.optimizer = new AdamW(adapters.parameters(adapter), 0.9, 0.999, 1e-8, opt.weightDecay());
    }

    public int step() { return step; }

    /** {step, eval loss} for every evaluation so far (step 0 is the base). */
    public List<double[]> evalCurve() { return List.copyOf(evalCurve); }

    /** {step, training loss} for every step so far. */
    public List<double[]> trainCurve() { return List.copyOf(trainCurve); }

    /** Training tokens per second of the last {@link #run}. */
    public double tokensPerSecond() { return tokensPerSecond; }

    /** Something run at a fixed point of every optimizer step {@code step} (0-based) at learning rate {@code lr}. */
    @FunctionalInterface
    public interface StepHook { void apply(int step, double lr); }

    /**
     * Adds a gradient transform run after the backward pass of every step, before clipping and the update (an
     * optimiser option such as ALLoRA's norm-adaptive gradient scaling applied to any adapter method).
     */
    public Trainer withBeforeUpdate(StepHook h) { beforeUpdate.add(h); return this; }

    /** Adds a step run after every optimizer update (e.g. SoRA's proximal step on any gated adapter). */
    public Trainer withAfterUpdate(StepHook h) { afterUpdate.add(h); return this; }

    /**
     * A training loss computed in place of the default cross-entropy, one micro-batch at a time, while the tape
     * records: e.g. a forgetting objective that draws its own second batch ({@code io.peft4j.unlearn}).
     */
    public interface Objective {
        /** The scalar loss to minimise for this micro-batch of the training data. */
        Tensor loss(Batch batch);

        /** Figures of the last {@link #loss} call (its parts), written under "objective" in metrics.jsonl. */
        default Map<String, Double> report() { return Map.of(); }
    }

    /** Replaces the per-batch loss (the adapters' auxiliary loss is still added). */
    public Trainer withObjective(Objective o) { this.objective = o; return this; }

    /** Trains (and evaluates) a sequence classifier on class labels instead of next-token targets. */
    public Trainer withClassifier(io.peft4j.models.SequenceClassifier c) { this.classifier = c; return this; }

    public Result run() throws IOException { return run(Integer.MAX_VALUE); }

    /**
     * Trains until {@code opt.steps()}, or stops (checkpointed, as if interrupted) once {@code stopAtStep} steps are
     * done; the schedule always spans {@code opt.steps()}.
     */
    public Result run(int stopAtStep) throws IOException {
        Files.createDirectories(out);
        if (opt.resume()) resumeFromLatest();
        else Files.deleteIfExists(out.resolve("metrics.jsonl"));
        long t0 = System.nanoTime();
        long tokensSeen = 0;
        double lastLoss = Double.NaN;
        Evaluator.Result lastEval = null;
        boolean stoppedEarly = false;
        int startStep = step;
        if (step == 0 && eval != null) {
            lastEval = evaluate();           // the starting point of the eval curve
            bestEval = lastEval.loss();
        }
        adapters.train(true);
        while (step < opt.steps()) {
            double lr = opt.lr() * opt.schedule().factor(step, opt.warmupSteps(), opt.steps());
            adapters.beforeStep(adapter, step);
            optimizer.zeroGrad();
            double stepLoss = 0;
            int stepTokens = 0;
            for (int micro = 0; micro < opt.gradAccum(); micro++) {
                Batch b = train.next();
                adapters.runtime().tokenTags(b.tags());                  // per-token modality (MM-LoRA); null when the data has none
                try (Tape tape = Tape.record()) {
                    Tensor loss = objective != null ? objective.loss(b)
                            : classifier != null
                            ? NnOps.crossEntropy(classifier.logits(b.ids(), b.batch(), b.seqLen(), b.lengths()), b.classLabels(), Example.IGNORE)
                            : NnOps.crossEntropy(model.forward(b.ids(), b.batch(), b.seqLen(), null), b.labels(), Example.IGNORE);
                    stepLoss += loss.getFlat(0) / opt.gradAccum();
                    Tensor aux = adapters.auxiliaryLoss(adapter);        // e.g. a router's load balancing; trained, not reported as the loss
                    if (aux != null) loss = TensorOps.add(loss, aux);
                    tape.backward(opt.gradAccum() == 1 ? loss : TensorOps.scale(loss, 1f / opt.gradAccum()));
                } finally {
                    adapters.runtime().tokenTags(null);
                }
                stepTokens += b.tokenCount();
            }
            adapters.beforeUpdate(adapter, step);
            for (StepHook h : beforeUpdate) h.apply(step, lr);
            double gradNorm = opt.maxGradNorm() > 0 ? optimizer.clipGradNorm(opt.maxGradNorm()) : optimizer.gradNorm();
            optimizer.step(lr);
            adapters.afterStep(adapter, step, lr);
            for (StepHook h : afterUpdate) h.apply(step, lr);
            step++;
            tokensSeen += stepTokens;
            lastLoss = stepLoss;
            trainCurve.add(new double[] {step, stepLoss});
            double seconds = (System.nanoTime() - t0) / 1e9;
            double tps = tokensSeen / Math.max(1e-9, seconds - evalSeconds);
            tokensPerSecond = tps;
            ObjectNode row = JSON.createObjectNode().put("step", step).put("loss", stepLoss).put("lr", lr)
                    .put("grad_norm", gradNorm).put("tokens_per_s", tps).put("elapsed_s", seconds);
            Map<String, Double> figures = adapters.report(adapter);      // the method's own (ranks, group norms, ...)
            if (!figures.isEmpty()) {
                ObjectNode mo = row.putObject("method");
                figures.forEach(mo::put);
            }
            if (objective != null && !objective.report().isEmpty()) {
                ObjectNode oo = row.putObject("objective");
                objective.report().forEach(oo::put);
            }
            appendMetrics(row);
            if (step % Math.max(1, opt.logEvery()) == 0 || step == opt.steps())
                progress(step, stepLoss, lr, tps, seconds / (step - startStep) * (opt.steps() - step));

            boolean evalNow = eval != null && ((opt.evalEvery() > 0 && step % opt.evalEvery() == 0) || step == opt.steps());
            if (evalNow) {
                lastEval = evaluate();
                if (lastEval.loss() < bestEval - 1e-6) { bestEval = lastEval.loss(); evalsWithoutImprovement = 0; }
                else evalsWithoutImprovement++;
                if (opt.patience() > 0 && evalsWithoutImprovement >= opt.patience()) {
                    log.printf(Locale.ROOT, "%nearly stopping at step %d: eval loss has not improved for %d evaluations%n", step, evalsWithoutImprovement);
                    stoppedEarly = true;
                }
            }
            boolean interrupted = step >= stopAtStep;
            if ((opt.saveEvery() > 0 && step % opt.saveEvery() == 0) || step == opt.steps() || stoppedEarly || interrupted) checkpoint();
            if (stoppedEarly || interrupted) break;
        }
        adapters.train(false);
        log.println();
        adapters.save(out, adapter);
        writePlot();
        return new Result(step, lastLoss, lastEval, stoppedEarly, (System.nanoTime() - t0) / 1e9);
    }

    /** Evaluates with dropout off and records the result in metrics.jsonl. */
    public Evaluator.Result evaluate() throws IOException {
        boolean was = adapters.runtime().training();
        long e0 = System.nanoTime();
        adapters.train(false);
        Evaluator.Result r = classifier != null
                ? Evaluator.evaluateClassification(classifier, eval, evalBatchSize, padId, opt.maxEvalBatches(), adapters.runtime())
                : Evaluator.evaluate(model, eval, evalBatchSize, padId, opt.maxEvalBatches(), adapters.runtime());
        adapters.train(was);
        evalSeconds += (System.nanoTime() - e0) / 1e9;
        evalCurve.add(new double[] {step, r.loss()});
        appendMetrics(JSON.createObjectNode().put("step", step).put("eval_loss", r.loss())
                .put("eval_perplexity", r.perplexity()).put("eval_accuracy", r.accuracy()));
        log.printf(Locale.ROOT, "%n  eval @ step %d: loss %.4f, perplexity %.3f, %s accuracy %.3f%n", step, r.loss(), r.perplexity(),
                classifier != null ? "classification" : "token", r.accuracy());
        return r;
    }

    private void progress(int s, double loss, double lr, double tps, double etaSeconds) {
        String line = String.format(Locale.ROOT, "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | ETA %s",
                s, opt.steps(), loss, lr, tps, formatDuration(etaSeconds));
        if (System.console() != null) log.print("\r" + line + "   ");
        else log.println(line);
        log.flush();
    }

    static String formatDuration(double seconds) {
        long s = Math.round(Math.max(0, seconds));
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, (s % 3600) / 60) : s >= 60 ? String.format("%dm%02ds", s / 60, s % 60) : s + "s";
    }

    private void appendMetrics(ObjectNode row) throws IOException {
        Files.writeString(out.resolve("metrics.jsonl"), row.toString() + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    private void writePlot() throws IOException {
        LinePlot plot = new LinePlot("training loss", "step", "loss");
        plot.add("train", column(trainCurve, 0), column(trainCurve, 1));
        if (!evalCurve.isEmpty()) plot.add("eval", column(evalCurve, 0), column(evalCurve, 1));
        plot.writePng(out.resolve("loss.png"), 800, 480);
    }

    private static double[] column(List<double[]> rows, int c) {
        double[] v = new double[rows.size()];
        for (int i = 0; i < v.length; i++) v[i] = rows.get(i)[c];
        return v;
    }

    // ------------------------------------------------------------------------------------------------ checkpoints

    /** Writes checkpoints/step-NNNNNN/ (adapter, optimizer moments, trainer state) atomically: temp folder, then rename. */
    public void checkpoint() throws IOException {
        Path root = out.resolve("checkpoints");
        Files.createDirectories(root);
        Path dir = root.resolve(String.format("step-%06d", step));
        Path tmp = Files.createTempDirectory(root, ".tmp-step-");
        try {
            Safetensors.write(tmp.resolve("adapter_model.safetensors"), adapters.savedTensors(adapter), Map.of("format", "pt"));
            Files.writeString(tmp.resolve("adapter_config.json"), adapters.config(adapter).toJsonString() + "\n");
            Safetensors.write(tmp.resolve("optimizer.safetensors"), optimizer.state(), Map.of("step", Long.toString(optimizer.stepCount())));
            ObjectNode state = JSON.createObjectNode();
            state.put("step", step);
            state.put("data_position", train.position().encode());
            state.put("dropout_seed", adapters.runtime().seed());
            state.put("dropout_calls", adapters.runtime().calls());
            state.put("best_eval_loss", bestEval);
            ObjectNode ms = state.putObject("method_state");                 // per-module rank limits, ... (method adapters)
            adapters.methodState(adapter).forEach(ms::put);
            state.put("evals_without_improvement", evalsWithoutImprovement);
            var curve = state.putArray("train_curve");
            for (double[] p : trainCurve) curve.addArray().add(p[0]).add(p[1]);
            var ecurve = state.putArray("eval_curve");
            for (double[] p : evalCurve) ecurve.addArray().add(p[0]).add(p[1]);
            Files.writeString(tmp.resolve("trainer_state.json"), state.toPrettyString() + "\n");
            if (Files.exists(dir)) deleteTree(dir);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            if (Files.exists(tmp)) deleteTree(tmp);
        }
    }

    /** The newest complete checkpoint folder under {@code out}, or null. */
    public static Path latestCheckpoint(Path out) throws IOException {
        Path root = out.resolve("checkpoints");
        if (!Files.isDirectory(root)) return null;
        try (Stream<Path> s = Files.list(root)) {
            return s.filter(p -> p.getFileName().toString().startsWith("step-") && Files.exists(p.resolve("trainer_state.json")))
                    .max(Comparator.comparing(p -> p.getFileName().toString())).orElse(null);
        }
    }

    private void resumeFromLatest() throws IOException {
        Path dir = latestCheckpoint(out);
        if (dir == null) {
            log.println("no checkpoint under " + out.resolve("checkpoints") + ": starting from step 0");
            Files.deleteIfExists(out.resolve("metrics.jsonl"));
            return;
        }
        JsonNode state = JSON.readTree(dir.resolve("trainer_state.json").toFile());
        step = state.get("step").asInt();
        Map<String, String> methodState = new LinkedHashMap<>();
        for (var it = state.path("method_state").fields(); it.hasNext(); ) {
            var e = it.next();
            methodState.put(e.getKey(), e.getValue().asText());
        }
        adapters.restoreMethodState(adapter, methodState);
        adapters.restoreValues(adapter, dir.resolve("adapter_model.safetensors"));
        try (SafetensorsFile f = Safetensors.open(dir.resolve("optimizer.safetensors"))) {
            Map<String, Tensor> st = new LinkedHashMap<>();
            for (String k : f.names()) st.put(k, f.get(k).copyToF32());
            optimizer.load(st, Long.parseLong(f.metadata().get("step")));
        }
        train.seek(Batcher.Position.parse(state.get("data_position").asText()));
        adapters.runtime().reseed(state.get("dropout_seed").asLong(), state.get("dropout_calls").asLong());
        bestEval = state.get("best_eval_loss").asDouble();
        evalsWithoutImprovement = state.get("evals_without_improvement").asInt();
        for (JsonNode p : state.get("train_curve")) trainCurve.add(new double[] {p.get(0).asDouble(), p.get(1).asDouble()});
        for (JsonNode p : state.get("eval_curve")) evalCurve.add(new double[] {p.get(0).asDouble(), p.get(1).asDouble()});
        truncateMetrics(step);
        log.println("resumed from " + dir + " at step " + step);
    }

    /** Drops metrics rows written after the checkpoint, so a resumed run continues one clean curve. */
    private void truncateMetrics(int upToStep) throws IOException {
        Path f = out.resolve("metrics.jsonl");
        if (!Files.exists(f)) return;
        List<String> keep = new ArrayList<>();
        for (String line : Files.readAllLines(f)) {
            if (line.isBlank()) continue;
            if (JSON.readTree(line).path("step").asInt() <= upToStep) keep.add(line);
        }
        Files.write(f, keep);
    }

    private static void deleteTree(Path p) throws IOException {
        try (Stream<Path> s = Files.walk(p)) {
            for (Path x : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(x);
        }
    }
}
