package io.inf2.model.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;

/**
 * A small, deterministic byte-pair-encoding trainer in the style of SentencePiece's BPE as LLaMA-2 used it: spaces
 * are spelt {@value #METASPACE_STRING} and a word carries its leading one, digits are never merged, and merges never
 * join characters of different scripts (or letters with punctuation). Characters left out of the alphabet are meant
 * to be encoded through byte fallback, so they take part in no merge.
 *
 * <p>Rules, all of them deterministic (the same corpus and budget give the same vocabulary, merge for merge):
 * <ol>
 *   <li>Each corpus line becomes {@code ▁ + line} with every space replaced by {@code ▁}, as the tokenizer's
 *       normalizer does at encode time.</li>
 *   <li>A line is cut into pieces; no merge crosses a piece boundary. A piece is a run of characters of one class
 *       (one script, with Han, Hiragana and Katakana as one; or non-letters; combining marks and Common-script
 *       letters join the run before them), preceded by at most one {@code ▁}. Of several spaces before a word, all
 *       but the last form a space-only piece. Each digit is a piece of its own, and so is a {@code ▁} before a
 *       digit. Control characters end a piece and belong to none.</li>
 *   <li>The alphabet is every non-control character seen at least {@code minFrequency} times, most frequent first,
 *       ties by code point, cut to the token budget.</li>
 *   <li>Every step merges the adjacent pair with the highest count, weighted by piece frequency; ties go to the
 *       pair whose left token has the smaller id, then whose right token has the smaller id, where ids number the
 *       alphabet in its order and then new tokens in the order they were made. A pair whose merge would be longer
 *       than {@value #MAX_TOKEN_LENGTH} characters is never merged. Training stops when the alphabet plus the new
 *       tokens fill the budget, or when no pair occurs {@code minFrequency} times.</li>
 * </ol>
 */
public final class BpeTrainer {

    public static final char METASPACE = '\u2581';
    static final String METASPACE_STRING = "\u2581";
    /** Longest token the trainer makes, in code points (SentencePiece's default piece limit). */
    public static final int MAX_TOKEN_LENGTH = 16;

    private static final int DIGIT_CLASS = -2;
    private static final int SYMBOL_CLASS = -1;
    private static final int NO_CLASS = -3;

    /** One learned merge: {@code left} and {@code right} adjacent become {@code left + right}. */
    public record Merge(String left, String right) {
        public String merged() {
            return left + right;
        }
    }

    /** The characters that start as tokens, and the merges in the order they were learned. */
    public record Vocabulary(List<String> alphabet, List<Merge> merges) {
        public Vocabulary {
            alphabet = List.copyOf(alphabet);
            merges = List.copyOf(merges);
        }

        /** Alphabet followed by the distinct merge results, in learning order: the trained tokens in id order. */
        public List<String> tokens() {
            var seen = new HashSet<String>(alphabet);
            var tokens = new ArrayList<String>(alphabet);
            for (Merge merge : merges) {
                if (seen.add(merge.merged())) {
                    tokens.add(merge.merged());
                }
            }
            return tokens;
        }
    }

    private BpeTrainer() {
    }

    /**
     * Learns a vocabulary of at most {@code tokenBudget} tokens (alphabet included) from {@code corpus}.
     *
     * @param minFrequency how often a character must occur to enter the alphabet, and a pair to be merged (at least 1)
     */
    public static Vocabulary train(String corpus, int tokenBudget, int minFrequency) {
        if (tokenBudget < 1 || minFrequency < 1) {
            throw new IllegalArgumentException("tokenBudget and minFrequency must be positive, got "
                    + tokenBudget + " and " + minFrequency);
        }
        Map<String, Integer> pieceCounts = countPieces(corpus);
        List<String> alphabet = alphabet(pieceCounts, tokenBudget, minFrequency);
        return new Training(pieceCounts, alphabet, tokenBudget, minFrequency).run();
    }

    /** The pieces of {@code corpus} (rule 2) with their frequencies, ordered by piece for a stable iteration. */
    static Map<String, Integer> countPieces(String corpus) {
        var counts = new TreeMap<String, Integer>();
        for (String line : corpus.split("\n", -1)) {
            splitLine(METASPACE + line.replace(' ', METASPACE), piece -> counts.merge(piece, 1, Integer::sum));
        }
        return counts;
    }

    private static void splitLine(String text, java.util.function.Consumer<String> out) {
        var piece = new StringBuilder();
        int spaces = 0;         // leading ▁ of the piece being built
        int pieceClass = NO_CLASS; // class of the piece's body; NO_CLASS while it has none
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (cp == METASPACE) {
                if (pieceClass != NO_CLASS) {
                    emit(piece, out);
                    pieceClass = NO_CLASS;
                    spaces = 0;
                }
                piece.append(METASPACE);
                spaces++;
                continue;
            }
            if (Character.getType(cp) == Character.CONTROL) {
                emit(piece, out);
                pieceClass = NO_CLASS;
                spaces = 0;
                continue;
            }
            int cls = classOf(cp, pieceClass);
            if (pieceClass == NO_CLASS) {
                if (spaces > 1) {
                    piece.setLength(spaces - 1);
                    emit(piece, out);
                    piece.append(METASPACE);
                }
                if (cls == DIGIT_CLASS) {
                    emit(piece, out);
                }
            } else if (cls != pieceClass || cls == DIGIT_CLASS) {
                emit(piece, out);
            }
            spaces = 0;
            piece.appendCodePoint(cp);
            pieceClass = cls;
        }
        emit(piece, out);
    }

    private static void emit(StringBuilder piece, java.util.function.Consumer<String> out) {
        if (!piece.isEmpty()) {
            out.accept(piece.toString());
            piece.setLength(0);
        }
    }

    private static int classOf(int cp, int previousClass) {
        if (Character.isDigit(cp)) {
            return DIGIT_CLASS;
        }
        int type = Character.getType(cp);
        boolean mark = type == Character.NON_SPACING_MARK || type == Character.ENCLOSING_MARK
                || type == Character.COMBINING_SPACING_MARK;
        if (mark && previousClass != NO_CLASS && previousClass != DIGIT_CLASS) {
            return previousClass;
        }
        if (!Character.isLetter(cp) && !mark) {
            return SYMBOL_CLASS;
        }
        Character.UnicodeScript script = Character.UnicodeScript.of(cp);
        switch (script) {
            case COMMON, INHERITED -> {
                return previousClass >= 0 ? previousClass : SYMBOL_CLASS;
            }
            case HIRAGANA, KATAKANA -> {
                return Character.UnicodeScript.HAN.ordinal();
            }
            default -> {
                return script.ordinal();
            }
        }
    }

    private static List<String> alphabet(Map<String, Integer> pieceCounts, int tokenBudget, int minFrequency) {
        var charCounts = new HashMap<Integer, Long>();
        pieceCounts.forEach((piece, count) -> piece.codePoints()
                .forEach(cp -> charCounts.merge(cp, (long) count, Long::sum)));
        return charCounts.entrySet().stream()
                .filter(e -> e.getValue() >= minFrequency)
                .sorted(Map.Entry.<Integer, Long>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
                .limit(tokenBudget)
                .map(e -> Character.toString(e.getKey()))
                .toList();
    }

    /** The merge loop over the pieces, with incremental pair counts and a lazily cleaned priority queue. */
    private static final class Training {
        private final int tokenBudget;
        private final int minFrequency;
        private final List<String> tokens = new ArrayList<>();
        private final Map<String, Integer> idOf = new HashMap<>();
        private final List<Integer> tokenLength = new ArrayList<>();
        private final int[][] words;
        private final long[] wordFrequency;
        private final Map<Long, Long> pairCount = new HashMap<>();
        private final Map<Long, Set<Integer>> pairWords = new HashMap<>();
        private final PriorityQueue<Candidate> queue = new PriorityQueue<>(Comparator
                .comparingLong(Candidate::count).reversed()
                .thenComparingInt(Candidate::left)
                .thenComparingInt(Candidate::right));

        private record Candidate(long count, int left, int right) {
        }

        Training(Map<String, Integer> pieceCounts, List<String> alphabet, int tokenBudget, int minFrequency) {
            this.tokenBudget = tokenBudget;
            this.minFrequency = minFrequency;
            alphabet.forEach(this::addToken);
            var wordList = new ArrayList<int[]>();
            var frequencies = new ArrayList<Long>();
            pieceCounts.forEach((piece, count) -> {
                // Characters outside the alphabet cut the piece: byte fallback encodes them, alone.
                var symbols = new ArrayList<Integer>();
                piece.codePoints().forEach(cp -> {
                    Integer id = idOf.get(Character.toString(cp));
                    if (id != null) {
                        symbols.add(id);
                    } else {
                        flushWord(symbols, count, wordList, frequencies);
                    }
                });
                flushWord(symbols, count, wordList, frequencies);
            });
            words = wordList.toArray(int[][]::new);
            wordFrequency = frequencies.stream().mapToLong(Long::longValue).toArray();
            var initial = new HashMap<Long, Long>();
            for (int w = 0; w < words.length; w++) {
                addPairs(w, initial);
            }
            initial.forEach((pair, delta) -> applyDelta(pair, delta));
        }

        private static void flushWord(List<Integer> symbols, int count, List<int[]> words, List<Long> frequencies) {
            if (symbols.size() > 1) {
                words.add(symbols.stream().mapToInt(Integer::intValue).toArray());
                frequencies.add((long) count);
            }
            symbols.clear();
        }

        private int addToken(String token) {
            Integer existing = idOf.get(token);
            if (existing != null) {
                return existing;
            }
            int id = tokens.size();
            tokens.add(token);
            idOf.put(token, id);
            tokenLength.add(token.codePointCount(0, token.length()));
            return id;
        }

        Vocabulary run() {
            int alphabetSize = tokens.size();
            var merges = new ArrayList<Merge>();
            while (tokens.size() < tokenBudget) {
                Candidate best = queue.poll();
                if (best == null) {
                    break;
                }
                long key = key(best.left, best.right);
                Long current = pairCount.get(key);
                if (current == null) {
                    continue;
                }
                if (current != best.count) {
                    queue.add(new Candidate(current, best.left, best.right));
                    continue;
                }
                if (current < minFrequency) {
                    break;
                }
                String left = tokens.get(best.left);
                String right = tokens.get(best.right);
                merges.add(new Merge(left, right));
                merge(best.left, best.right, addToken(left + right));
            }
            return new Vocabulary(tokens.subList(0, alphabetSize), merges);
        }

        private void merge(int left, int right, int merged) {
            long key = key(left, right);
            var deltas = new HashMap<Long, Long>();
            Set<Integer> affected = pairWords.remove(key);
            for (int w : affected.stream().sorted().toList()) {
                int[] symbols = words[w];
                if (!contains(symbols, left, right)) {
                    continue;
                }
                removePairs(w, deltas);
                var result = new int[symbols.length];
                int n = 0;
                for (int i = 0; i < symbols.length; i++) {
                    if (i + 1 < symbols.length && symbols[i] == left && symbols[i + 1] == right) {
                        result[n++] = merged;
                        i++;
                    } else {
                        result[n++] = symbols[i];
                    }
                }
                words[w] = Arrays.copyOf(result, n);
                addPairs(w, deltas);
            }
            deltas.forEach(this::applyDelta);
        }

        private static boolean contains(int[] symbols, int left, int right) {
            for (int i = 0; i + 1 < symbols.length; i++) {
                if (symbols[i] == left && symbols[i + 1] == right) {
                    return true;
                }
            }
            return false;
        }

        private void addPairs(int w, Map<Long, Long> deltas) {
            int[] symbols = words[w];
            for (int i = 0; i + 1 < symbols.length; i++) {
                if (tokenLength.get(symbols[i]) + tokenLength.get(symbols[i + 1]) <= MAX_TOKEN_LENGTH) {
                    long key = key(symbols[i], symbols[i + 1]);
                    deltas.merge(key, wordFrequency[w], Long::sum);
                    pairWords.computeIfAbsent(key, k -> new HashSet<>()).add(w);
                }
            }
        }

        private void removePairs(int w, Map<Long, Long> deltas) {
            int[] symbols = words[w];
            for (int i = 0; i + 1 < symbols.length; i++) {
                if (tokenLength.get(symbols[i]) + tokenLength.get(symbols[i + 1]) <= MAX_TOKEN_LENGTH) {
                    deltas.merge(key(symbols[i], symbols[i + 1]), -wordFrequency[w], Long::sum);
                }
            }
        }

        private void applyDelta(long key, long delta) {
            if (delta == 0) {
                return;
            }
            long count = pairCount.getOrDefault(key, 0L) + delta;
            if (count <= 0) {
                pairCount.remove(key);
                pairWords.remove(key);
                return;
            }
            pairCount.put(key, count);
            if (delta > 0) {
                queue.add(new Candidate(count, (int) (key >>> 32), (int) key));
            }
        }

        private static long key(int left, int right) {
            return ((long) left << 32) | (right & 0xFFFFFFFFL);
        }
    }
}
