package io.inf2.model.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes real, deterministic Hugging Face tokenizers ({@code tokenizer.json} and {@code tokenizer_config.json}) in
 * three model families' styles, so that tests and synthetic models have tokenizers that Hugging Face
 * {@code tokenizers} itself loads. The same style always gives byte-identical files.
 *
 * <p>Id layouts:
 * <ul>
 *   <li>{@link TokenizerStyle#GPT2}: {@code <s>}=0, {@code <pad>}=1, {@code </s>}=2, {@code <unk>}=3 (OPT's order),
 *       then GPT-2's 50,256 byte-level tokens with GPT-2 rank r at id r+4 ({@value #GPT2_SPECIALS} specials);
 *       50,260 ids. As in OPT, {@code </s>} is prepended as BOS and also ends text; {@code <pad>} pads. GPT-2's
 *       {@code <|endoftext|>} is left out: OPT does not use it.</li>
 *   <li>{@link TokenizerStyle#LLAMA2}: {@code <unk>}=0, {@code <s>}=1, {@code </s>}=2, byte tokens
 *       {@code <0x00>}..{@code <0xFF>} at 3..258, then the trained tokens; at most {@value #LLAMA2_VOCAB_TARGET}
 *       ids. BOS {@code <s>}, EOS {@code </s>}, no padding token.</li>
 *   <li>{@link TokenizerStyle#LLAMA3}: cl100k's 100,256 tokens at their ranks, then 256 special tokens laid out as
 *       LLaMA-3.1's are after its own vocabulary ({@code <|begin_of_text|>}, {@code <|end_of_text|>}, ...,
 *       {@code <|start_header_id|>}=+6, {@code <|end_header_id|>}=+7, {@code <|eom_id|>}=+8, {@code <|eot_id|>}=+9,
 *       {@code <|python_tag|>}=+10, the rest reserved); 100,512 ids. BOS {@code <|begin_of_text|>}; EOS
 *       {@code <|eot_id|>}, as in LLaMA-3-Instruct, whose chat template this style carries; no padding token.</li>
 * </ul>
 */
public final class TokenizerJsonWriter {

    static final int GPT2_SPECIALS = 4;
    static final int LLAMA2_VOCAB_TARGET = 8000;
    /** Characters and pairs rarer than this in the corpus stay out of the LLaMA-2-style vocabulary. */
    static final int LLAMA2_MIN_FREQUENCY = 2;
    /** UDHR translations in 31 languages plus a self-written code section; provenance in the .NOTICE beside it. */
    static final String LLAMA2_CORPUS = "llama2-training-corpus.txt";
    /** The pre-tokenizer split pattern of cl100k_base, which LLaMA-3 also uses. */
    static final String CL100K_SPLIT_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
            + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3_CHAT_TEMPLATE = "{{- bos_token }}"
            + "{%- for message in messages %}"
            + "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
            + " + '<|eot_id|>' }}"
            + "{%- endfor %}"
            + "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final Map<TokenizerStyle, BuiltFiles> BUILT = new EnumMap<>(TokenizerStyle.class);

    /** The two files of one style, built once per JVM: building LLaMA-2's trains its merges. */
    record BuiltFiles(byte[] tokenizerJson, byte[] tokenizerConfigJson, WrittenTokenizer ids) {
    }

    private TokenizerJsonWriter() {
    }

    /** Writes {@code tokenizer.json} and {@code tokenizer_config.json} of {@code style} into {@code dir} (created if needed). */
    public static WrittenTokenizer write(Path dir, TokenizerStyle style) {
        BuiltFiles files = built(style);
        try {
            Files.createDirectories(dir);
            Files.write(dir.resolve("tokenizer.json"), files.tokenizerJson());
            Files.write(dir.resolve("tokenizer_config.json"), files.tokenizerConfigJson());
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write the " + style + " tokenizer into " + dir + ": " + e.getMessage(), e);
        }
        return files.ids();
    }

    /** Writes {@code <outDir>/{gpt2,llama2,llama3}/tokenizer.json} (and their configs), for the reference fixtures. */
    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: TokenizerJsonWriter <outDir>   (writes <outDir>/{gpt2,llama2,llama3}/tokenizer.json)");
            System.exit(2);
        }
        for (TokenizerStyle style : TokenizerStyle.values()) {
            Path dir = Path.of(args[0], style.name().toLowerCase(Locale.ROOT));
            WrittenTokenizer ids = write(dir, style);
            System.out.println(dir.resolve("tokenizer.json") + " " + ids);
        }
    }

    private static synchronized BuiltFiles built(TokenizerStyle style) {
        return BUILT.computeIfAbsent(style, TokenizerJsonWriter::build);
    }

    /** Builds the files of {@code style} from scratch, bypassing the per-JVM cache. */
    static BuiltFiles build(TokenizerStyle style) {
        return switch (style) {
            case GPT2 -> gpt2();
            case LLAMA2 -> llama2();
            case LLAMA3 -> llama3();
        };
    }

    private static BuiltFiles gpt2() {
        TiktokenVocabulary gpt2 = TiktokenVocabulary.load(TiktokenVocabulary.GPT2_RESOURCE);
        List<String> specials = List.of("<s>", "<pad>", "</s>", "<unk>");
        var vocab = new ArrayList<String>(specials);
        for (int rank = 0; rank < gpt2.size(); rank++) {
            vocab.add(ByteLevelAlphabet.spell(gpt2.bytes(rank)));
        }
        List<String> merges = byteLevelMerges(gpt2, vocab, GPT2_SPECIALS);
        var ids = new WrittenTokenizer(vocab.size(), 2, 2, 1);

        ObjectNode root = header(addedTokens(specials, 0));
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel(false, true));
        root.set("post_processor", prependTemplate("</s>", ids.bosId()));
        root.set("decoder", byteLevel(true, true));
        root.set("model", bpeModel(vocab, merges, null, false, false, false));

        Map<String, Object> config = baseConfig("</s>", "</s>", "<pad>", "<unk>", 2048);
        return new BuiltFiles(bytes(root), bytes(JSON.valueToTree(config)), ids);
    }

    private static BuiltFiles llama3() {
        TiktokenVocabulary cl100k = TiktokenVocabulary.load(TiktokenVocabulary.CL100K_RESOURCE);
        var vocab = new ArrayList<String>(cl100k.size());
        for (int rank = 0; rank < cl100k.size(); rank++) {
            vocab.add(ByteLevelAlphabet.spell(cl100k.bytes(rank)));
        }
        List<String> merges = byteLevelMerges(cl100k, vocab, 0);
        List<String> specials = llama3Specials();
        int first = vocab.size();
        var ids = new WrittenTokenizer(first + specials.size(), first, first + specials.indexOf("<|eot_id|>"), -1);

        ObjectNode root = header(addedTokens(specials, first));
        root.putNull("normalizer");
        ObjectNode preTokenizer = NODES.objectNode().put("type", "Sequence");
        ArrayNode steps = preTokenizer.putArray("pretokenizers");
        ObjectNode split = steps.addObject().put("type", "Split");
        split.putObject("pattern").put("Regex", CL100K_SPLIT_PATTERN);
        split.put("behavior", "Isolated").put("invert", false);
        ObjectNode byteLevel = byteLevel(false, true);
        byteLevel.put("use_regex", false);
        steps.add(byteLevel);
        root.set("pre_tokenizer", preTokenizer);
        root.set("post_processor", prependTemplate("<|begin_of_text|>", ids.bosId()));
        root.set("decoder", byteLevel(true, true));
        root.set("model", bpeModel(vocab, merges, null, false, false, true));

        Map<String, Object> config = baseConfig("<|begin_of_text|>", "<|eot_id|>", null, null, 8192);
        config.put("chat_template", LLAMA3_CHAT_TEMPLATE);
        return new BuiltFiles(bytes(root), bytes(JSON.valueToTree(config)), ids);
    }

    private static BuiltFiles llama2() {
        List<String> specials = List.of("<unk>", "<s>", "</s>");
        var vocab = new ArrayList<String>(specials);
        for (int b = 0; b < 256; b++) {
            vocab.add(String.format(Locale.ROOT, "<0x%02X>", b));
        }
        BpeTrainer.Vocabulary trained = BpeTrainer.train(readCorpus(), LLAMA2_VOCAB_TARGET - vocab.size(), LLAMA2_MIN_FREQUENCY);
        var reserved = new HashSet<>(vocab);
        for (String token : trained.tokens()) {
            if (reserved.contains(token)) {
                throw new IllegalStateException("Trained token '" + token + "' collides with a reserved LLaMA-2 token");
            }
            vocab.add(token);
        }
        List<String> merges = trained.merges().stream().map(m -> m.left() + " " + m.right()).toList();
        var ids = new WrittenTokenizer(vocab.size(), 1, 2, -1);

        ObjectNode root = header(addedTokens(specials, 0));
        ObjectNode normalizer = NODES.objectNode().put("type", "Sequence");
        ArrayNode normalizers = normalizer.putArray("normalizers");
        normalizers.addObject().put("type", "Prepend").put("prepend", BpeTrainer.METASPACE_STRING);
        normalizers.add(replace(" ", BpeTrainer.METASPACE_STRING));
        root.set("normalizer", normalizer);
        root.putNull("pre_tokenizer");
        root.set("post_processor", prependTemplate("<s>", ids.bosId()));
        ObjectNode decoder = NODES.objectNode().put("type", "Sequence");
        ArrayNode decoders = decoder.putArray("decoders");
        decoders.add(replace(BpeTrainer.METASPACE_STRING, " "));
        decoders.addObject().put("type", "ByteFallback");
        decoders.addObject().put("type", "Fuse");
        decoders.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        root.set("decoder", decoder);
        root.set("model", bpeModel(vocab, merges, "<unk>", true, true, false));

        Map<String, Object> config = baseConfig("<s>", "</s>", null, "<unk>", 4096);
        config.put("legacy", true);
        return new BuiltFiles(bytes(root), bytes(JSON.valueToTree(config)), ids);
    }

    /** LLaMA-3.1's 256 special tokens in their order. */
    static List<String> llama3Specials() {
        var specials = new ArrayList<>(List.of("<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"));
        for (int reserved = 3; specials.size() < 256; reserved++) {
            specials.add("<|reserved_special_token_" + reserved + "|>");
        }
        return specials;
    }

    private static List<String> byteLevelMerges(TiktokenVocabulary ranks, List<String> vocab, int idOffset) {
        var merges = new ArrayList<String>(ranks.size());
        for (int rank = 0; rank < ranks.size(); rank++) {
            int[] parts = ranks.mergeOf(rank);
            if (parts != null) {
                merges.add(vocab.get(parts[0] + idOffset) + " " + vocab.get(parts[1] + idOffset));
            }
        }
        return merges;
    }

    private static String readCorpus() {
        try (InputStream in = TokenizerJsonWriter.class.getResourceAsStream(LLAMA2_CORPUS)) {
            if (in == null) {
                throw new IllegalStateException("Resource io/inf2/model/tokenizer/" + LLAMA2_CORPUS + " is missing from the class path");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + LLAMA2_CORPUS + ": " + e.getMessage(), e);
        }
    }

    private static ObjectNode header(ArrayNode addedTokens) {
        ObjectNode root = NODES.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        root.set("added_tokens", addedTokens);
        return root;
    }

    private static ArrayNode addedTokens(List<String> specials, int firstId) {
        ArrayNode added = NODES.arrayNode();
        for (int i = 0; i < specials.size(); i++) {
            added.addObject()
                    .put("id", firstId + i)
                    .put("content", specials.get(i))
                    .put("single_word", false)
                    .put("lstrip", false)
                    .put("rstrip", false)
                    .put("normalized", false)
                    .put("special", true);
        }
        return added;
    }

    private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
        return NODES.objectNode().put("type", "ByteLevel")
                .put("add_prefix_space", addPrefixSpace)
                .put("trim_offsets", trimOffsets)
                .put("use_regex", true);
    }

    private static ObjectNode replace(String pattern, String content) {
        ObjectNode node = NODES.objectNode().put("type", "Replace");
        node.putObject("pattern").put("String", pattern);
        node.put("content", content);
        return node;
    }

    /** A TemplateProcessing post-processor that puts {@code bos} before each sequence. */
    private static ObjectNode prependTemplate(String bos, int bosId) {
        ObjectNode node = NODES.objectNode().put("type", "TemplateProcessing");
        ArrayNode single = node.putArray("single");
        single.add(specialPiece(bos, 0));
        single.add(sequencePiece("A", 0));
        ArrayNode pair = node.putArray("pair");
        pair.add(specialPiece(bos, 0));
        pair.add(sequencePiece("A", 0));
        pair.add(specialPiece(bos, 1));
        pair.add(sequencePiece("B", 1));
        ObjectNode token = node.putObject("special_tokens").putObject(bos);
        token.put("id", bos);
        token.putArray("ids").add(bosId);
        token.putArray("tokens").add(bos);
        return node;
    }

    private static ObjectNode specialPiece(String token, int typeId) {
        ObjectNode node = NODES.objectNode();
        node.putObject("SpecialToken").put("id", token).put("type_id", typeId);
        return node;
    }

    private static ObjectNode sequencePiece(String id, int typeId) {
        ObjectNode node = NODES.objectNode();
        node.putObject("Sequence").put("id", id).put("type_id", typeId);
        return node;
    }

    private static ObjectNode bpeModel(List<String> vocab, List<String> merges, String unkToken,
                                       boolean fuseUnk, boolean byteFallback, boolean ignoreMerges) {
        ObjectNode model = NODES.objectNode().put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", unkToken);
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", fuseUnk);
        model.put("byte_fallback", byteFallback);
        model.put("ignore_merges", ignoreMerges);
        ObjectNode vocabNode = model.putObject("vocab");
        var seen = new HashMap<String, Integer>();
        for (int id = 0; id < vocab.size(); id++) {
            Integer previous = seen.putIfAbsent(vocab.get(id), id);
            if (previous != null) {
                throw new IllegalStateException("Token '" + vocab.get(id) + "' has two ids, " + previous + " and " + id);
            }
            vocabNode.put(vocab.get(id), id);
        }
        ArrayNode mergeArray = model.putArray("merges");
        merges.forEach(mergeArray::add);
        return model;
    }

    /** tokenizer_config.json fields transformers reads; {@code null} values are written as JSON null. */
    private static Map<String, Object> baseConfig(String bos, String eos, String pad, String unk, int maxLength) {
        var config = new LinkedHashMap<String, Object>();
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        config.put("bos_token", bos);
        config.put("eos_token", eos);
        config.put("pad_token", pad);
        config.put("unk_token", unk);
        config.put("add_bos_token", true);
        config.put("add_eos_token", false);
        config.put("model_max_length", maxLength);
        // transformers would otherwise rewrite " ." as "." when decoding, which breaks exact round trips.
        config.put("clean_up_tokenization_spaces", false);
        return config;
    }

    private static byte[] bytes(JsonNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
