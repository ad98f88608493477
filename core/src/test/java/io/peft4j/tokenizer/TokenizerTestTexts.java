package io.peft4j.tokenizer;

import io.peft4j.testing.Assets;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Test texts: random chunks of TinyShakespeare plus hand-picked Unicode that exercises byte fallback. */
final class TokenizerTestTexts {
    private TokenizerTestTexts() {}

    static final List<String> UNICODE = List.of(
            "héllo wörld, naïve café", "日本語のテキスト、漢字とかな。", "中文分词测试：你好，世界！",
            "emoji 😀🎉👩‍👩‍👧 and flags 🇫🇷", "Ελληνικά και русский текст", "  leading and trailing spaces  ",
            "tabs\tand\nnew\nlines\r\n", "math ∑ x² ≤ ∞ → ∂", "mixed: a😀b中c\u0301d", "", " ", "a");

    /** {@code count} random chunks (length 1..maxLen) of TinyShakespeare, deterministic for {@code seed}. */
    static List<String> shakespeare(long seed, int count, int maxLen) throws IOException {
        String all = Files.readString(Assets.require("datasets/tinyshakespeare/input.txt"));
        SplittableRandom r = new SplittableRandom(seed);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int len = 1 + r.nextInt(maxLen);
            int start = r.nextInt(all.length() - len);
            out.add(all.substring(start, start + len));
        }
        return out;
    }

    /** Random strings over a mix of ASCII, Latin-1, CJK and astral code points. */
    static List<String> randomUnicode(long seed, int count, int maxLen) {
        SplittableRandom r = new SplittableRandom(seed);
        int[][] ranges = {{0x20, 0x7e}, {0x20, 0x7e}, {0x20, 0x7e}, {0xa0, 0x17f}, {0x4e00, 0x4fff}, {0x1f600, 0x1f64f}, {'\n', '\n'}};
        List<String> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            StringBuilder sb = new StringBuilder();
            int len = r.nextInt(maxLen + 1);
            for (int j = 0; j < len; j++) {
                int[] g = ranges[r.nextInt(ranges.length)];
                sb.appendCodePoint(g[0] + r.nextInt(g[1] - g[0] + 1));
            }
            out.add(sb.toString());
        }
        return out;
    }
}
