package io.inf2.util;

/** Text from files, templates or rows quoted inside a one-line error message. */
public final class OneLine {

    private OneLine() {
    }

    /**
     * {@code text} made safe to quote in a one-line error: line breaks and other control characters
     * escaped, and cut to {@code max} characters, since it comes from untrusted input.
     */
    public static String excerpt(String text, int max) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            if (sb.length() >= max) {
                return sb.append("...").toString();
            }
            char c = text.charAt(i);
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (Character.isISOControl(c) || Character.getType(c) == Character.LINE_SEPARATOR
                            || Character.getType(c) == Character.PARAGRAPH_SEPARATOR) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.toString();
    }
}
