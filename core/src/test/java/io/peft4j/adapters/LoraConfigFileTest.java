package io.peft4j.adapters;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** adapter_config.json: PEFT's real files read cleanly, unknown keys warn, missing or bad keys are named errors. */
class LoraConfigFileTest {
    @Test
    void realPeftConfigsReadWithoutWarnings() throws IOException {
        for (String a : List.of("gpt2-lora-r8", "qwen2.5-0.5b-lora-r8")) {
            Path f = io.peft4j.testing.Assets.require("adapters/" + a + "/adapter_config.json");
            List<String> w = new ArrayList<>();
            LoraConfig c = LoraConfig.read(f, w::add);
            assertEquals(List.of(), w, a);
            assertEquals(8, c.r());
        }
    }

    @Test
    void unknownKeysAreToleratedWithAWarningNamingThem(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("adapter_config.json");
        Files.writeString(f, "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], \"a_future_key\": 1}");
        List<String> w = new ArrayList<>();
        assertEquals(4, LoraConfig.read(f, w::add).r());
        assertEquals(1, w.size());
        assertTrue(w.getFirst().contains("a_future_key") && w.getFirst().contains("adapter_config.json"), w.getFirst());
    }

    @Test
    void missingOrBadKeysNameTheFileAndTheKey(@TempDir Path dir) throws IOException {
        String[][] cases = {
                {"{\"peft_type\": \"LORA\", \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}", "'r'"},
                {"{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"]}", "'lora_alpha'"},
                {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8}", "'target_modules'"},
                {"{\"peft_type\": \"IA3\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}", "peft_type"},
                {"{\"peft_type\": \"LORA\", \"r\": \"four\", \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}", "'r'"},
                {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], \"bias\": \"some\"}", "bias"},
                {"{\"peft_type\": \"LORA\", \"r\": 4, ", "not valid JSON"}};
        for (String[] c : cases) {
            Path f = dir.resolve("adapter_config.json");
            Files.writeString(f, c[0]);
            IOException e = assertThrows(IOException.class, () -> LoraConfig.read(f, w -> {}), c[0]);
            assertTrue(e.getMessage().contains(c[1]) && e.getMessage().contains(f.toString()), e.getMessage());
        }
    }
}
