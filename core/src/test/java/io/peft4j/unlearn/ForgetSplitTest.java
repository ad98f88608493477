package io.peft4j.unlearn;

import io.peft4j.data.DataConfig;
import io.peft4j.data.DataException;
import io.peft4j.data.DataFormat;
import io.peft4j.data.Dataset;
import io.peft4j.testing.Assets;
import io.peft4j.tokenizer.CharTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

class ForgetSplitTest {
    @Test
    void byClassesSplitsByLabelAndRejectsUnknownOrAllClasses() {
        Dataset d = ForgetToy.data(12, 1);
        ForgetSplit s = ForgetSplit.byClasses(d, List.of("b", "d"));
        assertEquals(Set.of(1, 3), s.forgetClasses());
        assertEquals(6, s.forget().size());
        assertTrue(s.forget().examples().stream().allMatch(e -> e.classLabel() == 1 || e.classLabel() == 3));
        assertTrue(s.retain().examples().stream().allMatch(e -> e.classLabel() == 0 || e.classLabel() == 2));
        var e = assertThrows(IllegalArgumentException.class, () -> ForgetSplit.byClasses(d, List.of("z")));
        assertTrue(e.getMessage().contains("'z'") && e.getMessage().contains("[a, b, c, d]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ForgetSplit.byClasses(d, List.of("a", "b", "c", "d")));
    }

    @Test
    void byFieldSplitsRowsAndNamesTheFirstBadRow(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("d.jsonl");
        Files.writeString(f, """
                {"text": "keep this one", "forget": false}
                {"text": "forget me", "forget": true}
                {"text": "keep too", "forget": "false"}
                """);
        DataConfig text = DataConfig.builder(DataFormat.TEXT, 4).optPacking(false).build();
        ForgetSplit s = ForgetSplit.byField(f, text, new CharTokenizer("abcdefghijklmnopqrstuvwxyz "), "forget");
        assertEquals(1, s.forget().size());
        assertEquals(2, s.retain().size());
        Files.writeString(f, "{\"text\": \"a\", \"forget\": false}\n{\"text\": \"b\", \"forget\": 1}\n");
        DataException e = assertThrows(DataException.class, () -> ForgetSplit.byField(f, text, new CharTokenizer("abcdefghijklmnopqrstuvwxyz "), "forget"));
        assertEquals(2, e.line());
        assertTrue(e.getMessage().contains("forget") && e.getMessage().contains(f.toString()), e.getMessage());
    }

    @Test
    void speechesAreSplitAtNameHeadersAndBalanced() {
        String play = "A:\nhello there\nfriend\n\nB:\nhi\n\nA:\nagain\n\nC:\nonce\n\nB:\nyes\n\nA:\nthird\n";
        List<SpeakerLines.Speech> s = SpeakerLines.speeches(play);
        assertEquals(List.of("A", "B", "A", "C", "B", "A"), s.stream().map(SpeakerLines.Speech::speaker).toList());
        assertEquals("hello there\nfriend", s.getFirst().text());
        SpeakerLines.Split sp = SpeakerLines.build(play, 2, 2);     // A (3) and B (2): both capped at 2 speeches
        assertEquals(List.of("A", "B"), sp.speakers());
        assertEquals(List.of("A", "B"), sp.train().stream().map(SpeakerLines.Speech::speaker).toList(), "interleaved");
        assertEquals(2, sp.test().size());
    }

    @Test
    void tinyShakespeareGivesSixBalancedSpeakers(@TempDir Path dir) throws Exception {
        Path input = Assets.require("datasets/tinyshakespeare/input.txt");
        SpeakerLines.Split s = SpeakerLines.write(input, dir, 6, 5);
        Map<String, Long> counts = s.train().stream().collect(Collectors.groupingBy(SpeakerLines.Speech::speaker, Collectors.counting()));
        assertEquals(6, counts.size());
        assertEquals(1, counts.values().stream().distinct().count(), "balanced: " + counts);
        assertTrue(s.speakers().containsAll(List.of("GLOUCESTER", "ROMEO")), s.speakers().toString());
        assertEquals(s.train().size() + s.test().size(), Files.readAllLines(dir.resolve("train.jsonl")).size() + Files.readAllLines(dir.resolve("test.jsonl")).size());
    }
}
