#!/usr/bin/env bash
# Latency of cluster-wide client lists. Starts a nats-server and two mqgate
# nodes (cluster mode, fresh data directories), holds SESSIONS idle clients on
# each node, then times GETs through node A's APIs, which gather node B's part
# over NATS. Prints a markdown table of medians of RUNS runs (each run REQUESTS
# sequential GETs; mqbench's p50 and p99).
#
#   tools/mqbench/cluster-list.sh
#
# Needs: target/release/mqgate and target/release/mqbench
# (cargo build --release -p mqgate -p mqbench), Debian's nats-server, and a file
# limit above SESSIONS + 100 (ulimit -n). Sizes come from the environment.
set -euo pipefail

SESSIONS=${SESSIONS:-10000} RUNS=${RUNS:-5} REQUESTS=${REQUESTS:-200}
MQGATE=${MQGATE:-target/release/mqgate} MQBENCH=${MQBENCH:-target/release/mqbench}
NATS=${NATS:-$(command -v nats-server || echo /usr/sbin/nats-server)}
for binary in "$MQGATE" "$MQBENCH" "$NATS"; do
  [[ -x $binary ]] || { echo "missing $binary" >&2; exit 2; }
done

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }

nats_port=$(free_port)
"$NATS" -a 127.0.0.1 -p "$nats_port" >"$dir/nats.log" 2>&1 &
pids+=($!)
wait_port "$nats_port"

declare -A MQTT MICA NANOMQ
for node in a b; do
  MQTT[$node]=$(free_port) MICA[$node]=$(free_port) NANOMQ[$node]=$(free_port)
  cat >"$dir/$node.toml" <<EOF
data_dir = "$dir/data-$node"
[mqtt.tcp]
listen = "127.0.0.1:${MQTT[$node]}"
[mqtt.ws]
enabled = false
[docs]
enabled = false
[mica]
listen = "127.0.0.1:${MICA[$node]}"
[nanomq]
listen = "127.0.0.1:${NANOMQ[$node]}"
[realmq]
enabled = false
[easemob]
enabled = false
[cluster]
enabled = true
node_name = "$node"
nats_url = "nats://127.0.0.1:$nats_port"
EOF
  RUST_LOG=warn "$MQGATE" --config "$dir/$node.toml" >"$dir/$node.log" 2>&1 &
  pids+=($!)
  eval "PID_$node=$!"
  wait_port "${MQTT[$node]}"
  wait_port "${MICA[$node]}"
done

# idle clients held on both nodes while the lists are timed (mqbench idle holds
# them for --settle-secs after connecting)
hold=$(( 60 + RUNS * 30 ))
for node in a b; do
  pid_var="PID_$node"
  "$MQBENCH" --host "127.0.0.1:${MQTT[$node]}" idle --pid "${!pid_var}" --count "$SESSIONS" \
    --settle-secs "$hold" >"$dir/idle-$node.log" 2>&1 &
  pids+=($!)
done
total=$(( 2 * SESSIONS ))
url_a_mica="http://127.0.0.1:${MICA[a]}/api/v1/clients"
for _ in $(seq 600); do
  listed=$(curl -s -u mica:mica "$url_a_mica?_page=1&_limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["totalRow"])' 2>/dev/null || echo 0)
  [[ $listed -ge $total ]] && break
  sleep 0.5
done
[[ $listed -ge $total ]] || { echo "node A lists $listed of $total clients" >&2; exit 1; }

last_page=$(( total / 10 ))
cases=(
  "mica page 1 of 10|$url_a_mica?_page=1&_limit=10|mica:mica"
  "mica page $(( SESSIONS / 10 + 1 )) of 10 (node B's first)|$url_a_mica?_page=$(( SESSIONS / 10 + 1 ))&_limit=10|mica:mica"
  "mica last page of 10|$url_a_mica?_page=$last_page&_limit=10|mica:mica"
  "NanoMQ /api/v4/clients (all $total)|http://127.0.0.1:${NANOMQ[a]}/api/v4/clients|admin:public"
  "NanoMQ /api/v4/nodes|http://127.0.0.1:${NANOMQ[a]}/api/v4/nodes|admin:public"
)
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "| request through node A ($SESSIONS sessions per node, 2 nodes) | p50 ms | p99 ms | req/s |"
echo "|---|---:|---:|---:|"
for case in "${cases[@]}"; do
  IFS='|' read -r label url basic <<<"$case"
  requests=$REQUESTS
  [[ $label == NanoMQ*all* ]] && requests=$(( REQUESTS / 10 ))
  p50s=() p99s=() rates=()
  for _ in $(seq "$RUNS"); do
    line=$("$MQBENCH" http --url "$url" --basic "$basic" --requests "$requests" | grep '^RESULT')
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    p50=$(field p50_ms) p99=$(field p99_ms) rate=$(field value)
    p50s+=("$p50") p99s+=("$p99") rates+=("$rate")
  done
  printf '| %s | %.2f | %.2f | %.0f |\n' "$label" \
    "$(printf '%s\n' "${p50s[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" \
    "$(printf '%s\n' "${rates[@]}" | median)"
done
