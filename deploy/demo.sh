#!/usr/bin/env bash
# The bus389 demo on the local default (`make demo`), and `make down` (`deploy/demo.sh down`).
#
# Starts Kafka, applies the topics, issues every member's (and the router's) signing key, starts the
# router, the ICT and standing-office services and the web console in the background (their metrics
# ports, and the console's address and demo users, are printed), then plays the users' flows, every
# event signed by its sender and verified by the router and by its readers:
#   1. the tax office publishes its spreadsheet of undeclared online sellers;
#   2. market surveillance asks ICT to block a domain; the ICT operator approves; the RPZ line appears
#      and the result comes back to the requester;
#   3. one seller is reported by the police, customs and the tax office, each writing the name its own
#      way under one tax code (examples/correlation/);
#   4. the standing office prints its six-monthly report, writes it as the Decree 30 Word document and
#      its PDF (bao-cao-<period>.docx/.pdf in the state directory), and mails both to a local SMTP
#      server the demo starts (aiosmtpd on 127.0.0.1, STARTTLS and AUTH: deploy/smtp_sink.py).
#   5. the standing office's directive and its answer, deconfliction, the compiled report;
#   6. the proof: `bus389 audit verify` on the audit trail's hash chains, and the case's evidence bundle
#      checked by `bus389 evidence verify` with no broker.
# The services keep running; `make down` stops them, the SMTP server and Kafka.
#
# Ports (to run a second demo beside another one, e.g. the README test's): BUS389_DEMO_BASE_PORT is
# Kafka's client port (default 9092; its controller takes +100), BUS389_DEMO_METRICS_PORT the router's
# metrics port (default 9464; ICT +1, standing office +2, web console +3), BUS389_DEMO_WEB_PORT the web
# console's (default 8389), BUS389_DEMO_SMTP_PORT the SMTP server's. Everything else lives under $HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

base_port="${BUS389_DEMO_BASE_PORT:-9092}"
metrics_base="${BUS389_DEMO_METRICS_PORT:-9464}"
export BUS389_LOCAL__BASE_PORT="$base_port" BUS389_BOOTSTRAP="127.0.0.1:$base_port"

state_dir="${BUS389_DEMO_STATE:-$HOME/.local/state/bus389/demo}"
mkdir -p "$state_dir"

services=(route ict standing-office web)
web_port="${BUS389_DEMO_WEB_PORT:-8389}"
declare -A metrics_port=(
  [route]=$metrics_base [ict]=$((metrics_base + 1)) [standing-office]=$((metrics_base + 2)) [web]=$((metrics_base + 3))
)
declare -A command=(
  [route]="bus389 route --metrics-port ${metrics_port[route]}"
  [ict]="bus389 serve ict --metrics-port ${metrics_port[ict]}"
  [standing-office]="bus389 serve standing-office --metrics-port ${metrics_port[standing-office]}"
  [web]="env BUS389_WEB__PORT=$web_port bus389 serve web --metrics-port ${metrics_port[web]}"
)
# The console's demo users: NAME AGENCY ROLES. Passwords are generated into 0600 files, never printed.
demo_users=(
  "thu.thue tax clerk,viewer"
  "trinh.congan police viewer"
  "van.hanh.ict ict operator,viewer"
  "vp.bcd389 market_surveillance viewer,admin"
)
password_dir="$state_dir/web-passwords"

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

smtp_port="${BUS389_DEMO_SMTP_PORT:-2525}"
smtp_dir="$state_dir/smtp"

stop_smtp() {
  if [ -f "$smtp_dir/sink.pid" ] && kill -0 "$(cat "$smtp_dir/sink.pid")" 2>/dev/null; then
    pid=$(cat "$smtp_dir/sink.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    echo "stopped the SMTP server (pid $pid)"
  fi
  rm -f "$smtp_dir/sink.pid"
}

# start_smtp: the local SMTP server (STARTTLS with the local CA's certificate, AUTH) and the 0600
# --config file `bus389 report send` reads its password from.
start_smtp() {
  mkdir -p "$smtp_dir" && chmod 700 "$smtp_dir"
  if [ ! -f "$smtp_dir/password" ]; then
    (umask 077 && python3 -c "import secrets; print(secrets.token_urlsafe(24))" >"$smtp_dir/password")
  fi
  python3 -c "import sys; from pathlib import Path; from bus389.security.tls import ensure_local_tls; ensure_local_tls(Path(sys.argv[1]))" "$smtp_dir/tls"
  (
    umask 077
    {
      echo "BUS389_MAIL__HOST=\"127.0.0.1\""
      echo "BUS389_MAIL__PORT=\"$smtp_port\""
      echo "BUS389_MAIL__USERNAME=\"thuongtruc@bcd389.local\""
      echo "BUS389_MAIL__PASSWORD=\"$(cat "$smtp_dir/password")\""
      echo "BUS389_MAIL__SSL_CAFILE=\"$smtp_dir/tls/ca.pem\""
      echo "BUS389_MAIL__SENDER=\"thuongtruc@bcd389.local\""
    } >"$smtp_dir/mail.env"
  )
  if [ -f "$smtp_dir/sink.pid" ] && kill -0 "$(cat "$smtp_dir/sink.pid")" 2>/dev/null; then
    echo "SMTP server already running (pid $(cat "$smtp_dir/sink.pid"))"
    return
  fi
  rm -f "$smtp_dir/sink.log"
  setsid nohup python3 deploy/smtp_sink.py --host 127.0.0.1 --port "$smtp_port" \
    --cert "$smtp_dir/tls/broker.pem" --maildir "$smtp_dir/maildir" --user thuongtruc@bcd389.local \
    --password-file "$smtp_dir/password" --pid-file "$smtp_dir/sink.pid" >"$smtp_dir/sink.log" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    if grep -q "listening" "$smtp_dir/sink.log" 2>/dev/null; then
      echo "SMTP server on 127.0.0.1:$smtp_port (STARTTLS, AUTH), mail kept in $smtp_dir/maildir"
      return
    fi
    sleep 0.2
  done
  echo "the SMTP server did not start; its log:" >&2
  cat "$smtp_dir/sink.log" >&2
  exit 1
}

if [ "${1:-}" = "down" ]; then
  stop_services
  stop_smtp
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

say "The web console's demo users (passwords generated into 0600 files)"
mkdir -p "$password_dir" && chmod 700 "$password_dir"
for entry in "${demo_users[@]}"; do
  read -r user agency roles <<<"$entry"
  if [ ! -f "$password_dir/$user.password" ]; then
    # A user left from an earlier demo whose password file is gone gets a new password.
    bus389 web user add "$user" --agency "$agency" --roles "$roles" --password-out "$password_dir/$user.password" \
      || bus389 web user passwd "$user" --password-out "$password_dir/$user.password"
  fi
done

say "Signing keys (Ed25519): one per member and one for the router, private keys in 0600 files"
# Every event of the demo is signed by its sender and checked by the router and every reader: one operator
# plays every member here, so the keys sit in one folder (signing.key_dir), each used for its owner's
# events only. A key is issued when its file is missing or the registry has none of its owner.
keys_dir="$state_dir/signing-keys"
mkdir -p "$keys_dir" && chmod 700 "$keys_dir"
registered=$(bus389 security keys list)
for owner in $(python3 -c "from bus389.security.acl import client_principals; print(*client_principals())"); do
  if [ ! -f "$keys_dir/$owner.signing.pem" ] || ! grep -qE "^[^ ]+  $owner " <<<"$registered"; then
    bus389 security keys issue "$owner" --key-file "$keys_dir/$owner.signing.pem"
  fi
done
export BUS389_SIGNING__KEY_DIR="$keys_dir"
echo "keys in $keys_dir; registered on the key registry topic: $(bus389 security keys list | wc -l) key(s)"
echo "the router checks every signature; unsigned events still pass in this local plaintext mode (the"
echo "secure mode refuses them: BUS389_SIGNING__REQUIRE), so the README's commands work with or without a key"

say "The services: router, ICT blocklist, standing office, web console"
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

say "Market surveillance receives the result in its inbox, signed by ICT and verified"
result_line=$(wait_for "the domain_block_result" bash -c \
  "bus389 consume --as market_surveillance --from-beginning --timeout 3 | grep -F '\"domain_block_result\"' | grep -F '$request_id' | head -n 1")
printf '%s\n' "$result_line" | python3 -c '
import json, sys
row = json.loads(sys.stdin.readline())
check, meta = row["signature"], row["event"]["meta"]
removed = ", ".join(check.get("removed") or ()) or "none"
print("domain_block_result", meta["event_id"], "of case", meta["case_ref"], "from", meta["source"])
print("  signature:", check["status"], "- signed by", check.get("signer"), "with key", check.get("kid"))
print("  fields removed by the router on the way:", removed)
sys.exit(0 if check["status"] == "verified" else 1)
'

say "One seller, three agencies: the police (2021 and today), customs and the tax office, three spellings"
bus389 publish suspect_seller --as police --file examples/correlation/police.suspect_seller.jsonl
bus389 publish suspect_seller --as customs --file examples/correlation/customs.suspect_seller.jsonl
bus389 publish tax_discrepancy --as tax --file examples/correlation/tax.tax_discrepancy.jsonl
wait_for "the standing office to store the three agencies' reports" bash -c \
  "bus389 report --correlate 4300957713 | grep -F -- '- Cơ quan báo cáo:' | grep -F 'Công an' | grep -F 'Hải quan' | grep -F 'Thuế'"

say "Standing office (Cơ quan Thường trực BCĐ 389): the six-monthly report"
period=$(date +%Y)-H$(( $(date +%-m) <= 6 ? 1 : 2 ))
sleep 2
bus389 report --period "$period"

say "Standing office: the seller's whole history, whenever reported (bus389 report --correlate)"
bus389 report --correlate 4300957713

say "Standing office: the report as the state's document (Decree 30/2020/NĐ-CP), Word and PDF"
export BUS389_REPORT__SIGNER_NAME="${BUS389_REPORT__SIGNER_NAME:-Nguyễn Văn An}"
export BUS389_REPORT__SIGNER_TITLE="${BUS389_REPORT__SIGNER_TITLE:-Phó Trưởng ban}"
export BUS389_REPORT__SIGNER_AUTHORITY="${BUS389_REPORT__SIGNER_AUTHORITY:-KT. Trưởng ban}"
bus389 report --period "$period" --format docx --out "$state_dir/bao-cao-$period.docx"
bus389 report --period "$period" --format pdf --out "$state_dir/bao-cao-$period.pdf"

say "Standing office: mail the report (STARTTLS, AUTH) to a local SMTP server"
start_smtp
bus389 --config "$smtp_dir/mail.env" report send --period "$period" \
  --to vanphong@bcd389.local --to ubnd-tinh@bcd389.local
python3 - "$smtp_dir/maildir" <<'PY'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
for key in sorted(box.keys())[-1:]:
    message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
    print(f"received: {message['Subject']} — to {message['To']}")
    for part in message.iter_attachments():
        print(f"  attachment {part.get_filename()} ({part.get_content_type()}, {len(part.get_content())} bytes)")
PY

# pick EVENT_TYPE [FIELD=VALUE...]: the first event of `bus389 consume` lines on stdin of EVENT_TYPE
# whose fields (dotted paths into the event) equal the values given; prints its event id.
pick() {
  python3 -c '
import json, sys
wanted = sys.argv[1]
checks = [a.split("=", 1) for a in sys.argv[2:]]
def at(event, path):
    for part in path.split("."):
        event = event.get(part) if isinstance(event, dict) else None
    return event
for line in sys.stdin:
    row = json.loads(line)
    event = row.get("event") or {}
    if row.get("event_type") == wanted and all(str(at(event, p)) == v for p, v in checks):
        print(event["meta"]["event_id"])
        break
 ' "$@"
}
export -f pick

# reported PERIOD AGENCY: prints the compiled report line once AGENCY's own report for PERIOD is in it.
reported() {
  bus389 so compile "$1" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(f"{sys.argv[1]} has reported for {sys.argv[2]}") if sys.argv[1] in d["members_reported"] else None' "$2" "$1"
}
export -f reported

# today FILE LINE OUT [PYTHON]: example LINE of FILE, occurring now, edited by PYTHON (on `e`), to OUT.
today() {
  python3 - "$@" <<'PY'
import json, sys
from datetime import UTC, datetime, timedelta
src, line, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(src, encoding="utf-8") as f:
    e = json.loads(f.read().splitlines()[line])
e["meta"].pop("occurred_at", None)
e["meta"].pop("in_reply_to", None)
tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
exec(sys.argv[4] if len(sys.argv) > 4 else "")
with open(out, "w", encoding="utf-8") as f:
    f.write(json.dumps(e, ensure_ascii=False) + "\n")
PY
}

say "Standing office: a directive (đôn đốc, II.9) to the police, and the police's answer"
today examples/directive.jsonl 1 "$state_dir/directive.jsonl" \
  'e["meta"]["recipients"] = ["police"]; e["meta"]["case_ref"] = "QNG-389-DEMO-01"; e["due_at"] = tomorrow'
bus389 publish directive --as market_surveillance --file "$state_dir/directive.jsonl"
directive_id=$(wait_for "the directive in the police inbox" bash -c \
  "bus389 consume --as police --from-beginning --timeout 3 2>/dev/null | pick directive meta.case_ref=QNG-389-DEMO-01")
echo "police received directive $directive_id"
today examples/periodic_report.jsonl 0 "$state_dir/answer.jsonl" \
  "e['meta']['in_reply_to'] = '$directive_id'; e['report_kind'] = 'AD_HOC'; e['title'] = 'Trả lời đôn đốc: đã xử lý'"
bus389 publish periodic_report --as police --file "$state_dir/answer.jsonl"
wait_for "the answer in the standing office's store" bash -c \
  "bus389 so directives --json | grep -F '$directive_id' | grep -F '\"waiting_for\": []'"
bus389 so directives

say "Deconfliction (I.2): the police take up a seller; customs claims the same seller; both are told at once"
today examples/case_claim.jsonl 0 "$state_dir/claim_police.jsonl" 'e["meta"]["case_ref"] = "QNG-389-DEMO-02"'
today examples/case_claim.jsonl 0 "$state_dir/claim_customs.jsonl" \
  'e["meta"]["case_ref"] = "QNG-389-DEMO-03"; e["accounts"] = [{"platform": "SHOPEE", "account": "thutrang.official"}]'
bus389 publish case_claim --as police --file "$state_dir/claim_police.jsonl"
sleep 2
bus389 publish case_claim --as customs --file "$state_dir/claim_customs.jsonl"
wait_for "the DECONFLICT directive in the customs inbox" bash -c \
  "bus389 consume --as customs --from-beginning --timeout 3 2>/dev/null | grep -F '\"DECONFLICT\"' | grep -F 'QNG-389-DEMO-03' | head -n 1"
bus389 so directives | grep -A2 DECONFLICT || true

say "Standing office: the compiled report to the committee (II.9), with the members' own figures"
today examples/periodic_report.jsonl 0 "$state_dir/customs_h.jsonl" "e['period'] = '$period'"
bus389 publish periodic_report --as customs --file "$state_dir/customs_h.jsonl"
wait_for "the customs report in the standing office's store" reported "$period" customs
bus389 so compile "$period" > "$state_dir/compiled_report.jsonl"
bus389 publish compiled_report --as market_surveillance --file "$state_dir/compiled_report.jsonl"
wait_for "the compiled report in the committee's inbox" bash -c \
  "bus389 consume --as committee --from-beginning --timeout 3 2>/dev/null | grep -F '\"compiled_report\"' | head -n 1" \
  | python3 -c "import json,sys; e=json.loads(sys.stdin.readline())['event']; print(e['title']); print(e['body'])"

say "Proof: the audit trail's hash chains, and the case's evidence checked with no broker"
bus389 audit verify
case_ref=$(printf '%s\n' "$result_line" | python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['event']['meta']['case_ref'])")
bus389 security keys export --out "$state_dir/keys.json"
bus389 evidence export --case "$case_ref" --as market_surveillance --out "$state_dir/evidence-$case_ref.zip"
# Offline: no broker at this address; the bundle and the exported public keys are all it needs.
BUS389_BOOTSTRAP=127.0.0.1:1 bus389 evidence verify "$state_dir/evidence-$case_ref.zip" --keys "$state_dir/keys.json"

say "Running: ${services[*]} (metrics ports ${metrics_port[route]}, ${metrics_port[ict]}, ${metrics_port[standing-office]}, ${metrics_port[web]}), SMTP on 127.0.0.1:$smtp_port. Stop everything with: make down"
echo "Web console: http://127.0.0.1:$web_port/ — sign in as (demo passwords, generated for this machine):"
for entry in "${demo_users[@]}"; do
  read -r user agency roles <<<"$entry"
  echo "  $user ($agency: $roles): $(cat "$password_dir/$user.password")  (kept in $password_dir/$user.password, mode 0600)"
done
echo "Next, in this folder, reach the bus389 command (the README's sections start here):"
echo "  . .venv/bin/activate"
if [ "$base_port" != 9092 ]; then
  echo "  export BUS389_BOOTSTRAP=127.0.0.1:$base_port BUS389_LOCAL__BASE_PORT=$base_port"
fi
echo "  export BUS389_SIGNING__KEY_DIR=$keys_dir"
echo "  bus389 status"
