package io.inf2.model.tokenizer;

/** Text to token ids and back, with the model's special-token conventions. Implementations are thread-safe. */
public interface Tokenizer extends AutoCloseable {

    /** Token ids of {@code text}, with the model's BOS (or other post-processing) when {@code addSpecialTokens}. */
    int[] encode(String text, boolean addSpecialTokens);

    /** Text of {@code ids}; special tokens are dropped when {@code skipSpecialTokens}. */
    String decode(int[] ids, boolean skipSpecialTokens);

    int vocabSize();

    /** The id of a token string, or -1 when the vocabulary lacks it. */
    int tokenId(String token);

    @Override
    void close();
}
