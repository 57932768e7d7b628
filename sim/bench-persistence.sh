#!/bin/bash
# QoS 1 throughput with persistence off and on (ours) and mosquitto with persistence on, one
# persistent subscriber (so every message is journaled), 3 interleaved runs per cell.
# Needs: cargo build --release; mosquitto (apt-get install mosquitto). Prints one JSON line per run.
set -u
B=${B:-target/release/mqsim}
MSG=${MSG:-20000}
PORT=${PORT:-18840}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cell() { # name publishers
  for broker in off on mosquitto; do
    rm -rf "$DIR/data" && mkdir -p "$DIR/data"
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" > "$DIR/$broker.conf"
    [ "$broker" != off ] && printf 'persistence true\npersistence_location %s/data/\n' "$DIR" >> "$DIR/$broker.conf"
    case $broker in
      mosquitto) cmd="mosquitto -c $DIR/$broker.conf" ;;
      *) cmd="$B broker -c $DIR/$broker.conf" ;;
    esac
    echo "$1 $broker $($B bench --spawn "$cmd" --port "$PORT" --qos 1 --publishers "$2" \
      --subscribers 1 --inflight 20 --messages "$MSG" --clean-session false --json)"
  done
}
for _ in 1 2 3; do
  cell "1->1" 1
  cell "4->1" 4
done
