package io.peft4j.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Renders a conversation in one of the common chat formats, without a Jinja engine: the format is chosen by name or
 * recognised from a tokenizer's {@code chat_template} string, and reproduces what HF's {@code apply_chat_template}
 * renders for that family (text only; tools and multimodal parts are not supported).
 *
 * <p>The rendered text contains special tokens as text ({@code <|im_start|>}, {@code <s>}): encode it with
 * {@code addBos=false}, with a tokenizer that recognises special tokens in text ({@link HfTokenizer} does;
 * {@link Llama2cTokenizer} does not, as in llama2.c).
 *
 * <p>For training, {@link Rendered#assistantSpans()} gives the character span of each assistant turn: the content
 * plus the end-of-turn marker the model must learn to emit ({@code <|im_end|>}, {@code <|eot_id|>}, {@code </s>}),
 * not the role header. {@link Rendered#assistantMask} maps them onto tokens.
 */
public final class ChatTemplate {
    /** The supported families. */
    public enum Format {
        /** {@code <|im_start|>role\ncontent<|im_end|>\n} (Qwen2/2.5, many fine-tunes). */
        CHATML,
        /** ChatML with Qwen3's empty {@code <think>\n\n</think>\n\n} block on assistant turns after the last user turn. */
        QWEN3,
        /** {@code <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s>} (Meta's Llama-2 chat). */
        LLAMA2,
        /** {@code <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>} (Llama-3). */
        LLAMA3,
        /** {@code <|user|>\ncontent</s>\n} (Zephyr / TinyLlama-chat). */
        ZEPHYR
    }

    /** One turn; role is {@code system}, {@code user} or {@code assistant}. */
    public record Message(String role, String content) {
        public Message {
            if (role == null || content == null) throw new IllegalArgumentException("chat message needs a role and content");
        }
        public static Message system(String c) { return new Message("system", c); }
        public static Message user(String c) { return new Message("user", c); }
        public static Message assistant(String c) { return new Message("assistant", c); }
    }

    /** Characters {@code [start, end)} of the rendered text. */
    public record Span(int start, int end) {}

    /** The rendered text and where the assistant turns are in it. */
    public record Rendered(String text, List<Span> assistantSpans) {
        /**
         * Per token of {@code enc} (an encoding of {@link #text}), whether it lies in an assistant span (a token
         * counts if it overlaps one). Tokens without source text (BOS) are never assistant tokens.
         */
        public boolean[] assistantMask(Tokenizer.Encoding enc) {
            boolean[] m = new boolean[enc.size()];
            for (int i = 0; i < m.length; i++) {
                int s = enc.starts()[i], e = enc.ends()[i];
                if (s >= e) continue;
                for (Span sp : assistantSpans) if (s < sp.end && e > sp.start) { m[i] = true; break; }
            }
            return m;
        }
    }

    private final Format format;
    private final String bos, eos; // special-token text used by the formats that write them

    private ChatTemplate(Format format, String bos, String eos) {
        this.format = format;
        this.bos = bos;
        this.eos = eos;
    }

    /** A format with its family's usual BOS/EOS token text. */
    public static ChatTemplate of(Format format) {
        return switch (format) {
            case LLAMA3 -> new ChatTemplate(format, "<|begin_of_text|>", "<|eot_id|>");
            case CHATML, QWEN3 -> new ChatTemplate(format, "", "<|im_end|>");
            case LLAMA2, ZEPHYR -> new ChatTemplate(format, "<s>", "</s>");
        };
    }

    /** By name: chatml/qwen/qwen2, qwen3, llama2/llama-2, llama3/llama-3, zephyr (case-insensitive). */
    public static ChatTemplate byName(String name) {
        String n = name.toLowerCase(Locale.ROOT).replace("-", "").replace("_", "").replace(".", "");
        return of(switch (n) {
            case "chatml", "qwen", "qwen2", "qwen25" -> Format.CHATML;
            case "qwen3" -> Format.QWEN3;
            case "llama2", "llama2chat" -> Format.LLAMA2;
            case "llama3", "llama31", "llama32", "llama3chat" -> Format.LLAMA3;
            case "zephyr", "tinyllama" -> Format.ZEPHYR;
            default -> throw new IllegalArgumentException("unknown chat format '" + name + "' (known: chatml, qwen3, llama2, llama3, zephyr)");
        });
    }

    /** Recognises the family of a Jinja {@code chat_template} string by its markers. */
    public static ChatTemplate detect(String jinja) {
        if (jinja == null || jinja.isBlank()) throw new IllegalArgumentException("no chat_template to detect a chat format from");
        Format f;
        if (jinja.contains("<|im_start|>")) f = jinja.contains("<think>") ? Format.QWEN3 : Format.CHATML;
        else if (jinja.contains("<|start_header_id|>")) f = Format.LLAMA3;
        else if (jinja.contains("[INST]")) f = Format.LLAMA2;
        else if (jinja.contains("<|user|>") && jinja.contains("<|assistant|>")) f = Format.ZEPHYR;
        else throw new IllegalArgumentException("unrecognised chat_template (not ChatML, Llama-2, Llama-3 or Zephyr style): "
                    + jinja.substring(0, Math.min(80, jinja.length())).replace("\n", "\\n") + "...");
        return of(f);
    }

    /** The format of {@code tokenizer}'s chat_template, with its BOS/EOS token text; fails if it has none. */
    public static ChatTemplate forTokenizer(Tokenizer tokenizer) {
        if (!(tokenizer instanceof HfTokenizer hf) || hf.chatTemplate() == null)
            throw new IllegalArgumentException("tokenizer has no chat_template; choose a format by name (chatml, llama2, llama3, ...)");
        ChatTemplate t = detect(hf.chatTemplate());
        return switch (t.format) {
            // These templates write bos_token / eos_token themselves: use the tokenizer's spelling.
            case LLAMA2, ZEPHYR -> new ChatTemplate(t.format, orElse(hf.bosToken(), t.bos), orElse(hf.eosToken(), t.eos));
            case LLAMA3 -> new ChatTemplate(t.format, orElse(hf.bosToken(), t.bos), t.eos);
            default -> t;
        };
    }

    private static String orElse(String a, String b) { return a != null ? a : b; }

    public Format format() { return format; }

    /**
     * Renders {@code messages}; with {@code addGenerationPrompt} the text ends with the assistant header, ready for
     * the model to answer (Llama-2 has no header: {@code [/INST]} already ends the prompt).
     */
    public Rendered render(List<Message> messages, boolean addGenerationPrompt) {
        for (int i = 0; i < messages.size(); i++) {
            String r = messages.get(i).role();
            if (!r.equals("system") && !r.equals("user") && !r.equals("assistant"))
                throw new IllegalArgumentException("chat message " + i + " has role '" + r + "' (expected system, user or assistant)");
        }
        Builder b = new Builder();
        switch (format) {
            case CHATML, QWEN3 -> renderChatMl(messages, addGenerationPrompt, b);
            case LLAMA2 -> renderLlama2(messages, b);
            case LLAMA3 -> renderLlama3(messages, addGenerationPrompt, b);
            case ZEPHYR -> renderZephyr(messages, addGenerationPrompt, b);
        }
        return new Rendered(b.sb.toString(), List.copyOf(b.spans));
    }

    /** Appends text, recording assistant spans. */
    private static final class Builder {
        final StringBuilder sb = new StringBuilder();
        final List<Span> spans = new ArrayList<>();

        Builder text(String s) { sb.append(s); return this; }

        Builder assistant(String s) {
            int start = sb.length();
            sb.append(s);
            if (sb.length() > start) spans.add(new Span(start, sb.length()));
            return this;
        }
    }

    private void renderChatMl(List<Message> ms, boolean gen, Builder b) {
        int lastUser = -1;
        for (int i = 0; i < ms.size(); i++) if (ms.get(i).role().equals("user")) lastUser = i;
        for (int i = 0; i < ms.size(); i++) {
            Message m = ms.get(i);
            b.text("<|im_start|>" + m.role() + "\n");
            if (m.role().equals("assistant")) {
                String content = m.content();
                // Qwen3 shows an (empty) reasoning block on the answers to the last query, unless one is written.
                if (format == Format.QWEN3 && i > lastUser && !content.contains("</think>"))
                    content = "<think>\n\n</think>\n\n" + stripLeadingNewlines(content);
                b.assistant(content + "<|im_end|>").text("\n");
            } else {
                b.text(m.content() + "<|im_end|>\n");
            }
        }
        if (gen) b.text("<|im_start|>assistant\n");
    }

    private static String stripLeadingNewlines(String s) {
        int i = 0;
        while (i < s.length() && s.charAt(i) == '\n') i++;
        return s.substring(i);
    }

    private void renderLlama2(List<Message> ms, Builder b) {
        String system = null;
        int from = 0;
        if (!ms.isEmpty() && ms.getFirst().role().equals("system")) { system = ms.getFirst().content(); from = 1; }
        for (int i = from; i < ms.size(); i++) {
            Message m = ms.get(i);
            boolean expectUser = (i - from) % 2 == 0;
            if (m.role().equals("user") != expectUser)
                throw new IllegalArgumentException("Llama-2 chat needs user/assistant turns alternating, starting with user; message "
                        + i + " is '" + m.role() + "'");
            String content = m.content();
            if (i == from && system != null) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
            if (m.role().equals("user")) b.text(bos + "[INST] " + content.strip() + " [/INST]");
            else b.text(" ").assistant(m.content().strip() + " " + eos);
        }
    }

    private void renderLlama3(List<Message> ms, boolean gen, Builder b) {
        b.text(bos);
        for (Message m : ms) {
            b.text("<|start_header_id|>" + m.role() + "<|end_header_id|>\n\n");
            if (m.role().equals("assistant")) b.assistant(m.content().strip() + eos);
            else b.text(m.content().strip() + eos);
        }
        if (gen) b.text("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    private void renderZephyr(List<Message> ms, boolean gen, Builder b) {
        for (Message m : ms) {
            b.text("<|" + m.role() + "|>\n");
            if (m.role().equals("assistant")) b.assistant(m.content() + eos).text("\n");
            else b.text(m.content() + eos + "\n");
        }
        if (gen) b.text("<|assistant|>\n");
    }
}
