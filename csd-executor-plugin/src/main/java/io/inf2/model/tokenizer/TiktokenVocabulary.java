package io.inf2.model.tokenizer;

import com.knuddels.jtokkit.Encodings;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A real byte-level BPE vocabulary read from a tiktoken rank file that the jtokkit jar bundles ({@code base64-bytes
 * rank} per line), with the merge list Hugging Face's BPE needs derived from the ranks.
 *
 * <p>tiktoken stores no merges: it repeatedly joins the adjacent pair whose concatenation has the lowest rank. A
 * Hugging Face BPE instead applies an ordered list of pair merges. For each multi-byte token we replay tiktoken's own
 * procedure over the token's bytes, allowed to use only lower-ranked tokens; it ends in exactly two parts, and that
 * pair is the token's merge, ranked by the token's rank. For GPT-2 this reproduces its published merges list.
 */
final class TiktokenVocabulary {

    /** GPT-2's vocabulary (50,256 byte-level tokens, without {@code <|endoftext|>}). */
    static final String GPT2_RESOURCE = "r50k_base.tiktoken";
    /** The vocabulary LLaMA-3's tokenizer extends (100,256 byte-level tokens, no special tokens). */
    static final String CL100K_RESOURCE = "cl100k_base.tiktoken";

    private final String resource;
    private final List<byte[]> tokenBytes;
    private final int[][] mergeParts;

    private TiktokenVocabulary(String resource, List<byte[]> tokenBytes, int[][] mergeParts) {
        this.resource = resource;
        this.tokenBytes = tokenBytes;
        this.mergeParts = mergeParts;
    }

    /** Reads {@code resourceName} (one of the constants above) from the jtokkit jar and derives its merges. */
    static TiktokenVocabulary load(String resourceName) {
        List<byte[]> tokens = readRanks(resourceName);
        return new TiktokenVocabulary(resourceName, tokens, deriveMerges(resourceName, tokens));
    }

    int size() {
        return tokenBytes.size();
    }

    byte[] bytes(int rank) {
        return tokenBytes.get(rank).clone();
    }

    /** The two lower ranks whose merge makes {@code rank}, or null for a single-byte token. */
    int[] mergeOf(int rank) {
        int[] parts = mergeParts[rank];
        return parts == null ? null : parts.clone();
    }

    String resource() {
        return resource;
    }

    private static List<byte[]> readRanks(String resourceName) {
        String path = "/com/knuddels/jtokkit/" + resourceName;
        try (InputStream in = Encodings.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("Resource " + path + " is missing from the jtokkit jar on the class path");
            }
            var reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
            var tokens = new ArrayList<byte[]>();
            String line;
            int lineNumber = 0;
            while ((line = reader.readLine()) != null) {
                lineNumber++;
                if (line.isEmpty()) {
                    continue;
                }
                int space = line.indexOf(' ');
                try {
                    if (space < 0) {
                        throw new IllegalArgumentException("expected 'base64 rank'");
                    }
                    int rank = Integer.parseInt(line.substring(space + 1));
                    if (rank != tokens.size()) {
                        throw new IllegalArgumentException("rank " + rank + " where " + tokens.size() + " was expected");
                    }
                    tokens.add(Base64.getDecoder().decode(line.substring(0, space)));
                } catch (IllegalArgumentException e) {
                    throw new IllegalStateException(path + " line " + lineNumber + ": " + e.getMessage());
                }
            }
            return List.copyOf(tokens);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + path + ": " + e.getMessage(), e);
        }
    }

    private static int[][] deriveMerges(String resourceName, List<byte[]> tokens) {
        // ISO-8859-1 maps each byte to one char, so byte sequences become cheap, exact map keys.
        Map<String, Integer> rankOf = HashMap.newHashMap(tokens.size());
        for (int rank = 0; rank < tokens.size(); rank++) {
            rankOf.put(new String(tokens.get(rank), StandardCharsets.ISO_8859_1), rank);
        }
        for (int b = 0; b < 256; b++) {
            if (!rankOf.containsKey(String.valueOf((char) b))) {
                throw new IllegalStateException(resourceName + " lacks the single-byte token 0x" + Integer.toHexString(b));
            }
        }
        var merges = new int[tokens.size()][];
        for (int rank = 0; rank < tokens.size(); rank++) {
            if (tokens.get(rank).length > 1) {
                merges[rank] = lastMerge(resourceName, new String(tokens.get(rank), StandardCharsets.ISO_8859_1), rank, rankOf);
            }
        }
        return merges;
    }

    /** tiktoken's merge loop over {@code token}'s bytes using only ranks below {@code rank}; returns the final pair. */
    private static int[] lastMerge(String resourceName, String token, int rank, Map<String, Integer> rankOf) {
        var parts = new ArrayList<String>(token.length());
        for (int i = 0; i < token.length(); i++) {
            parts.add(token.substring(i, i + 1));
        }
        while (parts.size() > 2) {
            int bestIndex = -1;
            int bestRank = rank;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer joined = rankOf.get(parts.get(i) + parts.get(i + 1));
                if (joined != null && joined < bestRank) {
                    bestRank = joined;
                    bestIndex = i;
                }
            }
            if (bestIndex < 0) {
                break;
            }
            parts.set(bestIndex, parts.get(bestIndex) + parts.remove(bestIndex + 1));
        }
        if (parts.size() != 2) {
            throw new IllegalStateException(resourceName + ": token of rank " + rank
                    + " is not the merge of two lower-ranked tokens (" + parts.size() + " parts remain)");
        }
        return new int[] {rankOf.get(parts.get(0)), rankOf.get(parts.get(1))};
    }
}
