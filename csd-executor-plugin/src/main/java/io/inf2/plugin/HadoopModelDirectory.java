package io.inf2.plugin;

import io.inf2.modelcache.RemoteDirectory;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;

/** A model directory on any Hadoop file system, as the engine's model cache sees it. */
final class HadoopModelDirectory implements RemoteDirectory {
    private final FileSystem fs;
    private final Path root;

    /** {@code qualified} must carry its scheme (see {@link ModelLocator#qualify}). */
    HadoopModelDirectory(Path qualified, Configuration hadoopConf) throws IOException {
        this.fs = qualified.getFileSystem(hadoopConf);
        // Re-parsed so that ".../model/" and ".../model" name the same cache entry.
        this.root = new Path(qualified.toString());
    }

    @Override
    public String uri() {
        return root.toString();
    }

    @Override
    public List<RemoteFile> listFiles() throws IOException {
        String rootPath = root.toUri().getPath().replaceAll("/+$", "") + "/";
        List<RemoteFile> files = new ArrayList<>();
        try {
            if (!fs.getFileStatus(root).isDirectory()) {
                throw new IOException("model " + root + ": not a directory");
            }
        } catch (FileNotFoundException e) {
            throw new FileNotFoundException("model " + root + ": no such directory");
        }
        RemoteIterator<LocatedFileStatus> it = fs.listFiles(root, true);
        while (it.hasNext()) {
            LocatedFileStatus status = it.next();
            String path = status.getPath().toUri().getPath();
            if (!path.startsWith(rootPath)) {
                throw new IOException("model " + root + ": listing returned " + status.getPath() + ", outside the directory");
            }
            String relative = path.substring(rootPath.length());
            if (!isHidden(relative)) {
                files.add(new RemoteFile(relative, status.getLen(), status.getModificationTime()));
            }
        }
        files.sort(Comparator.comparing(RemoteFile::relativePath));
        return files;
    }

    @Override
    public InputStream open(RemoteFile file) throws IOException {
        return fs.open(new Path(root, file.relativePath()));
    }

    /** Hadoop's convention (and Spark's input formats'): names starting with '.' or '_' are not data. */
    private static boolean isHidden(String relativePath) {
        for (String part : relativePath.split("/")) {
            if (part.startsWith(".") || part.startsWith("_")) {
                return true;
            }
        }
        return false;
    }
}
