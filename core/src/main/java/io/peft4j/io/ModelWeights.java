package io.peft4j.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.peft4j.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The weights of a Hugging Face model directory, as one name -> tensor lookup over memory-mapped files: either a
 * single {@code model.safetensors}, or shards {@code model-0000x-of-0000y.safetensors} listed by
 * {@code model.safetensors.index.json} ({@code weight_map}). Tensors are zero-copy views in the files' dtypes.
 * PyTorch pickles ({@code pytorch_model.bin}) are refused with an explanation.
 *
 * <pre>{@code
 * try (ModelWeights w = ModelWeights.open(Path.of("models/llama"))) {
 *     Tensor embed = w.get("model.embed_tokens.weight");   // BF16 stays BF16
 * }
 * }</pre>
 */
public final class ModelWeights implements AutoCloseable {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path source;                                  // the directory, or the single file opened
    private final List<SafetensorsFile> files;                  // each shard once, in index order
    private final Map<String, SafetensorsFile> byName;          // tensor name -> the file holding it

    private ModelWeights(Path source, List<SafetensorsFile> files, Map<String, SafetensorsFile> byName) {
        this.source = source;
        this.files = Collections.unmodifiableList(files);
        this.byName = Collections.unmodifiableMap(byName);
    }

    /**
     * Opens a model directory ({@code model.safetensors} first, as transformers does, else the sharded index), or a
     * single {@code .safetensors} file given directly.
     */
    public static ModelWeights open(Path dirOrFile) throws IOException {
        if (Files.isRegularFile(dirOrFile)) {
            if (isPickle(dirOrFile.getFileName().toString())) throw new IOException(pickleMessage(dirOrFile));
            if (dirOrFile.getFileName().toString().endsWith(".index.json")) return openIndex(dirOrFile.getParent(), dirOrFile);
            return single(dirOrFile, dirOrFile);
        }
        if (!Files.isDirectory(dirOrFile)) throw new NoSuchFileException(dirOrFile + ": no such model directory or file");
        Path single = dirOrFile.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) return single(dirOrFile, single);
        Path index = dirOrFile.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) return openIndex(dirOrFile, index);
        throw new IOException(missingWeightsMessage(dirOrFile));
    }

    private static ModelWeights single(Path source, Path file) throws IOException {
        SafetensorsFile f = Safetensors.open(file);
        Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
        for (String n : f.names()) byName.put(n, f);
        return new ModelWeights(source, new ArrayList<>(List.of(f)), byName);
    }

    private static ModelWeights openIndex(Path dir, Path index) throws IOException {
        String label = index.toString();
        JsonNode root;
        try {
            root = Safetensors.JSON.readTree(Files.readAllBytes(index));
        } catch (JsonProcessingException e) {
            throw Safetensors.fail(label, "not valid JSON: " + Safetensors.jsonMessage(e), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) throw Safetensors.fail(label, "has no \"weight_map\" object");
        Path base = dir.toAbsolutePath().normalize();
        Map<String, String> shardOf = new LinkedHashMap<>();     // tensor -> shard file name, index order
        Map<String, Path> shards = new LinkedHashMap<>();        // shard file name -> path, first-seen order
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual())
                throw Safetensors.fail(label, "weight_map entry '" + e.getKey() + "' is not a file name");
            String shard = e.getValue().textValue();
            Path p = base.resolve(shard).normalize();
            if (!p.getParent().equals(base))
                throw Safetensors.fail(label, "weight_map entry '" + e.getKey() + "' points outside the model directory: " + shard);
            shardOf.put(e.getKey(), shard);
            shards.putIfAbsent(shard, p);
        }
        for (Map.Entry<String, Path> s : shards.entrySet()) {
            if (!Files.isRegularFile(s.getValue())) {
                long count = shardOf.values().stream().filter(s.getKey()::equals).count();
                String example = shardOf.entrySet().stream().filter(x -> x.getValue().equals(s.getKey())).findFirst().orElseThrow().getKey();
                throw new NoSuchFileException(label + ": shard " + s.getKey() + " (holding " + count + " tensors, e.g. '"
                        + example + "') is missing from " + dir);
            }
        }
        List<SafetensorsFile> opened = new ArrayList<>();
        try {
            Map<String, SafetensorsFile> byShard = new LinkedHashMap<>();
            for (Map.Entry<String, Path> s : shards.entrySet()) {
                SafetensorsFile f = Safetensors.open(s.getValue());
                opened.add(f);
                byShard.put(s.getKey(), f);
            }
            Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
            for (Map.Entry<String, String> e : shardOf.entrySet()) {
                SafetensorsFile f = byShard.get(e.getValue());
                if (!f.contains(e.getKey()))
                    throw Safetensors.fail(label, "says tensor '" + e.getKey() + "' is in " + e.getValue() + ", but that shard has no such tensor"
                            + suggestion(e.getKey(), f.names()));
                byName.put(e.getKey(), f);
            }
            return new ModelWeights(dir, opened, byName);
        } catch (IOException | RuntimeException e) {
            for (SafetensorsFile f : opened) f.close();
            throw e;
        }
    }

    /** The directory (or single file) these weights were opened from. */
    public Path source() { return source; }

    /** The open files, each shard once. */
    public List<SafetensorsFile> files() { return files; }

    /** Tensor names, in header (single file) or index order. */
    public Set<String> names() { return byName.keySet(); }

    public boolean contains(String name) { return byName.containsKey(name); }

    /** A zero-copy view of tensor {@code name}; the error names the tensor and every file searched. */
    public Tensor get(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) {
            StringBuilder searched = new StringBuilder();
            for (SafetensorsFile s : files) searched.append(searched.isEmpty() ? "" : ", ").append(s.path().getFileName());
            throw new IllegalArgumentException("tensor '" + name + "' not found in " + source + " (searched " + searched + ", "
                    + byName.size() + " tensors)" + suggestion(name, byName.keySet()));
        }
        return f.get(name);
    }

    /** The file holding tensor {@code name}, or null. */
    public SafetensorsFile fileOf(String name) { return byName.get(name); }

    @Override
    public void close() {
        for (SafetensorsFile f : files) f.close();
    }

    @Override public String toString() { return "ModelWeights(" + source + ", " + files.size() + " files, " + byName.size() + " tensors)"; }

    // ------------------------------------------------------------------------------------------------ messages

    private static boolean isPickle(String fileName) {
        return fileName.endsWith(".bin") || fileName.endsWith(".bin.index.json") || fileName.endsWith(".pt") || fileName.endsWith(".pth");
    }

    private static String pickleMessage(Path p) {
        return p + " is a PyTorch pickle checkpoint, which peft4j does not read (unpickling can run arbitrary code and "
                + "needs Python): convert it to safetensors first, e.g. model.save_pretrained(dir, safe_serialization=True)";
    }

    private static String missingWeightsMessage(Path dir) throws IOException {
        List<String> pickles = new ArrayList<>(), safetensors = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String n = p.getFileName().toString();
                if (isPickle(n)) pickles.add(n);
                else if (n.endsWith(".safetensors")) safetensors.add(n);
            }
        }
        Collections.sort(pickles);
        Collections.sort(safetensors);
        if (!pickles.isEmpty() && safetensors.isEmpty())
            return pickleMessage(dir.resolve(pickles.getFirst())) + " (found " + String.join(", ", pickles) + ", no " + SINGLE_FILE + ")";
        String msg = dir + " has neither " + SINGLE_FILE + " nor " + INDEX_FILE;
        if (!safetensors.isEmpty()) msg += "; it has " + String.join(", ", safetensors) + ": open that file directly";
        return msg;
    }

    /** A hint when a name differs from an existing one only by a common prefix ("model.", "base_model.model."). */
    static String suggestion(String name, Set<String> names) {
        TreeSet<String> close = new TreeSet<>();
        String[] prefixes = {"model.", "base_model.model.", "transformer.", "module."};
        for (String p : prefixes) {
            if (names.contains(p + name)) close.add(p + name);
            if (name.startsWith(p) && names.contains(name.substring(p.length()))) close.add(name.substring(p.length()));
        }
        return close.isEmpty() ? "" : "; did you mean '" + close.first() + "'?";
    }
}
