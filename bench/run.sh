#!/usr/bin/env bash
# Builds the benchmarks and runs them (all, or the JMH regex given), writing JMH JSON into jmh-results/ with the
# machine, JDK and date in the file name's companion .txt. Extra arguments go to JMH.
#   bench/run.sh                       # every benchmark, full settings
#   bench/run.sh StagingCopyBenchmark  # one benchmark
#   bench/run.sh pause                 # the checkpoint pause measurement of a running guest (1 GiB, 10 and 50 ms)
#   bench/run.sh replication           # replication throughput beside raw loopback TCP and the codec alone
#   bench/run.sh tls                   # replication throughput and pause over mutual TLS against plaintext
#   bench/run.sh sweep                 # the checkpoint-period tuning table (5..100 ms x workloads)
#   bench/run.sh codec-policy          # wire bytes with the codec and the adaptive policy's period, 1 GiB guest
#   bench/run.sh baseline              # the guest's longest stop for a live and a paused baseline, 1 GiB guest
#   bench/run.sh report                # jmh-results/README.md and the plots, from the results present
set -euo pipefail
cd "$(dirname "$0")/.."
# TANDEM_NO_BUILD=1 reuses the jars already built (a series of measurements on one build)
[ -n "${TANDEM_NO_BUILD:-}" ] || mvn -B -q install -DskipTests
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
# measurements of a running protected guest: name, main class, result file
measure() {
    local main=$1 file=$2
    shift 2
    java -Xmx3g "${FLAGS[@]}" -cp bench/target/benchmarks.jar "dev.tandem.bench.${main}" "$@" | tee "jmh-results/${file}"
    echo "machine: ${machine}" >> "jmh-results/${file}"
}
case "${1:-}" in
    pause) shift; measure PauseMeasurement pause-hotset-1g.md "${@:-1024}"; exit 0 ;;
    replication) shift; measure ReplicationThroughput replication.md "$@"; exit 0 ;;
    tls) shift; measure TlsThroughput tls.md "$@"; exit 0 ;;
    sweep) shift; measure PeriodSweep period-sweep.md "$@"; exit 0 ;;
    codec-policy) shift; measure CodecPolicyMeasurement codec-policy.md "$@"; exit 0 ;;
    baseline) shift; measure BaselineMeasurement baseline.md "$@"; exit 0 ;;
    resync) shift; measure ResyncMeasurement resync.md "$@"; exit 0 ;;
    durability) shift; measure DurabilityMeasurement durability.md "$@"; exit 0 ;;
    report) java -cp bench/target/benchmarks.jar dev.tandem.bench.report.ReportGenerator jmh-results; exit 0 ;;
esac
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
