# Sourced by the bin/ scripts: sets JAVA_HOME and JAVA to a JDK 25 or newer, or exits with a clear error.
# Order: $JAVA_HOME if it is 22 or newer (the FFM and Vector API level this project needs; the build
# itself targets 25), else /usr/lib/jvm/temurin-25*, else any /usr/lib/jvm/*25* or newer.

inf2_java_feature() {
  # Prints the feature release of the java at $1 (e.g. 25), or nothing.
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9][0-9]*\).*/\1/p' | head -n 1
}

inf2_find_java() {
  local candidate feature
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    feature=$(inf2_java_feature "$JAVA_HOME")
    if [ -n "$feature" ] && [ "$feature" -ge 22 ]; then
      return 0
    fi
  fi
  for candidate in /usr/lib/jvm/temurin-25* /usr/lib/jvm/temurin-2[6-9]* /usr/lib/jvm/*-25* /usr/lib/jvm/*-2[6-9]*; do
    [ -x "$candidate/bin/java" ] || continue
    feature=$(inf2_java_feature "$candidate")
    if [ -n "$feature" ] && [ "$feature" -ge 25 ]; then
      JAVA_HOME=$candidate
      return 0
    fi
  done
  echo "inf2: no JDK 25 found: JAVA_HOME is '${JAVA_HOME:-unset}' and /usr/lib/jvm has no temurin-25. Install Temurin 25 (e.g. apt-get install temurin-25-jdk) or set JAVA_HOME to a JDK 25." >&2
  exit 1
}

inf2_find_java
export JAVA_HOME
JAVA="$JAVA_HOME/bin/java"
export PATH="$JAVA_HOME/bin:$PATH"

# JVM flags every INF2 process needs on JDK 25 (shared/STACK.md): Vector API, FFM, Arrow, Spark.
INF2_JVM_FLAGS=(
  --add-modules=jdk.incubator.vector
  --enable-native-access=ALL-UNNAMED
  --sun-misc-unsafe-memory-access=allow
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
)
