package io.inf2.spark.chat;

import java.io.Serializable;
import java.util.Objects;

/** One turn of a chat: a role ("system", "user", "assistant", ...) and its text (null for none). */
public record ChatMessage(String role, String content) implements Serializable {
    public ChatMessage {
        Objects.requireNonNull(role, "role");
    }
}
