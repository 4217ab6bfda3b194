package io.inf2.model.tokenizer;

/**
 * GPT-2's reversible byte-to-character table, the spelling Hugging Face byte-level BPE uses in its vocabulary and
 * merges. Printable Latin-1 bytes stand for themselves; the others (controls, space, soft hyphen) are shifted to
 * U+0100 and up, so that every token is a run of visible characters and a space never appears inside a token.
 */
final class ByteLevelAlphabet {

    private static final char[] CHAR_OF_BYTE = buildTable();

    private ByteLevelAlphabet() {
    }

    /** The vocabulary spelling of {@code bytes}. */
    static String spell(byte[] bytes) {
        var text = new StringBuilder(bytes.length);
        for (byte b : bytes) {
            text.append(CHAR_OF_BYTE[b & 0xFF]);
        }
        return text.toString();
    }

    private static char[] buildTable() {
        var table = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? (char) b : (char) (256 + shifted++);
        }
        return table;
    }
}
