#!/usr/bin/env bash
# Runs every mqbench scenario against every broker given, interleaved (scenario
# by scenario, run by run, broker after broker, each run beginning with the
# next broker), and prints a markdown table of medians with the first broker's
# ratio to each other one.
#
#   tools/mqbench/side-by-side.sh [--runs 5] BROKER...
#   BROKER = name=host:port[,pid=PID][,http=URL][,basic=user:pass]
#
# pid enables the idle-memory row (the broker's RSS from /proc; start the brokers
# fresh for it, it runs first), http the management-API row (GET of that URL).
# The brokers must already be running; see the README's Benchmarks section for
# starting mqgate, mosquitto and rumqttd (`mqbench-rumqttd`). Sizes come from
# the environment (defaults below).
# MQBENCH points at the mqbench binary (default: target/release/mqbench); ONLY=text
# runs only the scenarios whose label contains it (ONLY=connect).
set -euo pipefail

RUNS=5
if [[ "${1:-}" == "--runs" ]]; then RUNS=$2; shift 2; fi
[[ $# -ge 1 ]] || { sed -n '2,16p' "$0"; exit 2; }

MQBENCH=${MQBENCH:-target/release/mqbench}
[[ -x $MQBENCH ]] || { echo "no $MQBENCH: cargo build --release -p mqbench" >&2; exit 2; }

Q0=${Q0:-100000} Q1=${Q1:-100000} Q2=${Q2:-50000}
FANOUT_SUBS=${FANOUT_SUBS:-100} FANOUT_COUNT=${FANOUT_COUNT:-2000}
FANIN_PUBS=${FANIN_PUBS:-100} FANIN_COUNT=${FANIN_COUNT:-1000}
PAIRS=${PAIRS:-1000} PAIRS_COUNT=${PAIRS_COUNT:-100}
# Connect runs are long enough (about 2 s) to average over where the scheduler puts
# the broker's and the client's threads: a run of 2,000 sequential connects lands
# wholly in one placement, and its rate then varies by 2x for every broker alike.
CONNECTS=${CONNECTS:-20000} CONNECTS_CONCURRENT=${CONNECTS_CONCURRENT:-20000}
IDLE=${IDLE:-5000} REQUESTS=${REQUESTS:-2000}
# A run ends when nothing arrived for this long (what is missing then is lost).
IDLE_SECS=${IDLE_SECS:-3}

declare -a NAMES ADDRS PIDS URLS BASICS
for spec in "$@"; do
  name=${spec%%=*}; rest=${spec#*=}
  IFS=, read -ra parts <<<"$rest"
  addr=${parts[0]} pid="" url="" basic=""
  for p in "${parts[@]:1}"; do
    case $p in
      pid=*) pid=${p#pid=} ;;
      http=*) url=${p#http=} ;;
      basic=*) basic=${p#basic=} ;;
      *) echo "unknown part '$p' in $spec" >&2; exit 2 ;;
    esac
  done
  NAMES+=("$name"); ADDRS+=("$addr"); PIDS+=("$pid"); URLS+=("$url"); BASICS+=("$basic")
done

SCENARIOS=(
  # First: memory freed by later scenarios would be reused and hide the growth.
  "idle memory, $IDLE connections|idle --count $IDLE --pid {pid}"
  "1→1 QoS 0|one-to-one --qos 0 --count $Q0"
  "1→1 QoS 1|one-to-one --qos 1 --count $Q1"
  "1→1 QoS 2|one-to-one --qos 2 --count $Q2"
  "fan-out 1→$FANOUT_SUBS QoS 1|fan-out --subscribers $FANOUT_SUBS --count $FANOUT_COUNT --qos 1"
  "fan-in $FANIN_PUBS→1 QoS 1|fan-in --publishers $FANIN_PUBS --count $FANIN_COUNT --qos 1"
  "$PAIRS pairs QoS 1|pairs --pairs $PAIRS --count $PAIRS_COUNT --qos 1"
  "connect, sequential|connect --count $CONNECTS --concurrency 1"
  "connect, 100 at once|connect --count $CONNECTS_CONCURRENT --concurrency 100"
  "management GET|http --requests $REQUESTS --url {url} {basic}"
)

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

for s in "${!SCENARIOS[@]}"; do
  label=${SCENARIOS[$s]%%|*}; args=${SCENARIOS[$s]#*|}
  [[ -z ${ONLY:-} || $label == *"$ONLY"* ]] || continue
  for run in $(seq 1 "$RUNS"); do
    # Each run begins with the next broker: whichever broker ran second in a
    # round measured up to 10 % faster (fan-in, 2026-11-30), so no broker keeps
    # one place.
    for k in "${!NAMES[@]}"; do
      b=$(( (k + run - 1) % ${#NAMES[@]} ))
      a=$args
      if [[ $a == *"{pid}"* ]]; then [[ -n ${PIDS[$b]} ]] || continue; a=${a//\{pid\}/${PIDS[$b]}}; fi
      if [[ $a == *"{url}"* ]]; then
        [[ -n ${URLS[$b]} ]] || continue
        a=${a//\{url\}/${URLS[$b]}}
        if [[ -n ${BASICS[$b]} ]]; then a=${a//\{basic\}/--basic ${BASICS[$b]}}; else a=${a//\{basic\}/}; fi
      fi
      # shellcheck disable=SC2086
      line=$("$MQBENCH" --host "${ADDRS[$b]}" --idle-secs "$IDLE_SECS" $a 2>&1 | grep '^RESULT' || true)
      if [[ -z $line ]]; then
        echo "  $label, run $run, ${NAMES[$b]}: failed" >&2
        continue
      fi
      bad=$(( $(field "$line" lost) + $(field "$line" dup) + $(field "$line" reordered) + $(field "$line" unacked) ))
      echo "$s|$b|$(field "$line" value)|$(field "$line" p99_ms)|$bad|$(field "$line" unit)" >>"$RESULTS"
      echo "  $label, run $run, ${NAMES[$b]}: $(field "$line" value) $(field "$line" unit), p99 $(field "$line" p99_ms) ms, not clean $bad" >&2
    done
  done
done

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print ""}'; }

header="| scenario | unit |"; rule="|---|---|"
for n in "${NAMES[@]}"; do header+=" $n |"; rule+="---:|"; done
for n in "${NAMES[@]:1}"; do header+=" ${NAMES[0]} / $n |"; rule+="---:|"; done
echo
echo "Medians of $RUNS runs (idle memory: the largest of them); p99 latency in ms; lost+duplicated+reordered+unacknowledged summed over the runs."
echo
echo "$header"; echo "$rule"
for s in "${!SCENARIOS[@]}"; do
  label=${SCENARIOS[$s]%%|*}
  unit=$(awk -F'|' -v s="$s" '$1==s {print $6; exit}' "$RESULTS")
  [[ -n $unit ]] || continue
  row="| $label | $unit |"; declare -a med=()
  for b in "${!NAMES[@]}"; do
    if [[ $unit == KiB/conn ]]; then
      # Memory freed by one run is reused by the next: the first (largest) growth counts.
      v=$(awk -F'|' -v s="$s" -v b="$b" '$1==s && $2==b {print $3}' "$RESULTS" | sort -g | tail -1)
    else
      v=$(awk -F'|' -v s="$s" -v b="$b" '$1==s && $2==b {print $3}' "$RESULTS" | median)
    fi
    p=$(awk -F'|' -v s="$s" -v b="$b" '$1==s && $2==b {print $4}' "$RESULTS" | median)
    bad=$(awk -F'|' -v s="$s" -v b="$b" '$1==s && $2==b {t+=$5} END {print t+0}' "$RESULTS")
    med[$b]=$v
    if [[ -z $v ]]; then row+=" – |"; continue; fi
    cell=$(printf "%.0f" "$v"); [[ $unit == KiB/conn ]] && cell=$(printf "%.1f" "$v")
    [[ $unit != KiB/conn ]] && cell+=" (p99 $p)"
    [[ $bad != 0 ]] && cell+=" **not clean: $bad**"
    row+=" $cell |"
  done
  for b in "${!NAMES[@]}"; do
    [[ $b == 0 ]] && continue
    if [[ -n ${med[0]} && -n ${med[$b]} ]] && awk -v d="${med[$b]}" 'BEGIN {exit !(d > 0)}'; then
      row+=" $(awk -v a="${med[0]}" -v d="${med[$b]}" 'BEGIN {printf "%.2f", a / d}') |"
    else
      row+=" – |"
    fi
  done
  echo "$row"
done
