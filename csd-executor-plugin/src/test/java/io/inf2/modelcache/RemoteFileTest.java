package io.inf2.modelcache;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.inf2.modelcache.RemoteDirectory.RemoteFile;
import org.junit.jupiter.api.Test;

class RemoteFileTest {

    @Test
    void refusesPathsThatCouldLeaveTheCacheEntry() {
        for (String bad : new String[] {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a/"}) {
            assertThrows(IllegalArgumentException.class, () -> new RemoteFile(bad, 1, 0), bad);
        }
        assertDoesNotThrow(() -> new RemoteFile("sub/dir/model.safetensors", 0, 0));
    }

    @Test
    void entryNamesAreReadableAndDistinctPerSource() {
        String a = ModelCache.entryName("hdfs://nn:8020/models/opt-1.3b");
        assertEquals(a, ModelCache.entryName("hdfs://nn:8020/models/opt-1.3b/"));
        assertNotEquals(a, ModelCache.entryName("s3a://bucket/models/opt-1.3b"));
        assertEquals("opt-1.3b-", a.substring(0, 9));
        assertEquals("my_model_v2-", ModelCache.entryName("s3a://bucket/my model&v2").substring(0, 12));
        assertEquals("model-", ModelCache.entryName("s3a://bucket/.hidden").substring(0, 6));
    }
}
