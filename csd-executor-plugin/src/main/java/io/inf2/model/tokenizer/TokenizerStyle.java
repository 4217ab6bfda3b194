package io.inf2.model.tokenizer;

/** The tokenizer families {@link TokenizerJsonWriter} can write; each follows one model family's conventions. */
public enum TokenizerStyle {
    /** GPT-2's byte-level BPE with OPT's special tokens: {@code </s>} is both BOS and EOS, {@code <pad>} pads. */
    GPT2,
    /** SentencePiece-style BPE with byte fallback, as LLaMA-2 uses it; merges trained on a bundled corpus. */
    LLAMA2,
    /** cl100k byte-level BPE with LLaMA-3's special tokens, split pattern and chat template. */
    LLAMA3
}
