#!/usr/bin/env bash
# Real measurement the way the simulator models devices: this project's device code
# (`mqsim device --profile esp-mqtt`) against `mqsim broker` over a real lossy link, and the
# simulated distribution of the same set-up beside it.
#
# Set-up (as shared/data/real-lossy-link was made): two network namespaces joined by a veth pair,
# the broker in `mqb` (10.77.0.1), the device and a `mosquitto_sub -q 2` subscriber in `mqd`
# (10.77.0.2); nftables drops LOSS % of the TCP packets on each namespace's OUTPUT hook (so a
# dropped data segment stays unsent in its sender, as on the original bench). Latency: the
# device's serial "Publish message:" stamp to the subscriber's receipt (mosquitto_sub's own %U
# stamp), matched per topic in order and by value (a QoS 0 gap skips what it lost); both on this
# host's clock.
#
# Usage (root; needs ip, nft, mosquitto_sub, python3):
#   sim/measure-lossy-link.sh [RUNS] [BIN]      default 3 runs per cell, ./target/release/mqsim
#   SIM_ONLY=1 sim/measure-lossy-link.sh        only the simulated side
# Cells: loss 10 and 30 %, QoS 0/1/2 at the stress rate (20 messages/s: a TEM+HUM reading every
# 100 ms, 200 messages) and QoS 1 at the reference rate (a reading every 2 s, 40 messages).
# Output: $OUT (default sim/tests/data/real-device-link/runs.csv) and, with SIM_SEEDS (default 20)
# simulated seeds per cell of the same set-up (device stack linux: on this bench the device is a
# Linux process), $OUT_SIM (default .../sim.csv). Build first: cargo build --release -p mqsim-sim.
set -euo pipefail
runs=${1:-3}
bin=$(realpath "${2:-./target/release/mqsim}")
out=${OUT:-sim/tests/data/real-device-link/runs.csv}
out_sim=${OUT_SIM:-sim/tests/data/real-device-link/sim.csv}
sim_seeds=${SIM_SEEDS:-20}
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'ip netns del mqb 2>/dev/null || true; ip netns del mqd 2>/dev/null || true; rm -rf "$work"' EXIT

setup() { # $1 = loss %
  ip netns del mqb 2>/dev/null || true
  ip netns del mqd 2>/dev/null || true
  ip netns add mqb
  ip netns add mqd
  ip link add vb netns mqb type veth peer name vd netns mqd
  ip -n mqb addr add 10.77.0.1/24 dev vb
  ip -n mqd addr add 10.77.0.2/24 dev vd
  for ns in mqb mqd; do
    ip -n $ns link set lo up
    ip -n "$ns" link set "$( [ "$ns" = mqb ] && echo vb || echo vd )" up
    ip netns exec $ns nft -f - <<EOF
table inet lossy {
  chain out {
    type filter hook output priority 0;
    ip daddr 10.77.0.0/24 meta l4proto tcp numgen random mod 100 < $1 drop
  }
}
EOF
  done
}

# One run: loss qos interval_ms messages run -> rows on stdout.
one_run() {
  local loss=$1 qos=$2 interval=$3 messages=$4 run=$5
  setup "$loss"
  printf 'listener 1883\nallow_anonymous true\n' > "$work/broker.conf"
  ip netns exec mqb "$bin" broker -v -c "$work/broker.conf" > "$work/broker.log" 2>&1 &
  local bpid=$!
  sleep 0.5
  # The subscriber first, persistent session, QoS 2, as the calibration runs had it.
  # -F %U: the receipt's Unix time (ns), stamped by mosquitto_sub itself.
  ip netns exec mqd stdbuf -oL mosquitto_sub -h 10.77.0.1 -q 2 -c -i "sub-$run-$qos" -k 5 \
    -t 'ESP32/#' -F '%U %t %p' > "$work/sub.log" 2>&1 &
  local spid=$!
  # The device starts only once the broker has sent the subscriber its SUBACK (its -v log says
  # so), as the original bench published only after the SUBACK: with 30 % loss the subscriber's
  # SYN or SUBSCRIBE may need retries, and what is published before it is subscribed is not
  # owed to it (runs made without this wait counted such messages as missing). At most 60 s.
  for _ in $(seq 1 600); do
    grep -q "Sending SUBACK to sub-$run-$qos" "$work/broker.log" && break
    sleep 0.1
  done
  # Readings (two messages each) for the run, then time to drain.
  local readings=$((messages / 2))
  # 13 s beyond the readings: a connect needing SYN retries (1, 3, 7 s on Linux) still leaves
  # time for all of them; only the first messages/2 readings are counted.
  local dur=$(( (readings * interval) / 1000 + 13 ))
  ip netns exec mqd "$bin" device --broker 10.77.0.1:1883 --profile esp-mqtt --qos "$qos" \
    --interval-ms "$interval" --duration "$dur" --seed "$run" > "$work/dev.log" 2>&1 || true
  sleep 8
  # mosquitto_sub may hang in its DISCONNECT on a lossy link: TERM, then KILL after 3 s.
  kill "$spid" 2>/dev/null || true
  for _ in 1 2 3; do kill -0 "$spid" 2>/dev/null && sleep 1; done
  kill -KILL "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  kill "$bpid" 2>/dev/null || true
  wait "$bpid" 2>/dev/null || true
  python3 - "$work/dev.log" "$work/sub.log" "$loss" "$qos" "$interval" "$run" "$messages" <<'PY'
import sys, datetime
dev, sub, loss, qos, interval, run, messages = sys.argv[1:8]
messages = int(messages)
today = datetime.date.today()
# Readings: the serial's "Publish message:" stamp, then its temperature and humidity values.
readings = []
for line in open(dev):
    if ' -> ' not in line:
        continue
    hms, text = line.rstrip('\n').split(' -> ', 1)
    if text.startswith('Publish message:'):
        t = datetime.datetime.combine(today, datetime.datetime.strptime(hms.strip(), '%H:%M:%S.%f').time())
        readings.append({'t': t.timestamp(), 'TEM': None, 'HUM': None})
    elif text.startswith('Temperature : ') and readings:
        readings[-1]['TEM'] = text.split(': ', 1)[1].split('\u00b0')[0].strip()
    elif text.startswith('Humidity : ') and readings:
        readings[-1]['HUM'] = text.split(': ', 1)[1].rstrip('%').strip()
readings = readings[: messages // 2]
# Receipts, matched per topic in order: each to the earliest later reading with the same value
# published before it (a QoS 0 gap then skips the readings it lost).
lat, delivered = [], 0
for topic in ('TEM', 'HUM'):
    nxt = 0
    for line in open(sub):
        parts = line.split()
        if len(parts) < 3 or parts[1].rsplit('/', 1)[-1] != topic:
            continue
        t, value = float(parts[0]), parts[2]
        for j in range(nxt, len(readings)):
            if readings[j][topic] == value and readings[j]['t'] <= t + 0.01:
                lat.append(max(0.0, (t - readings[j]['t']) * 1000))
                delivered += 1
                nxt = j + 1
                break
lat.sort()
def pct(q):
    if not lat: return '-'
    return '%.1f' % lat[min(len(lat) - 1, int(round(q / 100 * (len(lat) - 1))))]
print(f"{loss},{qos},{interval},{run},{2*len(readings)},{delivered},{pct(50)},{pct(99)},{('%.1f' % lat[-1]) if lat else '-'}")
PY
}

if [ -z "${SIM_ONLY:-}" ]; then
echo "loss_pct,qos,interval_ms,run,published,delivered,lat_ms_p50,lat_ms_p99,lat_ms_max" > "$out"
for loss in 10 30; do
  for qos in 0 1 2; do
    for run in $(seq 1 "$runs"); do one_run "$loss" "$qos" 100 200 "$run" >> "$out"; done
  done
  for run in $(seq 1 "$runs"); do one_run "$loss" 1 2000 40 "$run" >> "$out"; done
done
cat "$out"
fi

# The same set-up simulated: one device (esp-mqtt code, Linux stack: a PC process with Nagle on,
# as `mqsim device` leaves it), this broker (its end without Nagle, as it sets TCP_NODELAY), one
# subscriber, loss at the sender, 0.025 ms one-way (the veth pair's ping RTT p50 is 0.051 ms).
echo "loss_pct,qos,interval_ms,seed,published,delivered,lat_ms_p50,lat_ms_p99,lat_ms_max" > "$out_sim"
for loss in 10 30; do
  for cell in "0 100 200" "1 100 200" "2 100 200" "1 2000 40"; do
    set -- $cell
    # `messages` counts publish calls (two per reading), as in the real runs.
    qos=$1 interval=$2 messages=$3
    cat > "$work/cell.toml" <<EOF
description = "sim/measure-lossy-link.sh: esp-mqtt device, Linux stack, loss $loss % at each sender"
duration_s = $(( messages / 2 * interval / 1000 + 72 ))
heal_s = 30
[link.veth]
latency_ms = 0.025
loss = 0.$(( loss / 10 ))
loss_at_sender = true
# The device's link: its WiFi join held at 32 s, so that it starts after the subscriber's SUBACK
# as on the bench (the subscriber's SYN retries at 1, 3, 7, 15, 31 s).
[link.veth-dev]
latency_ms = 0.025
loss = 0.$(( loss / 10 ))
loss_at_sender = true
wifi_join_ms = [32000, 32000]
[[device]]
name = "ESP32Client"
profile = "esp-mqtt"
tcp_stack = "linux"
qos = $qos
interval_ms = $interval
messages = $messages
link = "veth-dev"
topic_prefix = "ESP32"
[[subscriber]]
name = "sub"
filter = "ESP32/#"
qos = 2
clean_session = false
keepalive_s = 5
link = "veth"
EOF
    # The delivery table's `all` row (12 fields; the cost and energy tables' `all` rows have
    # fewer).
    for seed in $(seq 1 "$sim_seeds"); do
      "$bin" sim "$work/cell.toml" --seed "$seed" --quiet 2>/dev/null | awk -v l="$loss" -v q="$qos" -v i="$interval" -v s="$seed" '
        $1 == "all" && NF == 12 { print l "," q "," i "," s "," $2 "," $5 "," $10 "," $11 "," $12 }' >> "$out_sim" || true
    done
  done
done
echo "simulated: $out_sim"
