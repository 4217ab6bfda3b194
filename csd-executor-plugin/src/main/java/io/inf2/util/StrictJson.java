package io.inf2.util;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

/**
 * JSON as the files users hand the engine must be: one document with nothing after it and no key
 * twice (a second "num_hidden_layers" silently winning is corrupt data, not a choice), and problems
 * described on one line without Jackson's source excerpts.
 */
public final class StrictJson {

    public static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private StrictJson() {
    }

    /** "line 3 column 7: Duplicate field 'x'", or the message alone where the parser knows no location. */
    public static String problem(JsonProcessingException e) {
        String what = firstLine(e.getOriginalMessage());
        JsonLocation at = e.getLocation();
        return at == null ? what : "line " + at.getLineNr() + " column " + at.getColumnNr() + ": " + what;
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "(no detail)";
        }
        int newline = message.indexOf('\n');
        return (newline < 0 ? message : message.substring(0, newline)).strip();
    }
}
