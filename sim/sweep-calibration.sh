#!/usr/bin/env bash
# Sweep seeds over the calibration scenarios and print, per QoS, the min-max over the seeds of
# delivered, reconnects, p50 and p99 latency (ms), next to the real runs' ranges
# (shared/data/real-lossy-link/calibration.csv, 8 runs per cell). runs>0: runs with a reconnect;
# no-lat: runs that delivered nothing in that scope (left out of the latency ranges).
#
# Usage: sim/sweep-calibration.sh [SEEDS] [BIN]   (default 40 seeds: 1..=40, ./target/release/mqsim)
# Build first: cargo build --release -p mqsim-sim. Per-seed rows go to $OUT (default
# /tmp/calib-sweep.csv): file,seed,scope,published,delivered,reconnects,p50_ms,p99_ms.
# FILES="a.toml b.toml" sweeps other files (variants of the calibration pair).
set -euo pipefail
seeds=${1:-40}
bin=${2:-./target/release/mqsim}
out=${OUT:-/tmp/calib-sweep.csv}
echo "file,seed,scope,published,delivered,reconnects,p50_ms,p99_ms" > "$out"
files=${FILES:-scenarios/calibration-loss10.toml scenarios/calibration-loss30.toml}
for f in $files; do
  for seed in $(seq 1 "$seeds"); do
    # A run that misses its [expect] exits non-zero but still prints the report.
    "$bin" sim "$f" --seed "$seed" --quiet 2>/dev/null | awk -v f="$f" -v s="$seed" '
      # The delivery table only (the cost and energy tables below it start with the same names).
      $1 == "scope" && $2 == "pub" { t = 1; next }
      t && NF < 12 { t = 0 }
      t && $1 ~ /^(qos0|qos1|qos2|all)$/ { print f "," s "," $1 "," $2 "," $5 "," $9 "," $10 "," $11 }
      t && $1 == "subscriber" { print f "," s "," $2 "," $3 "," $6 "," $10 "," $11 "," $12 }' >> "$out" || true
  done
done
awk -F, 'NR > 1 {
  k = $1 " " $3
  if (!(k in n)) { order[++m] = k; dmin[k] = dmax[k] = $5; rmin[k] = rmax[k] = $6 }
  n[k]++
  if ($5 < dmin[k]) dmin[k] = $5; if ($5 > dmax[k]) dmax[k] = $5
  if ($6 < rmin[k]) rmin[k] = $6; if ($6 > rmax[k]) rmax[k] = $6
  if ($6 > 0) rruns[k]++
  if ($7 == "-") { nolat[k]++; next }   # nothing delivered: no latency
  if (!(k in lat)) { lat[k] = 0; p5min[k] = p5max[k] = $7; p9min[k] = p9max[k] = $8 }
  p5[k, ++lat[k]] = $7 + 0
  if ($7 + 0 < p5min[k] + 0) p5min[k] = $7; if ($7 + 0 > p5max[k] + 0) p5max[k] = $7
  if ($8 + 0 < p9min[k] + 0) p9min[k] = $8; if ($8 + 0 > p9max[k] + 0) p9max[k] = $8
} END {
  printf "%-40s %5s %11s %9s %6s %15s %7s %15s %6s\n", "file scope", "runs", "delivered", "reconn", "runs>0", "p50 ms", "median", "p99 ms", "no-lat"
  for (i = 1; i <= m; i++) { k = order[i]
    # The median p50 over the runs with a latency (insertion sort: mawk has no asort).
    c = lat[k]; for (a = 2; a <= c; a++) { v = p5[k, a]; for (b = a - 1; b >= 1 && p5[k, b] > v; b--) p5[k, b + 1] = p5[k, b]; p5[k, b + 1] = v }
    med = c % 2 ? p5[k, (c + 1) / 2] : (p5[k, c / 2] + p5[k, c / 2 + 1]) / 2
    printf "%-40s %5d %5d-%-5d %4d-%-4d %6d %7.0f-%-7.0f %7.0f %7.0f-%-7.0f %6d\n", k, n[k], dmin[k], dmax[k], rmin[k], rmax[k], rruns[k], p5min[k], p5max[k], med, p9min[k], p9max[k], nolat[k] }
}' "$out"
