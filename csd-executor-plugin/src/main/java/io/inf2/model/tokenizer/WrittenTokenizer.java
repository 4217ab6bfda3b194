package io.inf2.model.tokenizer;

/**
 * The ids a model config needs for a tokenizer {@link TokenizerJsonWriter} wrote.
 *
 * @param vocabSize one more than the largest token id (special tokens included)
 * @param padId the padding token's id, or -1 when the style has none
 */
public record WrittenTokenizer(int vocabSize, int bosId, int eosId, int padId) {
}
