package io.peft4j.tokenizer;

import io.peft4j.testing.Assets;
import io.peft4j.tokenizer.ChatTemplate.Format;
import io.peft4j.tokenizer.ChatTemplate.Message;
import io.peft4j.tokenizer.ChatTemplate.Rendered;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ChatTemplateTest {
    static final List<Message> CHAT = List.of(
            Message.system("You are terse."),
            Message.user("Hi there"),
            Message.assistant("Hello!"),
            Message.user("2+2?"),
            Message.assistant("4"));

    // Expected texts are what each family's Jinja template renders (HF: trim_blocks, lstrip_blocks) for CHAT.
    @Test
    void rendersChatMl() {
        Rendered r = ChatTemplate.of(Format.CHATML).render(CHAT, false);
        assertEquals("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
                + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
                + "<|im_start|>assistant\n4<|im_end|>\n", r.text());
        assertEquals(List.of("Hello!<|im_end|>", "4<|im_end|>"), spanTexts(r));
        assertTrue(ChatTemplate.of(Format.CHATML).render(CHAT.subList(0, 4), true).text()
                .endsWith("2+2?<|im_end|>\n<|im_start|>assistant\n"));
    }

    @Test
    void rendersQwen3ThinkBlockOnlyAfterTheLastQuery() {
        Rendered r = ChatTemplate.of(Format.QWEN3).render(CHAT, false);
        assertTrue(r.text().contains("<|im_start|>assistant\nHello!<|im_end|>\n"), "earlier answers stay plain");
        assertTrue(r.text().endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>\n"), r.text());
        assertEquals(List.of("Hello!<|im_end|>", "<think>\n\n</think>\n\n4<|im_end|>"), spanTexts(r));
    }

    @Test
    void rendersLlama2() {
        Rendered r = ChatTemplate.of(Format.LLAMA2).render(CHAT, true);
        assertEquals("<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"
                + "<s>[INST] 2+2? [/INST] 4 </s>", r.text());
        assertEquals(List.of("Hello! </s>", "4 </s>"), spanTexts(r));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ChatTemplate.of(Format.LLAMA2).render(List.of(Message.user("a"), Message.user("b")), false));
        assertTrue(e.getMessage().contains("message 1"), e.getMessage());
    }

    @Test
    void rendersLlama3() {
        Rendered r = ChatTemplate.of(Format.LLAMA3).render(CHAT.subList(0, 4), true);
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", r.text());
        assertEquals(List.of("Hello!<|eot_id|>"), spanTexts(r));
    }

    @Test
    void rendersZephyr() {
        Rendered r = ChatTemplate.of(Format.ZEPHYR).render(CHAT.subList(1, 4), true);
        assertEquals("<|user|>\nHi there</s>\n<|assistant|>\nHello!</s>\n<|user|>\n2+2?</s>\n<|assistant|>\n", r.text());
    }

    @Test
    void detectsTheFormatFromTheTokenizersTemplate() throws IOException {
        assertEquals(Format.QWEN3, ChatTemplate.forTokenizer(HfTokenizerTest.tok("qwen3")).format());
        assertEquals(Format.LLAMA3, ChatTemplate.forTokenizer(HfTokenizerTest.tok("llama3")).format());
        // The llama2 asset ships a Zephyr-style (TinyLlama-chat) template, not Meta's [INST] one.
        assertEquals(Format.ZEPHYR, ChatTemplate.forTokenizer(HfTokenizerTest.tok("llama2")).format());
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.forTokenizer(HfTokenizerTest.tok("gpt2")));
        assertEquals(Format.LLAMA2, ChatTemplate.detect("{{ bos_token + '[INST] ' + content + ' [/INST]' }}").format());
        assertEquals(Format.CHATML, ChatTemplate.byName("Qwen2.5").format());
        assertEquals(Format.LLAMA3, ChatTemplate.byName("llama-3").format());
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.byName("alpaca"));
        assertThrows(IllegalArgumentException.class, () -> ChatTemplate.detect("{{ messages }}"));
    }

    @Test
    void assistantMaskSelectsExactlyTheAssistantTokens() throws IOException {
        for (String name : new String[] {"qwen3", "llama3", "llama2"}) {
            HfTokenizer tok = HfTokenizerTest.tok(name);
            ChatTemplate t = ChatTemplate.forTokenizer(tok);
            Rendered r = t.render(CHAT, false);
            Tokenizer.Encoding enc = tok.encodeWithOffsets(r.text(), false);
            boolean[] mask = r.assistantMask(enc);
            List<Integer> assistantIds = new ArrayList<>(), otherIds = new ArrayList<>();
            for (int i = 0; i < mask.length; i++) (mask[i] ? assistantIds : otherIds).add(enc.ids()[i]);
            String said = tok.decode(assistantIds.stream().mapToInt(Integer::intValue).toArray());
            // Special tokens are skipped by decode: what remains is the answers' text (Qwen3 adds its think block).
            String expected = name.equals("qwen3") ? "Hello!<think>\n\n</think>\n\n4" : "Hello!4";
            assertEquals(expected, said.replace("\n", name.equals("qwen3") ? "\n" : ""), name);
            int eot = tok.tokenId(t.format() == Format.LLAMA3 ? "<|eot_id|>" : t.format() == Format.ZEPHYR ? "</s>" : "<|im_end|>");
            assertEquals(2, assistantIds.stream().filter(i -> i == eot).count(), name + ": each answer's end-of-turn token is trained");
            assertFalse(tok.decode(otherIds.stream().mapToInt(Integer::intValue).toArray()).contains("Hello!"), name);
        }
    }

    private static List<String> spanTexts(Rendered r) {
        return r.assistantSpans().stream().map(s -> r.text().substring(s.start(), s.end())).toList();
    }
}
