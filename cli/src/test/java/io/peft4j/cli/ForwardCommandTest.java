package io.peft4j.cli;

import io.peft4j.io.Safetensors;
import io.peft4j.io.SafetensorsFile;
import io.peft4j.tensor.DType;
import io.peft4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class ForwardCommandTest {
    @Test
    void writesLogitsAndI64IdsThatMatchTheGoldenReference(@TempDir Path tmp) throws Exception {
        Path model = CliRun.fixture("qwen2");
        Path out = tmp.resolve("logits.safetensors");
        int[] ids;
        float[] expected;
        try (SafetensorsFile g = Safetensors.open(model.resolve("golden.safetensors"))) {
            Tensor t = g.get("input_ids");
            ids = new int[(int) t.numel()];
            for (int i = 0; i < ids.length; i++) ids[i] = (int) t.getFlat(i);
            expected = g.get("logits").toFloatArray();
        }
        StringBuilder csv = new StringBuilder();
        for (int id : ids) csv.append(csv.isEmpty() ? "" : ",").append(id);
        CliRun r = CliRun.of("forward", "--model", model.toString(), "--ids", csv.toString(), "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        try (SafetensorsFile f = Safetensors.open(out)) {
            Tensor logits = f.get("logits"), inputIds = f.get("input_ids");
            assertEquals(DType.F32, logits.dtype());
            assertEquals(DType.I64, inputIds.dtype());
            assertArrayEquals(new int[] {ids.length, 71}, logits.shape());
            for (int i = 0; i < ids.length; i++) assertEquals(ids[i], (int) inputIds.getFlat(i));
            float[] got = logits.toFloatArray();
            for (int i = 0; i < got.length; i++) assertEquals(expected[i], got[i], 1e-4, "logit " + i);
        }
    }

    @Test
    void promptIsEncodedWithBos(@TempDir Path tmp) throws Exception {
        Path dir = CliRun.asset("models/stories260K");
        Path out = tmp.resolve("p.safetensors");
        CliRun r = CliRun.of("forward", "--model", dir.resolve("stories260K.bin").toString(), "--tokenizer", dir.resolve("tok512.bin").toString(),
                "--prompt", "Once upon a time", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        try (SafetensorsFile f = Safetensors.open(out)) {
            Tensor ids = f.get("input_ids");
            assertEquals(1, (int) ids.getFlat(0), "BOS first");
            Tensor logits = f.get("logits");
            assertEquals(ids.numel(), logits.dim(0));
            assertEquals(512, logits.dim(1));
        }
    }

    @Test
    void promptAndIdsAreExclusive(@TempDir Path tmp) {
        CliRun r = CliRun.of("forward", "--model", "x", "--ids", "1,2", "--prompt", "a", "--out", tmp.resolve("o").toString());
        assertNotEquals(0, r.code());
        assertTrue(r.err().contains("mutually exclusive"), r.err());
    }
}
