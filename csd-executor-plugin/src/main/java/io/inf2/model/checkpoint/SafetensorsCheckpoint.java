package io.inf2.model.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.inf2.model.ModelFormatException;
import io.inf2.tensor.Tensor;
import io.inf2.util.StrictJson;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A model's safetensors weights, memory-mapped: {@code model.safetensors}, or the shards listed in
 * {@code model.safetensors.index.json} (HF's preference order). Every file is validated
 * ({@link SafetensorsFile}) and, for sharded checkpoints, every tensor is checked to be in the shard the
 * index names. All mappings share one arena that {@link #close()} releases.
 *
 * <p>Pickle checkpoints ({@code pytorch_model.bin}, {@code *.pt}, ...) are refused: unpickling runs
 * arbitrary code, and a batch job loading untrusted models must not.
 */
public final class SafetensorsCheckpoint implements Checkpoint {

    public static final String SINGLE_FILE_NAME = "model.safetensors";
    public static final String INDEX_FILE_NAME = "model.safetensors.index.json";

    private static final ObjectMapper JSON = StrictJson.MAPPER;
    private static final List<String> PICKLE_SUFFIXES = List.of(".bin", ".pt", ".pth", ".ckpt");

    /** Where one tensor's bytes are on disk, for readers that bypass the mapping (direct I/O). */
    public record FileRegion(Path file, long offset, long length) { }

    private final String location;
    private final Arena arena;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> fileOf;
    private volatile boolean closed;

    private SafetensorsCheckpoint(String location, Arena arena, List<SafetensorsFile> files, Map<String, SafetensorsFile> fileOf) {
        this.location = location;
        this.arena = arena;
        this.files = List.copyOf(files);
        this.fileOf = Collections.unmodifiableMap(fileOf);
    }

    /**
     * Opens a model directory (or a single {@code .safetensors} file). Fails with a one-line
     * {@link ModelFormatException} naming the directory, file and tensor at fault.
     */
    public static SafetensorsCheckpoint open(Path dirOrFile) {
        Path path = dirOrFile.toAbsolutePath().normalize();
        if (Files.isRegularFile(path)) {
            return openFiles(path.toString(), List.of(path), null);
        }
        if (!Files.isDirectory(path)) {
            throw new ModelFormatException(path + ": model directory does not exist");
        }
        Path single = path.resolve(SINGLE_FILE_NAME);
        if (Files.isRegularFile(single)) {
            return openFiles(path.toString(), List.of(single), null);
        }
        Path index = path.resolve(INDEX_FILE_NAME);
        if (Files.isRegularFile(index)) {
            return openSharded(path, index);
        }
        throw noWeights(path);
    }

    private static SafetensorsCheckpoint openSharded(Path dir, Path index) {
        Map<String, String> weightMap = readWeightMap(index);
        List<String> shardNames = new ArrayList<>(new TreeSet<>(weightMap.values()));
        List<Path> shardPaths = new ArrayList<>();
        for (String shard : shardNames) {
            Path shardPath = dir.resolve(shard);
            if (!Files.isRegularFile(shardPath)) {
                String example = weightMap.entrySet().stream().filter(e -> e.getValue().equals(shard)).findFirst()
                        .map(Map.Entry::getKey).orElseThrow();
                throw new ModelFormatException(index + ": shard " + shard + " (listed for tensor " + SafetensorsFile.printable(example)
                        + ") does not exist");
            }
            shardPaths.add(shardPath);
        }
        return openFiles(dir.toString(), shardPaths, weightMap);
    }

    /** Maps every file; with an index, checks it against the shards' own headers. */
    private static SafetensorsCheckpoint openFiles(String location, List<Path> paths, Map<String, String> weightMap) {
        Arena arena = Arena.ofShared();
        try {
            List<SafetensorsFile> files = new ArrayList<>();
            Map<String, SafetensorsFile> fileOf = new LinkedHashMap<>();
            for (Path p : paths) {
                SafetensorsFile file = SafetensorsFile.open(p, arena);
                files.add(file);
                for (String name : file.names()) {
                    if (weightMap != null && !weightMap.containsKey(name)) {
                        throw new ModelFormatException(p + ": tensor " + SafetensorsFile.printable(name) + " is not listed in " + INDEX_FILE_NAME);
                    }
                    SafetensorsFile other = fileOf.putIfAbsent(name, file);
                    if (other != null) {
                        throw new ModelFormatException(p + ": tensor " + SafetensorsFile.printable(name) + " is also in " + other.path().getFileName());
                    }
                }
            }
            if (weightMap != null) {
                for (Map.Entry<String, String> e : weightMap.entrySet()) {
                    SafetensorsFile actual = fileOf.get(e.getKey());
                    if (actual == null || !actual.path().getFileName().toString().equals(e.getValue())) {
                        throw new ModelFormatException(Path.of(location, INDEX_FILE_NAME) + ": tensor "
                                + SafetensorsFile.printable(e.getKey()) + ": the index says " + e.getValue() + ", but "
                                + (actual == null ? "no listed shard holds it" : "it is in " + actual.path().getFileName()));
                    }
                }
            }
            return new SafetensorsCheckpoint(location, arena, files, fileOf);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, String> readWeightMap(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(index + ": not valid JSON (" + SafetensorsFile.oneLine(e.getMessage()) + ")", e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new ModelFormatException(index + ": no \"weight_map\" object naming each tensor's shard");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            String shard = e.getValue().asText("");
            if (!e.getValue().isTextual() || !isPlainFileName(shard)) {
                throw new ModelFormatException(index + ": tensor " + SafetensorsFile.printable(e.getKey()) + ": shard "
                        + SafetensorsFile.oneLine(e.getValue().toString()) + " is not a file name inside the model directory");
            }
            out.put(e.getKey(), shard);
        }
        return out;
    }

    /** Shard names must stay inside the model directory: no separators, no "..", no absolute paths. */
    private static boolean isPlainFileName(String name) {
        return !name.isEmpty() && !name.contains("/") && !name.contains("\\") && !name.equals(".") && !name.equals("..")
                && name.endsWith(".safetensors");
    }

    private static ModelFormatException noWeights(Path dir) {
        List<String> pickles = new ArrayList<>();
        List<String> otherSafetensors = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                String name = p.getFileName().toString();
                String lower = name.toLowerCase(Locale.ROOT);
                if (PICKLE_SUFFIXES.stream().anyMatch(lower::endsWith)) {
                    pickles.add(name);
                } else if (lower.endsWith(".safetensors")) {
                    otherSafetensors.add(name);
                }
            }
        } catch (IOException e) {
            return new ModelFormatException(dir + ": cannot list the model directory (" + SafetensorsFile.oneLine(e.toString()) + ")", e);
        }
        Collections.sort(pickles);
        Collections.sort(otherSafetensors);
        if (!pickles.isEmpty()) {
            return new ModelFormatException(dir + ": only pickle checkpoints found (" + listed(pickles) + "); pickle files can "
                    + "execute arbitrary code when loaded, so INF2 reads safetensors only. Convert once with: python -c "
                    + "\"from transformers import AutoModelForCausalLM as M; M.from_pretrained('" + dir
                    + "').save_pretrained('OUT_DIR', safe_serialization=True)\" and copy the tokenizer files too");
        }
        if (!otherSafetensors.isEmpty()) {
            return new ModelFormatException(dir + ": no " + SINGLE_FILE_NAME + " or " + INDEX_FILE_NAME + " (found "
                    + listed(otherSafetensors) + "; a single file must be named " + SINGLE_FILE_NAME + ")");
        }
        return new ModelFormatException(dir + ": no model weights (expected " + SINGLE_FILE_NAME + " or " + INDEX_FILE_NAME + ")");
    }

    private static String listed(List<String> names) {
        return names.size() <= 3 ? String.join(", ", names) : String.join(", ", names.subList(0, 3)) + ", ... "
                + names.size() + " files";
    }

    @Override
    public Set<String> names() {
        return fileOf.keySet();
    }

    @Override
    public boolean contains(String name) {
        return fileOf.containsKey(name);
    }

    @Override
    public Tensor tensor(String name) {
        return fileFor(name).tensor(name);
    }

    /** The file and byte range holding {@code name}. */
    public FileRegion region(String name) {
        SafetensorsFile file = fileFor(name);
        return new FileRegion(file.path(), file.fileOffset(name), file.spec(name).byteSize());
    }

    /** The weight files, in shard order. */
    public List<Path> files() {
        return files.stream().map(SafetensorsFile::path).toList();
    }

    @Override
    public String location() {
        return location;
    }

    /** Unmaps every file; tensors handed out before become unusable. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    private SafetensorsFile fileFor(String name) {
        if (closed) {
            throw new IllegalStateException(location + ": checkpoint is closed");
        }
        SafetensorsFile file = fileOf.get(name);
        if (file == null) {
            throw new ModelFormatException(location + ": no tensor named " + SafetensorsFile.printable(name));
        }
        return file;
    }
}
