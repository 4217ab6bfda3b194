package io.inf2.spark

import java.nio.charset.StandardCharsets
import java.nio.file.{Files, Paths}

import scala.jdk.CollectionConverters._

import io.inf2.cli.CliSettings
import io.inf2.config.Settings
import io.inf2.plugin.PluginSettings
import org.scalatest.funsuite.AnyFunSuite

/** docs/configuration.md must be what ConfigurationDoc makes of the catalogs now. */
class ConfigurationDocSuite extends AnyFunSuite {

  private val file = {
    val here = Paths.get("").toAbsolutePath
    (if (Files.exists(here.resolve("docs"))) here else here.getParent).resolve("docs/configuration.md")
  }

  test("docs/configuration.md is up to date with the settings catalogs") {
    val checkedIn = if (Files.exists(file)) Files.readString(file, StandardCharsets.UTF_8) else "(missing)"
    assert(checkedIn == ConfigurationDoc.render(),
      s"$file is out of date; regenerate it from the repository root with: ${ConfigurationDoc.REGENERATE}")
  }

  test("every setting of every catalog has its row, with its flag and Spark key") {
    val doc = ConfigurationDoc.render()
    val withKeys = Settings.all().asScala ++ PluginSettings.all().asScala ++ JobSettings.all().asScala
    withKeys.foreach(s => assert(doc.contains(s"| `${s.cliFlag}` | `${s.sparkKey}` |"), s.name))
    CliSettings.all().asScala.foreach(s => assert(doc.contains(s"| `${s.cliFlag}` |"), s.name))
    assert(doc.contains("| `--commit-rows` | `spark.inf2.commitRows` | int | `10000` |"))
  }
}
