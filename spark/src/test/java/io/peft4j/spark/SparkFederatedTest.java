package io.peft4j.spark;

import io.peft4j.federated.FederatedConfig;
import io.peft4j.federated.FederatedSetup;
import io.peft4j.federated.FederatedTrainer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Spark local mode ({@code local[2]}): three DP rounds of federated FFA-LoRA on stories260K with a slice of tiny
 * Shakespeare, clients as Spark tasks, must give bit for bit the global B of the in-process run with the same seeds.
 * Bit-identical (not just close) is expected because a client's update is a pure function of (global B, shard, round,
 * seed), both runs execute the same Java code on the same JVM build with one kernel thread (-Dpeft4j.threads=1 in the
 * surefire argLine, so no reduction is split differently), and the server sums the deltas in client-id order in double.
 */
class SparkFederatedTest {
    static Path asset(String rel) {
        String shared = System.getProperty("peft4j.shared", "../../shared");
        Path p = Path.of(shared, "assets", rel);
        Assumptions.assumeTrue(Files.exists(p), "shared asset absent, test skipped: " + p.toAbsolutePath());
        return p;
    }

    @Test
    void sparkRoundsEqualTheInProcessRun(@TempDir Path tmp) throws Exception {
        Path model = asset("models/stories260K/stories260K.bin"), tok = asset("models/stories260K/tok512.bin");
        String text = Files.readString(asset("datasets/tinyshakespeare/input.txt"), StandardCharsets.UTF_8);
        Path data = tmp.resolve("shakespeare-head.txt");
        Files.writeString(data, text.substring(0, 40_000));               // a small slice keeps each load well under a second
        FederatedConfig cfg = FederatedConfig.plain(3, 3, 2, 2 / 3.0, 5e-3, 4, 64, 7).withDp(1.0, 0.8, 1e-5);
        FederatedSetup setup = new FederatedSetup(model.toString(), tok.toString(), data.toString(), "text", 0.1, 0, 16,
                "ffa-lora", Map.of(), 4, 8, 0, "all-linear", cfg);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());

        FederatedTrainer.Result local;
        try (FederatedSetup.Loaded l = setup.load()) {
            local = new FederatedTrainer(cfg, l.client(), l.shards(), l.heldOut(), FederatedTrainer.inProcess(l.client(), l.shards(), cfg),
                    null, quiet).run();
        }

        SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("peft4j-test").set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1");
        FederatedTrainer.Result spark;
        Path out = tmp.resolve("out");
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            spark = SparkFederated.run(sc, setup, out, quiet);
        }
        assertEquals(local.global().keySet(), spark.global().keySet());
        boolean moved = false;
        for (String k : local.global().keySet()) {
            assertArrayEquals(local.global().get(k), spark.global().get(k), k);
            for (float v : spark.global().get(k)) moved |= v != 0;
        }
        assertTrue(moved, "B left zero");
        for (int r = 0; r < cfg.rounds(); r++) {
            assertArrayEquals(local.rounds().get(r).clients(), spark.rounds().get(r).clients());
            assertEquals(local.rounds().get(r).epsilon(), spark.rounds().get(r).epsilon());
            assertEquals(local.rounds().get(r).evalLoss(), spark.rounds().get(r).evalLoss());
        }
        assertTrue(Files.exists(out.resolve("adapter_model.safetensors")) && Files.exists(out.resolve("metrics.jsonl")));
    }
}
