package io.peft4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** {@code bench generate} runs on a named random config with no files and prints one JSON object. */
class GenerateBenchCommandTest {
    @Test
    void tinyConfigPrintsOneJsonObjectWithConsistentFigures() throws Exception {
        CliRun r = CliRun.of("bench", "generate", "--config", "tiny", "--prompt-tokens", "8", "--new-tokens", "8", "--runs", "1", "--json");
        assertEquals(0, r.code(), r.err());
        assertEquals(1, r.out().strip().lines().count(), "one JSON line on stdout: " + r.out());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("random:tiny:BF16", j.get("model").asText());
        assertTrue(j.get("prefill_tokens_per_s").asDouble() > 0);
        double decode = j.get("decode_tokens_per_s").asDouble();
        assertTrue(decode > 0);
        long bytes = j.get("decode_weight_bytes_per_token").asLong();
        // tiny: 4 layers x (q 64x64 + k,v 32x64 + o 64x64 + 3 x 176x64) + untied head 512x64, all BF16
        assertEquals(2L * (4 * (64 * 64 * 2 + 32 * 64 * 2 + 3 * 176 * 64) + 512 * 64), bytes);
        assertEquals(bytes * decode / 1e9, j.get("decode_weight_gb_per_s").asDouble(), 1e-3 + 1e-3 * bytes * decode / 1e9);
        assertEquals(j.get("decode_weight_gb_per_s").asDouble() / j.get("memcpy_gb_per_s").asDouble(), j.get("weight_bw_over_memcpy").asDouble(), 0.01);
    }

    @Test
    void unknownConfigIsOneErrorLine() {
        CliRun r = CliRun.of("bench", "generate", "--config", "7b");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("unknown named config '7b' (known: tiny, 100m)"), r.err());
    }
}
