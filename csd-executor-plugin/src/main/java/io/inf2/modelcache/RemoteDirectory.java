package io.inf2.modelcache;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * A model directory on some file system the engine cannot read directly (HDFS, S3, ...). The Spark
 * plugin implements it with Hadoop's FileSystem, which keeps Hadoop out of the engine.
 */
public interface RemoteDirectory {

    /** The directory's URI, for messages and as the cache key. */
    String uri();

    /** Every regular file under the directory, recursively, hidden files left out. */
    List<RemoteFile> listFiles() throws IOException;

    /** Opens one of the files {@link #listFiles()} returned. */
    InputStream open(RemoteFile file) throws IOException;

    /**
     * One file of a remote directory.
     *
     * @param relativePath   path under the directory, '/'-separated, never absolute and never with "..".
     * @param modifiedMillis the file system's modification time; with the size it tells whether a cached
     *                       copy is still current
     */
    record RemoteFile(String relativePath, long size, long modifiedMillis) {
        public RemoteFile {
            if (relativePath.isEmpty() || relativePath.startsWith("/") || relativePath.contains("\\")) {
                throw new IllegalArgumentException("not a relative path: \"" + relativePath + "\"");
            }
            for (String part : relativePath.split("/", -1)) {
                if (part.isEmpty() || part.equals(".") || part.equals("..")) {
                    throw new IllegalArgumentException("not a plain relative path: \"" + relativePath + "\"");
                }
            }
            if (size < 0) {
                throw new IllegalArgumentException(relativePath + ": negative size " + size);
            }
        }
    }
}
