package io.peft4j.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.autograd.NnOps;
import io.peft4j.autograd.Tape;
import io.peft4j.data.Batch;
import io.peft4j.data.Batcher;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.data.Example;
import io.peft4j.generate.GenerationConfig;
import io.peft4j.generate.Generator;
import io.peft4j.models.CausalLM;
import io.peft4j.models.ModelConfig;
import io.peft4j.models.ModelWriter;
import io.peft4j.models.RandomModels;
import io.peft4j.report.LinePlot;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import io.peft4j.tokenizer.CharTokenizer;
import io.peft4j.train.AdamW;
import io.peft4j.train.Evaluator;
import io.peft4j.train.LrSchedule;
import io.peft4j.train.Trainer;
import io.peft4j.train.TrainingOptions;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * peft4j's embedded default, with nothing to download: it writes a small synthetic world (a grammar of farm
 * sentences), pretrains a tiny Llama on it from scratch (all weights trainable), then teaches it a downstream task
 * with LoRA only (the base frozen): 24 facts "what color is the NOUN?" whose answers never occur in pretraining.
 * It reports held-out loss and exact-match accuracy of greedy answers before and after, a sample generation, and
 * leaves the base model, the adapter (PEFT format), the data and the loss curves in the output folder.
 */
public final class Demo {
    /** The characters of the world's text; the tokenizer is one id per character. */
    public static final String ALPHABET = "abcdefghijklmnopqrstuvwxyz .,?:\n";

    static final String[] NOUNS = {"cat", "dog", "fox", "hen", "cow", "pig", "owl", "bee", "ant", "elk", "yak", "emu",
            "goat", "duck", "frog", "mole", "lamb", "crow", "wolf", "bear", "deer", "hare", "toad", "swan"};
    static final String[] COLORS = {"red", "blue", "green", "black", "white", "pink", "gold", "gray"};
    static final String[] ADJS = {"small", "big", "old", "young", "happy", "sleepy", "quick", "quiet"};
    static final String[] VERBS = {"sees", "likes", "follows", "helps", "meets", "finds"};
    static final String[] PLACES = {"barn", "field", "pond", "hill", "wood", "yard"};

    public record Options(Path out, long seed, int pretrainSteps, int finetuneSteps, PrintStream log) {
        public static Options defaults(Path out) { return new Options(out, 7, 400, 150, System.err); }
    }

    /** Before/after numbers of the downstream task. */
    public record Summary(double baseLoss, double baseAccuracy, double tunedLoss, double tunedAccuracy,
                          double pretrainFinalLoss, long trainableParams, long totalParams, double seconds) {}

    public static Summary run(Options o) throws IOException {
        long t0 = System.nanoTime();
        Files.createDirectories(o.out());
        PrintStream log = o.log();
        SplittableRandom rng = new SplittableRandom(o.seed());
        CharTokenizer tok = new CharTokenizer(ALPHABET);

        // 1. the world: a pretraining corpus and a fact table that the corpus never states
        Path dataDir = o.out().resolve("data");
        Files.createDirectories(dataDir);
        Files.writeString(dataDir.resolve("pretrain.txt"), corpus(rng, 6000));
        Map<String, String> facts = new LinkedHashMap<>();
        for (String n : NOUNS) facts.put(n, COLORS[rng.nextInt(COLORS.length)]);
        StringBuilder train = new StringBuilder(), eval = new StringBuilder();
        for (Map.Entry<String, String> f : facts.entrySet()) {
            String answer = " the " + f.getKey() + " is " + f.getValue() + ".";
            train.append(row(question(f.getKey()), answer)).append(row("q: tell me the color of the " + f.getKey() + ". a:", answer));
            eval.append(row(question(f.getKey()), answer));
        }
        Files.writeString(dataDir.resolve("facts_train.jsonl"), train);
        Files.writeString(dataDir.resolve("facts_eval.jsonl"), eval);
        log.printf(Locale.ROOT, "demo: wrote a synthetic corpus and %d facts to %s%n", facts.size(), dataDir);

        // 2. pretrain a tiny Llama from scratch on the corpus (every weight trainable)
        CausalLM model = RandomModels.causalLM(tinyConfig(tok.vocabSize()), DType.F32, o.seed());
        Dataset corpus = DataLoader.load(dataDir.resolve("pretrain.txt"), DataConfig.builder(DataFormat.TEXT, 64).build(), tok);
        double pretrainLoss = pretrain(model, corpus, o, log);
        ModelWriter.write(model, o.out().resolve("base"));

        // 3. the downstream task, before
        DataConfig factCfg = DataConfig.builder(DataFormat.COMPLETION, 64).optPromptTemplate("{prompt}").build();
        Dataset factTrain = DataLoader.load(dataDir.resolve("facts_train.jsonl"), factCfg, tok);
        Dataset factEval = DataLoader.load(dataDir.resolve("facts_eval.jsonl"), factCfg, tok);
        Evaluator.Result before = Evaluator.evaluate(model, factEval, 8, CharTokenizer.PAD, 0);
        double accBefore = exactMatch(model, tok, facts);
        log.printf(Locale.ROOT, "before LoRA: fact loss %.4f, exact-match accuracy %.1f%%%n", before.loss(), 100 * accBefore);
        String sampleBefore = answer(model, tok, question("fox"));

        // 4. LoRA fine-tuning: base frozen, adapters on every linear layer but the head
        LoraModel lm = new LoraModel(model, o.seed());
        lm.add("default", LoraConfig.builder().r(8).alpha(16).dropout(0.0).targetRegex(LoraConfig.ALL_LINEAR).inferenceMode(false).build());
        long trainable = lm.trainableCount("default");
        long total = model.parameters().values().stream().mapToLong(Tensor::numel).sum();
        log.printf(Locale.ROOT, "LoRA r=8 on %d layers: %,d trainable parameters (%.1f%% of %,d)%n",
                lm.layers("default").size(), trainable, 100.0 * trainable / total, total);
        Batcher batcher = new Batcher(factTrain, Batcher.Options.training(8, o.seed(), CharTokenizer.PAD));
        TrainingOptions opt = TrainingOptions.defaults(o.finetuneSteps()).withLr(1e-2).withEval(Math.max(1, o.finetuneSteps() / 5), 0)
                .withSchedule(LrSchedule.COSINE, o.finetuneSteps() / 10).withLogEvery(10);
        Path adapterDir = o.out().resolve("adapter");
        new Trainer(model, lm, "default", batcher, factEval, 8, CharTokenizer.PAD, opt, adapterDir, log).run();

        // 5. after
        Evaluator.Result after = Evaluator.evaluate(model, factEval, 8, CharTokenizer.PAD, 0);
        double accAfter = exactMatch(model, tok, facts);
        String sampleAfter = answer(model, tok, question("fox"));
        Summary s = new Summary(before.loss(), accBefore, after.loss(), accAfter, pretrainLoss, trainable, total, (System.nanoTime() - t0) / 1e9);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("summary", s);
        json.put("sample_question", question("fox"));
        json.put("sample_before", sampleBefore);
        json.put("sample_after", sampleAfter);
        json.put("expected", " the fox is " + facts.get("fox") + ".");
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(o.out().resolve("summary.json").toFile(), json);

        PrintStream out = System.out;
        out.printf(Locale.ROOT, "%n                     fact loss   exact-match accuracy%n");
        out.printf(Locale.ROOT, "base (pretrained)    %9.4f   %6.1f%%%n", s.baseLoss(), 100 * s.baseAccuracy());
        out.printf(Locale.ROOT, "base + LoRA          %9.4f   %6.1f%%%n", s.tunedLoss(), 100 * s.tunedAccuracy());
        out.printf(Locale.ROOT, "%nsample: %s%n  before:%s%n  after: %s%n", question("fox"), sampleBefore, sampleAfter);
        out.printf(Locale.ROOT, "%nbase model in %s, adapter and loss curve in %s (%.0f s)%n", o.out().resolve("base"), adapterDir, s.seconds());
        return s;
    }

    static String question(String noun) { return "q: what color is the " + noun + "? a:"; }

    private static String row(String prompt, String completion) {
        return "{\"prompt\": \"" + prompt + "\", \"completion\": \"" + completion + "\"}\n";
    }

    /** Sentences of the grammar; colors appear with random nouns, never as the fact table pairs them. */
    static String corpus(SplittableRandom rng, int sentences) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < sentences; i++) {
            String a = pick(rng, NOUNS), b = pick(rng, NOUNS);
            switch (rng.nextInt(5)) {
                case 0 -> sb.append("the ").append(pick(rng, ADJS)).append(' ').append(a).append(' ').append(pick(rng, VERBS)).append(" the ").append(b).append('.');
                case 1 -> sb.append("the ").append(a).append(" is in the ").append(pick(rng, PLACES)).append('.');
                case 2 -> sb.append("q: where is the ").append(a).append("? a: the ").append(a).append(" is in the ").append(pick(rng, PLACES)).append('.');
                case 3 -> sb.append("a ").append(pick(rng, COLORS)).append(' ').append(a).append(' ').append(pick(rng, VERBS)).append(" a ").append(pick(rng, ADJS)).append(' ').append(b).append('.');
                default -> sb.append("q: is the ").append(a).append(' ').append(pick(rng, ADJS)).append("? a: yes, the ").append(a).append(" is ").append(pick(rng, ADJS)).append('.');
            }
            sb.append(rng.nextInt(4) == 0 ? "\n" : " ");
        }
        return sb.toString();
    }

    private static String pick(SplittableRandom rng, String[] words) { return words[rng.nextInt(words.length)]; }

    static ModelConfig tinyConfig(int vocab) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of("LlamaForCausalLM"));
        m.put("model_type", "llama");
        m.put("vocab_size", vocab);
        m.put("hidden_size", 96);
        m.put("intermediate_size", 256);
        m.put("num_hidden_layers", 4);
        m.put("num_attention_heads", 6);
        m.put("num_key_value_heads", 2);
        m.put("max_position_embeddings", 128);
        m.put("rms_norm_eps", 1e-5);
        m.put("rope_theta", 10000.0);
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", false);
        m.put("bos_token_id", CharTokenizer.BOS);
        m.put("eos_token_id", CharTokenizer.EOS);
        m.put("torch_dtype", "float32");
        return ModelConfig.fromMap(m, "peft4j demo");
    }

    /** Full-parameter pretraining (AdamW, cosine schedule); returns the mean loss of the last 20 steps. */
    private static double pretrain(CausalLM model, Dataset corpus, Options o, PrintStream log) throws IOException {
        Map<String, Tensor> params = model.parameters();
        for (Tensor p : params.values()) p.requiresGrad(true);
        AdamW opt = AdamW.withDefaults(params, 0.01);
        Batcher b = new Batcher(corpus, Batcher.Options.training(16, o.seed(), CharTokenizer.PAD));
        List<double[]> curve = new ArrayList<>();
        double recent = 0;
        long t0 = System.nanoTime(), tokens = 0;
        int steps = o.pretrainSteps();
        for (int step = 0; step < steps; step++) {
            Batch batch = b.next();
            opt.zeroGrad();
            float loss;
            try (Tape tape = Tape.record()) {
                Tensor l = NnOps.crossEntropy(model.forward(batch.ids(), batch.batch(), batch.seqLen(), null), batch.labels(), Example.IGNORE);
                loss = l.getFlat(0);
                tape.backward(l);
            }
            opt.clipGradNorm(1.0);
            opt.step(3e-3 * LrSchedule.COSINE.factor(step, steps / 20, steps));
            tokens += batch.tokenCount();
            curve.add(new double[] {step + 1, loss});
            if (step >= steps - 20) recent += loss / Math.min(20, steps);
            if ((step + 1) % 20 == 0 || step + 1 == steps) {
                double sec = (System.nanoTime() - t0) / 1e9;
                log.printf(Locale.ROOT, "pretrain step %d/%d | loss %.4f | %.0f tok/s | ETA %.0fs%n", step + 1, steps, loss,
                        tokens / sec, sec / (step + 1) * (steps - step - 1));
            }
        }
        for (Tensor p : params.values()) { p.clearGrad(); p.requiresGrad(false); }
        LinePlot plot = new LinePlot("demo pretraining loss", "step", "loss");
        double[] x = new double[curve.size()], y = new double[curve.size()];
        for (int i = 0; i < x.length; i++) { x[i] = curve.get(i)[0]; y[i] = curve.get(i)[1]; }
        plot.add("train", x, y).writePng(o.out().resolve("pretrain_loss.png"), 800, 480);
        return recent;
    }

    /** Fraction of facts whose greedy answer is exactly " the NOUN is COLOR" (generation stops before the period). */
    static double exactMatch(CausalLM model, CharTokenizer tok, Map<String, String> facts) {
        int hits = 0;
        for (Map.Entry<String, String> f : facts.entrySet())
            if (answer(model, tok, question(f.getKey())).equals(" the " + f.getKey() + " is " + f.getValue()))
                hits++;
        return (double) hits / facts.size();
    }

    static String answer(CausalLM model, CharTokenizer tok, String prompt) {
        GenerationConfig g = GenerationConfig.greedy().withMaxNewTokens(24).withStopStrings(List.of("."));
        return new Generator(model, tok).generate(prompt, g, piece -> {}).text();
    }
}
