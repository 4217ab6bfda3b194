package io.inf2.plugin

import java.io.FileNotFoundException
import java.net.URI

import org.apache.hadoop.fs.{FileStatus, Path, RawLocalFileSystem}

/**
 * The local disk under another scheme ("inf2remote:"), so that tests can give the plugin a model URI
 * that is not local and must go through the host's model cache, as hdfs: or s3a: would.
 * Enabled with spark.hadoop.fs.inf2remote.impl=io.inf2.plugin.RemoteLikeFileSystem.
 */
class RemoteLikeFileSystem extends RawLocalFileSystem {
  override def getUri: URI = URI.create(RemoteLikeFileSystem.Scheme + ":///")
  override def getScheme: String = RemoteLikeFileSystem.Scheme

  // The local file system's own statuses read permissions through file: URIs; plain ones carry this scheme.
  override def getFileStatus(p: Path): FileStatus = {
    val f = pathToFile(p)
    if (!f.exists()) throw new FileNotFoundException(s"$p: no such file or directory")
    new FileStatus(if (f.isDirectory) 0L else f.length, f.isDirectory, 1, 1L << 26, f.lastModified, makeQualified(p))
  }

  override def listStatus(p: Path): Array[FileStatus] = {
    val f = pathToFile(p)
    if (f.isDirectory) f.listFiles().sortBy(_.getName).map(c => getFileStatus(new Path(p, c.getName)))
    else Array(getFileStatus(p))
  }
}

object RemoteLikeFileSystem {
  val Scheme = "inf2remote"
}
