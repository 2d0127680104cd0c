#!/usr/bin/env bash
# Builds the benchmarks and runs them (all, or the JMH regex given), writing JMH JSON into jmh-results/ with the
# machine, JDK and date in the file name's companion .txt. Extra arguments go to JMH.
#   bench/run.sh                       # every benchmark, full settings
#   bench/run.sh StagingCopyBenchmark  # one benchmark
#   bench/run.sh pause                 # the checkpoint pause measurement of a running guest (1 GiB, 10 and 50 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q install -DskipTests
FLAGS=(--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED
       --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
       --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED)
feature=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')
EXTRA=()
if [ "${feature%%.*}" -ge 24 ]; then
    EXTRA=(--enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow)
    FLAGS+=("${EXTRA[@]}")
fi
stamp=$(date -u +%Y-%m-%d)
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), JDK ${feature}, ${stamp}"
mkdir -p jmh-results
if [ "${1:-}" = "pause" ]; then
    shift
    java -Xmx1g "${FLAGS[@]}" -cp bench/target/benchmarks.jar dev.tandem.bench.PauseMeasurement "${@:-1024}" \
        | tee jmh-results/pause-hotset-1g.md
    echo "machine: ${machine}" >> jmh-results/pause-hotset-1g.md
    exit 0
fi
name=${1:-all}
[ $# -gt 0 ] && shift
args=()
[ "${name}" != "all" ] && args+=("${name}")
if [ ${#EXTRA[@]} -gt 0 ]; then
    args+=(-jvmArgsAppend "${EXTRA[*]}")
fi
java "${FLAGS[@]}" -jar bench/target/benchmarks.jar "${args[@]}" -rf json -rff "jmh-results/${name}.json" "$@" \
    | tee "jmh-results/${name}.txt"
echo "machine: ${machine}" >> "jmh-results/${name}.txt"
