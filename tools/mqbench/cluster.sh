#!/usr/bin/env bash
# Cluster mode measured. Starts a nats-server, two mqgate nodes A and B
# (cluster mode) and a single node S (cluster off), fresh data directories, and
# prints two markdown tables of medians of RUNS runs:
#  1. 1→1 QoS 1 throughput: on S; on A alone (cluster on); from A to B;
#  2. CONNECT rate on S and on A (where each CONNECT also claims its client id
#     on NATS), one after another and 100 at once;
#  3. cluster-wide list latency: SESSIONS idle clients held on each of A and B,
#     then GETs through A's APIs, which gather B's part over NATS (each run
#     REQUESTS sequential GETs; mqbench's p50 and p99).
#
#   tools/mqbench/cluster.sh
#
# Needs: target/release/mqgate and target/release/mqbench
# (cargo build --release -p mqgate -p mqbench), Debian's nats-server, and a file
# limit above SESSIONS + 100 (ulimit -n). Sizes come from the environment.
set -euo pipefail

SESSIONS=${SESSIONS:-10000} RUNS=${RUNS:-5} REQUESTS=${REQUESTS:-200} COUNT=${COUNT:-100000}
CONNECTS=${CONNECTS:-10000}
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
for node in a b s; do
  MQTT[$node]=$(free_port) MICA[$node]=$(free_port) NANOMQ[$node]=$(free_port)
  cluster=true
  [[ $node == s ]] && cluster=false
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
enabled = $cluster
node_name = "$node"
nats_url = "nats://127.0.0.1:$nats_port"
EOF
  RUST_LOG=warn "$MQGATE" --config "$dir/$node.toml" >"$dir/$node.log" 2>&1 &
  pids+=($!)
  eval "PID_$node=$!"
  wait_port "${MQTT[$node]}"
  wait_port "${MICA[$node]}"
done

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

echo "| 1→1 QoS 1, $COUNT messages of 64 B | msg/s | p50 ms | lost, duplicated, reordered |"
echo "|---|---:|---:|---:|"
for case in "one node, cluster off|s|s" "one node, cluster on|a|a" "node A → node B|a|b"; do
  IFS='|' read -r label pub sub <<<"$case"
  rates=() p50s=() bad=0
  for _ in $(seq "$RUNS"); do
    line=$("$MQBENCH" --host "127.0.0.1:${MQTT[$pub]}" --sub-host "127.0.0.1:${MQTT[$sub]}" \
      one-to-one --qos 1 --count "$COUNT" | grep '^RESULT')
    rates+=("$(field value "$line")") p50s+=("$(field p50_ms "$line")")
    bad=$(( bad + $(field lost "$line") + $(field dup "$line") + $(field reordered "$line") ))
  done
  printf '| %s | %.0f | %.1f | %d |\n' "$label" \
    "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${p50s[@]}" | median)" "$bad"
done
echo

echo "| $CONNECTS CONNECTs (clean start, then DISCONNECT) | one after another, /s | 100 at once, /s | 100 at once, p99 ms |"
echo "|---|---:|---:|---:|"
for case in "one node, cluster off|s" "node A, cluster of two|a"; do
  IFS='|' read -r label node <<<"$case"
  sequential=() concurrent=() p99s=()
  for _ in $(seq "$RUNS"); do
    line=$("$MQBENCH" --host "127.0.0.1:${MQTT[$node]}" connect --count "$CONNECTS" \
      --concurrency 1 | grep '^RESULT')
    sequential+=("$(field value "$line")")
    line=$("$MQBENCH" --host "127.0.0.1:${MQTT[$node]}" connect --count "$CONNECTS" \
      --concurrency 100 | grep '^RESULT')
    concurrent+=("$(field value "$line")") p99s+=("$(field p99_ms "$line")")
  done
  printf '| %s | %.0f | %.0f | %.1f |\n' "$label" \
    "$(printf '%s\n' "${sequential[@]}" | median)" "$(printf '%s\n' "${concurrent[@]}" | median)" \
    "$(printf '%s\n' "${p99s[@]}" | median)"
done
echo

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
echo "| request through node A ($SESSIONS sessions per node, 2 nodes) | p50 ms | p99 ms | req/s |"
echo "|---|---:|---:|---:|"
for case in "${cases[@]}"; do
  IFS='|' read -r label url basic <<<"$case"
  requests=$REQUESTS
  [[ $label == NanoMQ*all* ]] && requests=$(( REQUESTS / 10 ))
  p50s=() p99s=() rates=()
  for _ in $(seq "$RUNS"); do
    line=$("$MQBENCH" http --url "$url" --basic "$basic" --requests "$requests" | grep '^RESULT')
    p50=$(field p50_ms "$line") p99=$(field p99_ms "$line") rate=$(field value "$line")
    p50s+=("$p50") p99s+=("$p99") rates+=("$rate")
  done
  printf '| %s | %.2f | %.2f | %.0f |\n' "$label" \
    "$(printf '%s\n' "${p50s[@]}" | median)" "$(printf '%s\n' "${p99s[@]}" | median)" \
    "$(printf '%s\n' "${rates[@]}" | median)"
done
