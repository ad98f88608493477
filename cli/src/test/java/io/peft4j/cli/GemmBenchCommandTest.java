package io.peft4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** {@code bench gemm --json} prints one JSON object with a result per requested shape, in order. */
class GemmBenchCommandTest {
    @Test
    void smallShapesPrintOneJsonObjectInTheirOrder() throws Exception {
        CliRun r = CliRun.of("bench", "gemm", "--shapes", "8x9x10,3x5x7@nt", "--runs", "2", "--min-time", "0.001",
                "--threads", "1", "--json");
        assertEquals(0, r.code(), r.err());
        assertEquals(1, r.out().strip().lines().count(), "one JSON line on stdout: " + r.out());
        JsonNode results = new ObjectMapper().readTree(r.out()).get("results");
        assertEquals(2, results.size(), r.out());
        int[][] dims = {{8, 9, 10}, {3, 5, 7}};
        for (int i = 0; i < 2; i++) {
            JsonNode x = results.get(i);
            assertEquals(dims[i][0], x.get("m").asInt());
            assertEquals(dims[i][1], x.get("k").asInt());
            assertEquals(dims[i][2], x.get("n").asInt());
            assertTrue(x.get("gflops").asDouble() > 0, x.toString());
        }
    }

    @Test
    void malformedShapeIsOneErrorLine() {
        CliRun r = CliRun.of("bench", "gemm", "--shapes", "8x9");
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("8x9"), r.err());
    }
}
