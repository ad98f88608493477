package io.peft4j.train;

import io.peft4j.adapters.LoraConfig;
import io.peft4j.adapters.LoraModel;
import io.peft4j.data.Batcher;
import io.peft4j.data.DataConfig;
import io.peft4j.data.DataFormat;
import io.peft4j.data.DataLoader;
import io.peft4j.data.Dataset;
import io.peft4j.models.CausalLM;
import io.peft4j.models.Models;
import io.peft4j.testing.Assets;
import io.peft4j.tokenizer.Tokenizer;
import io.peft4j.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** The small real setting: LoRA on the pretrained stories260K, adapted to tiny Shakespeare (last 10% held out). */
class StoriesShakespeareLoraTest {
    @Test
    void loraLowersHeldOutLossWellBelowTheBase(@TempDir Path out) throws Exception {
        Path model = Assets.require("models/stories260K/stories260K.bin");
        Path tokFile = Assets.require("models/stories260K/tok512.bin");
        Path text = Assets.require("datasets/tinyshakespeare/input.txt");
        try (CausalLM m = Models.loadCausalLM(model); Tokenizer tok = Tokenizers.load(tokFile)) {
            Dataset.Split split = DataLoader.loadSplit(text, null, 0.1, DataConfig.builder(DataFormat.TEXT, 64).build(), tok);
            // a fixed slice of the held-out 10% keeps the test fast; it is the same slice before and after
            Dataset heldOut = split.eval().slice(0, 64);
            double base = Evaluator.evaluate(m, heldOut, 16, 0, 0).loss();
            LoraModel lm = new LoraModel(m, 1);
            lm.add("default", LoraConfig.builder().r(8).alpha(16).dropout(0.05).targetRegex(LoraConfig.ALL_LINEAR).build());
            TrainingOptions opt = TrainingOptions.defaults(40).withLr(5e-3).withSchedule(LrSchedule.COSINE, 4);
            new Trainer(m, lm, "default", new Batcher(split.train(), Batcher.Options.training(8, 1, 0)), null, 16, 0, opt, out,
                    new PrintStream(new ByteArrayOutputStream())).run();
            lm.train(false);
            double tuned = Evaluator.evaluate(m, heldOut, 16, 0, 0).loss();
            assertTrue(tuned < base - 0.5, "held-out loss " + base + " -> " + tuned);
        }
    }
}
