#!/bin/bash
# What an idle connection costs: each broker started alone, its resident memory (VmRSS) and
# reserved address space (VmSize) read at rest, then N idle connections opened by
# `mqsim bench --idle-connections N` (CONNECT, CONNACK, silence; a short QoS 0 run on top), the
# broker's VmRSS read by the bench once they are all open, and VmPeak after. Prints one line per
# broker: RSS at rest and with the connections open, bytes per connection, VmSize, VmPeak.
# Needs: cargo build --release; mosquitto; `ulimit -n` above N (the script raises it if it can).
# Brokers: BROKERS="ours mosquitto" by default; OURS=path/to/mqsim for another build of ours.
set -u
B=${B:-target/release/mqsim}
OURS=${OURS:-$B}
N=${N:-10000}
PORT=${PORT:-18850}
ulimit -n $((N * 2 + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
for broker in ${BROKERS:-ours mosquitto}; do
  case $broker in
    mosquitto) mosquitto -p "$PORT" >/dev/null 2>&1 & ;;
    *) $OURS broker -p "$PORT" >/dev/null 2>&1 & ;;
  esac
  pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  rss0=$(kb "$pid" VmRSS) size0=$(kb "$pid" VmSize)
  out=$($B bench --port "$PORT" --broker-pid "$pid" --idle-connections "$N" --qos 0 \
    --messages 10000 --json)
  peak=$(kb "$pid" VmPeak)
  kill "$pid"; wait "$pid" 2>/dev/null
  rss1=$(echo "$out" | sed -n 's/.*"broker_rss_after_idle_mb":\([0-9.]*\).*/\1/p')
  accepted=$(echo "$out" | sed -n 's/.*"idle_accepted":\([0-9]*\).*/\1/p')
  awk -v b="$broker" -v r0="$rss0" -v r1="$rss1" -v n="$N" -v s0="$size0" -v p="$peak" -v a="$accepted" \
    'BEGIN { printf "%-10s RSS %.1f -> %.1f MB with %d idle (%s accepted): %.0f bytes each; VmSize %.1f MB at rest, VmPeak %.1f MB\n",
      b, r0 / 1024, r1, n, a, (r1 * 1024 - r0) * 1024 / n, s0 / 1024, p / 1024 }'
done
