#!/usr/bin/env bash
# The bus389 demo on the local default (`make demo`), and `make down` (`deploy/demo.sh down`).
#
# Starts Kafka, applies the topics, starts the router and the ICT and standing-office services in the
# background (their metrics ports are printed), then plays the three users' flows:
#   1. the tax office publishes its spreadsheet of undeclared online sellers;
#   2. market surveillance asks ICT to block a domain; the ICT operator approves; the RPZ line appears
#      and the result comes back to the requester;
#   3. the standing office prints its six-monthly report.
# The services keep running; `make down` stops them and Kafka.
#
# Ports (to run a second demo beside another one, e.g. the README test's): BUS389_DEMO_BASE_PORT is
# Kafka's client port (default 9092; its controller takes +100), BUS389_DEMO_METRICS_PORT the router's
# metrics port (default 9464; ICT +1, standing office +2). Everything else lives under $HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

base_port="${BUS389_DEMO_BASE_PORT:-9092}"
metrics_base="${BUS389_DEMO_METRICS_PORT:-9464}"
export BUS389_LOCAL__BASE_PORT="$base_port" BUS389_BOOTSTRAP="127.0.0.1:$base_port"

state_dir="${BUS389_DEMO_STATE:-$HOME/.local/state/bus389/demo}"
mkdir -p "$state_dir"

services=(route ict standing-office)
declare -A metrics_port=([route]=$metrics_base [ict]=$((metrics_base + 1)) [standing-office]=$((metrics_base + 2)))
declare -A command=(
  [route]="bus389 route --metrics-port ${metrics_port[route]}"
  [ict]="bus389 serve ict --metrics-port ${metrics_port[ict]}"
  [standing-office]="bus389 serve standing-office --metrics-port ${metrics_port[standing-office]}"
)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

is_running() { [ -f "$state_dir/$1.pid" ] && kill -0 "$(cat "$state_dir/$1.pid")" 2>/dev/null; }

stop_services() {
  for name in "${services[@]}"; do
    if is_running "$name"; then
      pid=$(cat "$state_dir/$name.pid")
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
      echo "stopped $name (pid $pid)"
    elif [ -f "$state_dir/$name.pid" ]; then
      echo "$name (pid $(cat "$state_dir/$name.pid")) had already stopped: see $state_dir/$name.log"
    fi
    rm -f "$state_dir/$name.pid"
  done
}

if [ "${1:-}" = "down" ]; then
  stop_services
  bus389 kafka down
  exit 0
fi

start_service() {
  local name=$1
  if is_running "$name"; then
    echo "$name already running (pid $(cat "$state_dir/$name.pid"))"
    return
  fi
  # shellcheck disable=SC2086 # the command line is split on purpose
  setsid nohup ${command[$name]} >"$state_dir/$name.log" 2>&1 </dev/null &
  echo $! >"$state_dir/$name.pid"
  for _ in $(seq 1 150); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:${metrics_port[$name]}/metrics', timeout=1)" 2>/dev/null; then
      echo "$name running (pid $(cat "$state_dir/$name.pid")), metrics on http://127.0.0.1:${metrics_port[$name]}/metrics, log $state_dir/$name.log"
      return
    fi
    if ! is_running "$name"; then break; fi
    sleep 0.2
  done
  echo "$name did not start; the end of its log:" >&2
  tail -n 30 "$state_dir/$name.log" >&2
  exit 1
}

# wait_for DESCRIPTION COMMAND...: retries COMMAND until it prints something (up to a minute).
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 120); do
    out=$("$@" 2>/dev/null || true)
    if [ -n "$out" ]; then printf '%s\n' "$out"; return 0; fi
    sleep 0.5
  done
  echo "timed out waiting for $what" >&2
  return 1
}

say "Kafka (KRaft, 127.0.0.1) and the bus topics"
bus389 kafka up
bus389 topics apply

say "The services: router, ICT blocklist, standing office"
for name in "${services[@]}"; do start_service "$name"; done

say "Tax office (Cục Thuế tỉnh): publish the undeclared-seller spreadsheet"
bus389 tax publish-alerts examples/tax_undeclared_sellers.xlsx

say "Market surveillance (Cục QLTT): report suspect online sellers — who receives them, and why"
bus389 routes explain examples/suspect_seller.jsonl --as market_surveillance
bus389 publish suspect_seller --as market_surveillance --file examples/suspect_seller.jsonl

say "Market surveillance (Cục QLTT): ask the ICT department to block a domain"
request_file="$state_dir/domain_block_request.jsonl"
# Today's request: the first example, occurring now (the example file is the 2021 archive).
python3 - "$request_file" <<'PY'
import json, sys
with open("examples/domain_block_request.jsonl", encoding="utf-8") as f:
    event = json.loads(f.readline())
event["meta"].pop("occurred_at", None)
event.pop("expires_at", None)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write(json.dumps(event, ensure_ascii=False) + "\n")
PY
bus389 publish domain_block_request --as market_surveillance --file "$request_file"
request_domain=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['domains'][0])" "$request_file")

say "ICT department (Sở TT&TT): the pending request, approved by the operator"
pending=$(wait_for "the request to reach the ICT service" \
  bash -c "bus389 ict pending --json | grep -F '$request_domain' | head -n 1")
request_id=$(printf '%s' "$pending" | python3 -c "import json,sys; r=json.loads(sys.stdin.readline()); print(r.get('id') or r.get('request_id') or r.get('event_id'))")
bus389 ict pending
bus389 ict approve "$request_id" --note "Demo: chặn theo đề nghị của Cục QLTT"
wait_for "the RPZ line" bash -c "bus389 ict blocklist --format rpz | grep -F '$request_domain'"

say "Market surveillance receives the result in its inbox"
wait_for "the domain_block_result" bash -c \
  "bus389 consume --as market_surveillance --from-beginning --timeout 3 | grep -F '\"domain_block_result\"' | grep -F '$request_id' | head -n 1"

say "Standing office (Cơ quan Thường trực BCĐ 389): the six-monthly report"
period=$(date +%Y)-H$(( $(date +%-m) <= 6 ? 1 : 2 ))
sleep 2
bus389 report --period "$period"

say "Running: ${services[*]} (metrics ports ${metrics_port[route]}, ${metrics_port[ict]}, ${metrics_port[standing-office]}). Stop everything with: make down"
echo "Next, in this folder, reach the bus389 command (the README's sections start here):"
echo "  . .venv/bin/activate"
if [ "$base_port" != 9092 ]; then
  echo "  export BUS389_BOOTSTRAP=127.0.0.1:$base_port BUS389_LOCAL__BASE_PORT=$base_port"
fi
echo "  bus389 status"
