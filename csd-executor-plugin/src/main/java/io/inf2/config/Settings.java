package io.inf2.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Every engine setting, defined once. Front ends (CLI, Spark plugin, Spark job, notebooks) read
 * values through {@link Inf2Config}; docs/configuration.md is generated from {@link #all()}.
 * Front ends with settings of their own register them in their own catalog of {@link Setting}s.
 */
public final class Settings {
    private static final List<Setting<?>> ALL = new ArrayList<>();

    private Settings() {
    }

    // ---- model and backend
    public static final Setting<String> MODEL = add(new Setting<>("engine", "model", "path or URI", null,
            "Model directory with config.json, *.safetensors and tokenizer.json. In Spark, any Hadoop FileSystem URI; "
                    + "executors copy it once to their local model cache.",
            Function.identity(), s -> !s.isBlank(), "a non-empty path"));
    public static final Setting<String> BACKEND = add(choice("engine", "backend", "auto",
            "Compute backend: cpu, cuda, or auto (cuda when a GPU and the CUDA libraries are found, else cpu).",
            "cpu", "cuda", "auto"));
    public static final Setting<Integer> THREADS = add(integer("engine", "threads", "0",
            "CPU threads for the CPU backend and host-side attention; 0 means all available cores.", 0, 4096));
    public static final Setting<Integer> BATCH_SIZE = add(integer("engine", "batchSize", "16",
            "Sequences generated together in one engine batch.", 1, 65536));

    public static final Setting<Integer> GPU_BATCH_SIZE = add(integer("engine", "gpuBatchSize", "0",
            "Block schedule: the engine batch is split into GPU batches of this many sequences; each layer's weights are "
                    + "brought in once per step and used by every GPU batch (FlexGen's zig-zag order). 0 means one GPU batch.",
            0, 65536));
    public static final Setting<String> WEIGHTS = add(choice("engine", "weights", "memory",
            "Where layer weights live: memory (mapped from the checkpoint, or resident on the GPU), or storage (read per "
                    + "layer with direct I/O into two host buffers, the next layer's read overlapping this layer's compute).",
            "memory", "storage"));

    public static final Setting<List<Integer>> PERCENT = add(new Setting<>("placement", "percent",
            "six comma-separated ints", "",
            "FlexGen's placement policy: weights on GPU, weights on host, KV cache on GPU, KV cache on host, activations on "
                    + "GPU, activations on host, in percent; what is left of each goes to storage. Weights split inside every "
                    + "layer (each tensor goes to the tier its byte midpoint falls in) and the rest streams per layer; the "
                    + "KV cache and the activations each live in one tier (100 in one place), the cache's storage tier being "
                    + "the kvCache choice csd or storage. Empty: derived from gpuMemory/hostMemory when given, else from "
                    + "weights and kvCache.",
            Settings::intList, Settings::validPercent,
            "six percentages, each pair summing to at most 100, cache and activations entirely in one tier"));
    public static final Setting<Long> GPU_MEMORY = add(new Setting<>("placement", "gpuMemory", "bytes (k, m, g suffix)", "0",
            "GPU memory the engine may fill with weights, KV cache and activations, from which a placement policy is "
                    + "derived when percent is not given; 0 means no budget.",
            Settings::bytes, v -> v >= 0, "a size such as 40g"));
    public static final Setting<Long> HOST_MEMORY = add(new Setting<>("placement", "hostMemory", "bytes (k, m, g suffix)", "0",
            "Host memory the engine may fill with weights and KV cache, from which a placement policy is derived when "
                    + "percent is not given; 0 means no budget.",
            Settings::bytes, v -> v >= 0, "a size such as 200g"));
    public static final Setting<Integer> CONTEXT_TOKENS = add(integer("placement", "contextTokens", "0",
            "The longest sequence, prompt plus max_new_tokens, the engine serves: placements derived from gpuMemory/"
                    + "hostMemory size the KV cache for batchSize sequences of this length (as FlexGen sizes it from the "
                    + "prompt and generation lengths), and a request that could grow longer fails with an error naming "
                    + "both. 0 means the model's context window.",
            0, Integer.MAX_VALUE));

    public static final Setting<String> CUDA_LIBRARY_PATH = add(new Setting<>("cuda", "cudaLibraryPath",
            "colon-separated directories", "",
            "Directories searched first for libcuda.so.1, libcublas.so.13 and libnvrtc.so.13 (before the system "
                    + "property inf2.cudaLibraryPath, the standard CUDA install directories and the loader's path).",
            Function.identity(), v -> true, "directories"));
    public static final Setting<Integer> CUDA_DEVICE = add(integer("cuda", "cudaDevice", "0",
            "Ordinal of the GPU the cuda backend uses.", 0, 1023));
    public static final Setting<String> CUDA_KERNEL_CACHE = add(new Setting<>("cuda", "cudaKernelCache", "path", "",
            "Directory for compiled CUDA kernels, keyed by source hash, GPU architecture and NVRTC version; "
                    + "empty means ~/.cache/inf2/cuda-kernels.",
            Function.identity(), v -> true, "a directory"));

    // ---- generation defaults (per-request values override them)
    public static final Setting<Integer> MAX_NEW_TOKENS = add(integer("generation", "maxNewTokens", "32",
            "Most tokens generated per sequence.", 1, 1 << 20));
    public static final Setting<Double> TEMPERATURE = add(decimal("generation", "temperature", "0",
            "Sampling temperature; 0 means greedy. The model's generation_config.json sampling values (do_sample, "
                    + "temperature, top_k, top_p) are not applied: these settings decide, so a temperature here samples "
                    + "as transformers' do_sample=True with top_k=0 unless topK is set.", 0, 100));
    public static final Setting<Integer> TOP_K = add(integer("generation", "topK", "0",
            "Keep only the k most likely tokens (and any tied with the k-th) before sampling; 0 disables.", 0,
            Integer.MAX_VALUE));
    public static final Setting<Double> TOP_P = add(decimal("generation", "topP", "1",
            "Nucleus sampling: keep the smallest set of tokens whose probability reaches p; 1 disables.", 1e-9, 1));
    public static final Setting<Double> REPETITION_PENALTY = add(decimal("generation", "repetitionPenalty", "1",
            "Divide positive (multiply negative) logits of tokens already present by this; 1 disables.", 1e-9, 100));
    public static final Setting<Long> SEED = add(new Setting<>("generation", "seed", "long", "0",
            "Sampling seed of the job. A request's own seed, if given, wins; a request without one samples with a seed "
                    + "derived from this and its id, so identical prompts in different rows differ while every run gives each "
                    + "row the same. Same seed, same output, whatever the batch.",
            Long::parseLong, v -> true, "a 64-bit integer"));
    public static final Setting<List<Integer>> STOP_TOKEN_IDS = add(new Setting<>("generation", "stopTokenIds",
            "comma-separated ints", "", "Token ids that end a sequence, in addition to the model's EOS.",
            Settings::intList, v -> v.stream().allMatch(i -> i >= 0), "non-negative token ids"));

    // ---- KV cache placement and the CSD tier
    public static final Setting<String> KV_CACHE = add(choice("kv", "kvCache", "memory",
            "Where the KV cache lives: memory (host memory, in the type of the model's key projection: F16 or BF16 "
                    + "for half-precision models, F32 otherwise; attention on the host CPU threads: FlexGen's CPU "
                    + "delegation), gpu (GPU memory in F16, attention on the GPU; needs backend cuda), csd "
                    + "(computational storage with attention near storage), or storage (plain storage read back to the "
                    + "host: the FlexGen baseline).",
            "memory", "gpu", "csd", "storage"));
    public static final Setting<List<Path>> CSD = add(new Setting<>("kv", "csd", "comma-separated directories", "",
            "Device directories, one per (emulated) computational storage device. In Spark, taken from the csd "
                    + "resource when the cluster assigns one.",
            Settings::pathList, v -> true, "directories"));
    public static final Setting<Integer> WRITEBACK_TOKENS = add(integer("kv", "writebackTokens", "16",
            "Delayed KV writeback: new keys and values wait in host memory until this many tokens fill a page.", 1, 4096));
    public static final Setting<Double> XCACHE_FRACTION = add(new Setting<>("kv", "xcacheFraction", "auto or 0..1", "auto",
            "Cooperative X-cache: fraction of sequences whose layer input X is kept instead of K and V, with K and V "
                    + "recomputed by the compute backend. auto applies INF2's rule 2·B_link/(B_storage+B_link), rounded to "
                    + "a power of two and capped at 1/2 (so the devices always keep work), from bandwidths measured at start-up, "
                    + "and 0 where X is larger than K plus V.",
            s -> s.equalsIgnoreCase("auto") ? Double.NaN : Double.parseDouble(s),
            v -> v.isNaN() || (v >= 0 && v <= 1), "auto or a number from 0 to 1"));
    public static final Setting<Integer> CSD_THREADS = add(integer("kv", "csdThreads", "2",
            "Near-storage compute threads per emulated device.", 1, 256));

    public static List<Setting<?>> all() {
        return Collections.unmodifiableList(ALL);
    }

    /** Settings by camelCase name. */
    public static Map<String, Setting<?>> byName(List<Setting<?>> settings) {
        Map<String, Setting<?>> m = new LinkedHashMap<>();
        settings.forEach(s -> m.put(s.name(), s));
        return m;
    }

    private static <T> Setting<T> add(Setting<T> s) {
        ALL.add(s);
        return s;
    }

    public static Setting<Integer> integer(String group, String name, String dflt, String doc, int min, int max) {
        return new Setting<>(group, name, "int", dflt, doc, Integer::parseInt, v -> v >= min && v <= max,
                max == Integer.MAX_VALUE ? "at least " + min : "from " + min + " to " + max);
    }

    public static Setting<Double> decimal(String group, String name, String dflt, String doc, double min, double max) {
        return new Setting<>(group, name, "number", dflt, doc, Double::parseDouble,
                v -> !v.isNaN() && v >= min && v <= max, "from " + fmt(min) + " to " + fmt(max));
    }

    public static Setting<String> choice(String group, String name, String dflt, String doc, String... values) {
        List<String> allowed = Arrays.asList(values);
        Predicate<String> ok = allowed::contains;
        return new Setting<>(group, name, String.join("|", values), dflt, doc, Setting::lower, ok,
                "one of " + String.join(", ", values));
    }

    public static Setting<Boolean> flag(String group, String name, String dflt, String doc) {
        return new Setting<>(group, name, "boolean", dflt, doc, s -> switch (Setting.lower(s)) {
            case "true", "yes", "1" -> true;
            case "false", "no", "0" -> false;
            default -> throw new IllegalArgumentException("not a boolean");
        }, v -> true, "true or false");
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }

    static List<Integer> intList(String s) {
        List<Integer> out = new ArrayList<>();
        for (String part : s.split(",")) {
            if (!part.isBlank()) {
                out.add(Integer.parseInt(part.trim()));
            }
        }
        return List.copyOf(out);
    }

    /** Placement percentages as {@link #PERCENT} documents them (empty means unset). */
    static boolean validPercent(List<Integer> p) {
        if (p.isEmpty()) {
            return true;
        }
        if (p.size() != 6 || p.stream().anyMatch(v -> v < 0 || v > 100)) {
            return false;
        }
        for (int i = 0; i < 6; i += 2) {
            if (p.get(i) + p.get(i + 1) > 100) {
                return false;
            }
        }
        boolean cacheInOneTier = p.get(2) == 100 || p.get(3) == 100 || p.get(2) + p.get(3) == 0;
        boolean activationsInMemory = p.get(4) == 100 || p.get(5) == 100;
        return cacheInOneTier && activationsInMemory;
    }

    /** "40g", "512m", "4096" (bytes), binary multiples. */
    static long bytes(String s) {
        String t = s.trim().toLowerCase(java.util.Locale.ROOT);
        if (t.endsWith("b")) {
            t = t.substring(0, t.length() - 1);
        }
        int shift = switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            default -> 0;
        };
        if (shift > 0) {
            t = t.substring(0, t.length() - 1);
        }
        long v = Long.parseLong(t.trim());
        if (v < 0 || v > (Long.MAX_VALUE >> shift)) {
            throw new IllegalArgumentException("size out of range");
        }
        return v << shift;
    }

    static List<Path> pathList(String s) {
        List<Path> out = new ArrayList<>();
        for (String part : s.split(",")) {
            if (!part.isBlank()) {
                out.add(Path.of(part.trim()));
            }
        }
        return List.copyOf(out);
    }
}
