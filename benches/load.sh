#!/usr/bin/env bash
# The record and replay rows of issue 10 under wrk load, each printed as a ratio against a
# baseline measured in the same round, medians over rounds:
#   - record req/s at 32 connections vs the upstream served directly and vs nginx as a plain
#     reverse proxy (proxy_pass, keep-alive upstream);
#   - stored vs answered: what is on disk when the load stops, how long the writer needs
#     after it, and the stored rate (answered / (load + drain)); after SIGTERM every answered
#     exchange must be in the recording;
#   - record's peak resident memory (VmHWM) under that load, and its CPU per exchange by
#     thread (workers, finishing thread, writer) beside the floor proxy's;
#   - record's memory over DISTINCT_DURATION s (30 by default) of requests that are all
#     distinct (?ack=N counting up, as the events feed's P-GETs are): it must stay flat;
#   - added median latency at 1 connection, record vs nginx proxy;
#   - replay req/s and p99 at 32 connections vs nginx serving the same bytes from a file
#     (ONLY=replay also measures first-time answers alone, the first second of a replay, and
#     answers served before, a run once the recording is used up);
#   - SIGTERM in the middle of a load: nothing answered is lost;
#   - and, as a floor under the record and replay rows, hyper and tokio alone
#     (benches/floor.rs: a proxy and a static server that do nothing else, and the static
#     answer through ucwa-replay's own serve layer), so a gap can be told apart into the
#     framework's share and ours.
#
# Usage: benches/load.sh            (ROUNDS=5 DURATION=4 DISTINCT_DURATION=30 by default; each can be set)
#        ONLY=replay benches/load.sh   (the replay rows alone: one recording, then nginx and
#                                       replay taken in turn each round; BIN2=PATH adds
#                                       another build's replay to each round, e.g. an older one)
#        ONLY=latency benches/load.sh  (the 1-connection latency rows alone, a fresh record per
#                                       round; BIN2=PATH adds another build's record)
#        BIN=PATH benches/load.sh      (measure that binary instead of building this tree)
# Installs wrk and nginx with apt-get when they are missing and it runs as root. Without
# nginx the upstream is the built-in simulator (its unauthenticated autodiscover GET) and
# the nginx rows are skipped; without wrk nothing can be measured.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
DISTINCT_DURATION=${DISTINCT_DURATION:-30}
CONNS=32

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing wrk and nginx (apt-get)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light) >/dev/null 2>&1 ||
      echo "apt-get could not install wrk/nginx" >&2
  fi
fi
if ! command -v wrk >/dev/null; then
  echo "wrk is not installed (apt-get install wrk): nothing to measure here;" \
    "cargo bench --bench pget and --bench writer need no wrk" >&2
  exit 0
fi
HAVE_NGINX=0
command -v nginx >/dev/null && HAVE_NGINX=1
[ "$HAVE_NGINX" = 1 ] || echo "nginx is not installed: the nginx rows are skipped, the upstream is the simulator" >&2

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q
  BIN=$PWD/target/release/ucwa-replay
fi
# The floor (benches/floor.rs): hyper and tokio alone, as a static server and as a proxy.
FLOOR=$(cargo bench --locked --bench floor --no-run 2>&1 | sed -n 's/.*Executable benches\/floor.rs (\(.*\))/\1/p')
[ -x "$FLOOR" ] || { echo "could not build benches/floor.rs" >&2; exit 1; }
T=$(mktemp -d)
chmod 755 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$T"
}
trap cleanup EXIT

free_port() { # below the ephemeral range, in no state at all (TIME_WAIT included)
  local p
  while :; do
    p=$((12000 + RANDOM % 16000))
    ss -tan 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" || { echo "$p"; return; }
  done
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int(NR/2)+1]; else print "nan"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }

# wrk output -> "rps p50_us p99_us answered non2xx"
wrk_run() {
  local conns=$1 url=$2 out
  out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency -H "Accept: application/json" "$url" 2>&1)
  echo "$out" >>"$T/wrk.log"
  echo "$out" | awk '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = us($2) }
    /^ +99%/ { p99 = us($2) }
    /requests in/ { n = $1 }
    /Non-2xx/ { bad = $NF }
    END { printf "%s %s %s %s %d\n", rps, p50, p99, n, bad }'
}

# Exchanges stored in session $2 of $1 (0 while the session is not visible yet).
stored() {
  local n
  n=$("$BIN" sessions --db "$1" --format json 2>/dev/null |
    awk -v s="$2" '/"name":/ { cur = ($2 == "\"" s "\",") } cur && /"exchanges":/ { gsub(/[^0-9]/, "", $2); print $2; exit }')
  echo "${n:-0}"
}

start_server() { # name args... ; sets SRV_PID and SRV_URL
  local name=$1
  shift
  "$BIN" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  for _ in $(seq 1 500); do
    SRV_URL=$(head -1 "$T/$name.out" 2>/dev/null || true)
    [ -n "$SRV_URL" ] && return 0
    sleep 0.02
  done
  echo "$name did not start: $(cat "$T/$name.err")" >&2
  exit 1
}

stop_server() { # PID: SIGTERM, then wait for it to exit (its exit status does not matter)
  kill -TERM "$1"
  wait "$1" || true
}

build() { # 1 or 2: the binary measured as that build (BIN, or BIN2: empty when not given)
  if [ "$1" = 1 ]; then echo "$BIN"; else echo "${BIN2:-}"; fi
}

one_get() { # URL: one complete GET of $PATH_PM
  local hostport=${1#http://}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nConnection: close\r\n\r\n' "$PATH_PM" "$hostport" >&3
  cat <&3 >/dev/null
  exec 3>&-
}

# CPU ticks (utime + stime, 1/100 s) of PID's threads whose name starts with PREFIX (all
# threads when PREFIX is empty); nan when no thread has that name (the names are the ones
# src/ gives its threads, cut to 15 bytes: a renamed thread must not read as 0 µs).
cpu_ticks() {
  local t sum=0 found=0 name
  for t in /proc/"$1"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    case "$name" in "$2"*)
      found=1
      sum=$((sum + $(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null || echo 0))) ;;
    esac
  done
  if [ "$found" = 1 ]; then echo "$sum"; else echo nan; fi
}
# Microseconds of CPU per request from two tick counts and a request count.
us_per() {
  if [ "$1" = nan ] || [ "$2" = nan ]; then echo nan; return; fi
  awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.1f\n", (b - a) * 10000 / n; else print "nan" }'
}

hwm_mb() { awk '/VmHWM/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo nan; }
rss_mb() { awk '/VmRSS/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo nan; }

PATH_PM=/ucwa/oauth/v1/applications/1/communication/conversations/7/participants/bob/messaging
if [ "$HAVE_NGINX" = 1 ]; then
  UP_PORT=$(free_port)
  NP_PORT=$(free_port)
  while [ "$NP_PORT" = "$UP_PORT" ]; do NP_PORT=$(free_port); done
  mkdir -p "$T/www" "$T/tmp"
  cat >"$T/www/pm.json" <<'EOF'
{"rel":"participantMessaging","_links":{"self":{"href":"/ucwa/oauth/v1/applications/1/communication/conversations/7/participants/bob/messaging"},"participant":{"href":"/ucwa/oauth/v1/applications/1/communication/conversations/7/participants/bob"},"conversation":{"href":"/ucwa/oauth/v1/applications/1/communication/conversations/7"},"sendMessage":{"href":"/ucwa/oauth/v1/applications/1/communication/conversations/7/messaging/messages"}},"state":"Connected","timeStamp":"/Date(1474932027613)/"}
EOF
  chmod -R a+rX "$T/www"
  cat >"$T/nginx.conf" <<EOF
worker_processes auto;
pid $T/nginx.pid;
error_log $T/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/tmp/body;
  proxy_temp_path $T/tmp/proxy;
  fastcgi_temp_path $T/tmp/fastcgi;
  uwsgi_temp_path $T/tmp/uwsgi;
  scgi_temp_path $T/tmp/scgi;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$UP_PORT;
    location / { root $T/www; default_type application/json; try_files /pm.json =404; }
  }
  server {
    listen 127.0.0.1:$NP_PORT;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  nginx -c "$T/nginx.conf" -p "$T" -g 'daemon on;' 2>"$T/nginx-start.err" || {
    echo "nginx did not start: $(cat "$T/nginx-start.err")" >&2
    exit 1
  }
  UPSTREAM=http://127.0.0.1:$UP_PORT
  NGINX_PROXY=http://127.0.0.1:$NP_PORT
else
  start_server sim simulate --listen 127.0.0.1:0 --seed 1
  UPSTREAM=$SRV_URL
  PATH_PM=/autodiscover/autodiscoverservice.svc/root
fi
if [ ! -f "$T/www/pm.json" ]; then # the simulator is the upstream: the floor serves its bytes
  mkdir -p "$T/www"
  hostport=${UPSTREAM#http://}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nConnection: close\r\n\r\n' "$PATH_PM" "$hostport" >&3
  sed '1,/^\r$/d' <&3 >"$T/www/pm.json"
  exec 3>&-
fi
BIN=$FLOOR start_server floor-static static "$T/www/pm.json"
FLOOR_STATIC=$SRV_URL
BIN=$FLOOR start_server floor-served served "$T/www/pm.json"
FLOOR_SERVED=$SRV_URL
BIN=$FLOOR start_server floor-proxy proxy "$UPSTREAM"
FLOOR_PROXY=$SRV_URL
FLOOR_PROXY_PID=$SRV_PID
sleep 0.3

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%d MiB", $2/1024}' /proc/meminfo) RAM"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes')"
echo "wrk -t1 keep-alive, ${DURATION} s per run, $ROUNDS rounds, GET $PATH_PM; medians"
echo

# The median latency at 1 connection of the upstream direct, nginx proxy_pass and the floor
# proxy, each appended to its file (arguments: the three file names under $T).
baselines_at_1() {
  local rps p50 p99 n bad
  read -r rps p50 p99 n bad < <(wrk_run 1 "$UPSTREAM$PATH_PM")
  echo "$p50" >>"$T/$1"
  if [ "$HAVE_NGINX" = 1 ]; then
    read -r rps p50 p99 n bad < <(wrk_run 1 "$NGINX_PROXY$PATH_PM")
    echo "$p50" >>"$T/$2"
  fi
  read -r rps p50 p99 n bad < <(wrk_run 1 "$FLOOR_PROXY$PATH_PM")
  echo "$p50" >>"$T/$3"
}

DB=$T/rec.sqlite
if [ "${ONLY:-}" = latency ]; then
  # The 1-connection rows alone: per round the upstream direct, nginx proxy_pass and a fresh
  # record (and BIN2's) in turn, so each difference compares the same moment.
  for r in $(seq 1 "$ROUNDS"); do
    baselines_at_1 lat-direct lat-nginx lat-floor
    for b in 1 2; do
      bin=$(build "$b")
      [ -n "$bin" ] || continue
      # A file per build: each may write a schema the other cannot open.
      BIN=$bin start_server "lat$r-$b" record --upstream "$UPSTREAM" --listen 127.0.0.1:0 --db "$T/lat-$b.sqlite" --session "lat$r-$b"
      read -r rps p50 p99 n bad < <(wrk_run 1 "$SRV_URL$PATH_PM")
      echo "$p50" >>"$T/lat-record-$b"
      stop_server "$SRV_PID"
    done
    echo "round $r done" >&2
  done
  d1=$(median <"$T/lat-direct")
  echo "median latency at 1 connection (µs), medians of $ROUNDS rounds:"
  echo "  upstream direct (baseline)     $d1   per round: $(tr '\n' ' ' <"$T/lat-direct")"
  base=$d1
  if [ "$HAVE_NGINX" = 1 ]; then
    n1=$(median <"$T/lat-nginx")
    base=$n1
    echo "  nginx proxy_pass               $n1  (+$(awk -v a="$n1" -v b="$d1" 'BEGIN { print a - b }'))   per round: $(tr '\n' ' ' <"$T/lat-nginx")"
  fi
  f1=$(median <"$T/lat-floor")
  echo "  hyper proxy floor              $f1  (+$(awk -v a="$f1" -v b="$d1" 'BEGIN { print a - b }'))   per round: $(tr '\n' ' ' <"$T/lat-floor")"
  for b in 1 2; do
    [ -f "$T/lat-record-$b" ] || continue
    name=$(build "$b")
    r1=$(median <"$T/lat-record-$b")
    echo "  record ($name) $r1  (+$(awk -v a="$r1" -v b="$d1" 'BEGIN { print a - b }')); over nginx's: $(awk -v a="$r1" -v n="$base" 'BEGIN { print a - n }') µs (target ≤ 15); over the floor's: $(awk -v a="$r1" -v f="$f1" 'BEGIN { print a - f }') µs   per round: $(tr '\n' ' ' <"$T/lat-record-$b")"
  done
  exit 0
fi
if [ "${ONLY:-}" = replay ]; then
  # One recording (as in the full run: 32 connections, then one complete request), then per
  # round nginx and the replay (and BIN2's) in turn, so each ratio compares the same moment.
  # Twice as long as a round's runs, so that the first-time row below stays within it.
  # Recorded by BIN2 when given (usually an older build): a build reads the schemas before
  # its own, not the ones after.
  REC_BIN=$(build 2)
  BIN=${REC_BIN:-$BIN} start_server record record --upstream "$UPSTREAM" --listen 127.0.0.1:0 --db "$DB" --session load
  REC=$SRV_PID
  read -r rps p50 p99 answered bad < <(DURATION=$((2 * DURATION)) wrk_run $CONNS "$SRV_URL$PATH_PM")
  one_get "$SRV_URL" && answered=$((answered + 1))
  stop_server "$REC"
  echo "recorded $(stored "$DB" load) exchanges (answered $answered)"
  for r in $(seq 1 "$ROUNDS"); do
    read -r rps p50 p99 n bad < <(wrk_run $CONNS "$UPSTREAM$PATH_PM")
    echo "$rps" >>"$T/direct32"; echo "$p99" >>"$T/direct32p99"
    read -r rps p50 p99 n bad < <(wrk_run $CONNS "$FLOOR_STATIC$PATH_PM")
    echo "$rps" >>"$T/floorstatic32"; echo "$p99" >>"$T/floorstatic32p99"
    read -r rps p50 p99 n bad < <(wrk_run $CONNS "$FLOOR_SERVED$PATH_PM")
    echo "$rps" >>"$T/floorserved32"
    for b in 1 2; do
      bin=$(build "$b")
      [ -n "$bin" ] || continue
      # First-time answers: the first second of a fresh replay, where every request asks
      # for a recorded answer not served before (a test suite's case).
      BIN=$bin start_server "replayfirst$r-$b" replay --db "$DB" --session load --listen 127.0.0.1:0
      read -r rps p50 p99 n bad < <(DURATION=1 wrk_run $CONNS "$SRV_URL$PATH_PM")
      echo "$rps" >>"$T/replayfirst-$b"; echo "$n" >>"$T/replayfirst_n-$b"
      stop_server "$SRV_PID"
      BIN=$bin start_server "replay$r-$b" replay --db "$DB" --session load --listen 127.0.0.1:0
      REP=$SRV_PID
      read -r rps p50 p99 n bad < <(wrk_run $CONNS "$SRV_URL$PATH_PM")
      echo "$rps" >>"$T/replay32-$b"; echo "$p99" >>"$T/replay32p99-$b"
      ratio "$bad" "$n" >>"$T/replay_bad-$b"; echo >>"$T/replay_bad-$b"
      # Answers served before: the same replay again, once the whole run has used the
      # recording up (every answer is then its last one, repeated: a polling client's case).
      used_up=$n
      read -r rps p50 p99 n bad < <(wrk_run $CONNS "$SRV_URL$PATH_PM")
      if [ "$used_up" -ge "$(stored "$DB" load)" ]; then
        echo "$rps" >>"$T/replayrepeat-$b"; echo "$p99" >>"$T/replayrepeatp99-$b"
      fi
      hwm_mb "$REP" >>"$T/replay_peak-$b"
      stop_server "$REP"
    done
    echo "round $r done" >&2
  done
  d32=$(median <"$T/direct32")
  dp=$(median <"$T/direct32p99")
  echo "replay at $CONNS connections ($( [ "$HAVE_NGINX" = 1 ] && echo 'vs nginx serving the same bytes from a file' || echo 'vs the simulator' )):"
  echo "  upstream: $d32 req/s, p99 $dp µs"
  fs=$(median <"$T/floorstatic32")
  fsp=$(median <"$T/floorstatic32p99")
  echo "  hyper static floor: $fs req/s ($(ratio "$fs" "$d32")× the upstream), p99 $fsp µs"
  fv=$(median <"$T/floorserved32")
  echo "  the same answer through ucwa-replay's serve layer: $fv req/s ($(ratio "$fv" "$fs")× the floor)"
  recorded=$(stored "$DB" load)
  for b in 1 2; do
    [ -f "$T/replay32-$b" ] || continue
    name=$(build "$b")
    rp=$(median <"$T/replay32-$b")
    rpp=$(median <"$T/replay32p99-$b")
    rf=$(median <"$T/replayfirst-$b")
    echo "  $name:"
    echo "    first-time answers (first second of a fresh replay; $(median <"$T/replayfirst_n-$b") asked of $recorded recorded): req/s $rf  ratio $(ratio "$rf" "$d32"), $(ratio "$rf" "$fs")× the floor"
    echo "    a whole run (first-time answers, then the last one repeated): req/s $rp  ratio $(ratio "$rp" "$d32") (target ≥ 1.0), $(ratio "$rp" "$fs")× the floor; p99 $rpp µs  ratio $(ratio "$rpp" "$dp") (target ≤ 1.5)"
    if [ -f "$T/replayrepeat-$b" ]; then
      rr=$(median <"$T/replayrepeat-$b")
      rrp=$(median <"$T/replayrepeatp99-$b")
      echo "    answers served before (the recording used up, the last answer repeated; $(wc -l <"$T/replayrepeat-$b") of $ROUNDS rounds): req/s $rr  ratio $(ratio "$rr" "$d32"), $(ratio "$rr" "$fs")× the floor; p99 $rrp µs  ratio $(ratio "$rrp" "$dp")"
    else
      echo "    answers served before: not measured (no whole run used the recording up)"
    fi
    echo "    peak resident $(median <"$T/replay_peak-$b") MB; share of answers not 2xx: $(median <"$T/replay_bad-$b")"
    echo "    per round req/s: $(tr '\n' ' ' <"$T/replay32-$b"); nginx: $(tr '\n' ' ' <"$T/direct32")"
  done
  exit 0
fi
for r in $(seq 1 "$ROUNDS"); do
  read -r rps p50 p99 n bad < <(wrk_run $CONNS "$UPSTREAM$PATH_PM")
  echo "$rps" >>"$T/direct32"; echo "$p99" >>"$T/direct32p99"
  if [ "$HAVE_NGINX" = 1 ]; then
    read -r rps p50 p99 n bad < <(wrk_run $CONNS "$NGINX_PROXY$PATH_PM")
    echo "$rps" >>"$T/nginx32"
  fi
  c0=$(cpu_ticks "$FLOOR_PROXY_PID" "")
  read -r rps p50 p99 n bad < <(wrk_run $CONNS "$FLOOR_PROXY$PATH_PM")
  echo "$rps" >>"$T/floor32"
  us_per "$c0" "$(cpu_ticks "$FLOOR_PROXY_PID" "")" "$n" >>"$T/floor32cpu"
  read -r rps p50 p99 n bad < <(wrk_run $CONNS "$FLOOR_STATIC$PATH_PM")
  echo "$rps" >>"$T/floorstatic32"
  read -r rps p50 p99 n bad < <(wrk_run $CONNS "$FLOOR_SERVED$PATH_PM")
  echo "$rps" >>"$T/floorserved32"

  start_server "record$r" record --upstream "$UPSTREAM" --listen 127.0.0.1:0 --db "$DB" --session "load$r"
  REC=$SRV_PID
  w0=$(cpu_ticks "$REC" ucwa-worker)
  f0=$(cpu_ticks "$REC" ucwa-record-fin)
  s0=$(cpu_ticks "$REC" ucwa-store-writ)
  read -r rps p50 p99 answered bad < <(wrk_run $CONNS "$SRV_URL$PATH_PM")
  t_end=$(date +%s.%N)
  # The writer is still finishing the load's last batch: its ticks are read after the drain.
  us_per "$w0" "$(cpu_ticks "$REC" ucwa-worker)" "$answered" >>"$T/rec_worker"
  us_per "$f0" "$(cpu_ticks "$REC" ucwa-record-fin)" "$answered" >>"$T/rec_finish"
  at_end=$(stored "$DB" "load$r")
  echo "$rps" >>"$T/record32"
  # Wait for the writer to catch up with what was answered (at most 300 s).
  now=$at_end
  while [ "$now" -lt "$answered" ]; do
    sleep 0.1
    now=$(stored "$DB" "load$r")
    awk -v s="$t_end" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - s > 300) }' && break
  done
  drain=$(awk -v s="$t_end" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }')
  us_per "$s0" "$(cpu_ticks "$REC" ucwa-store-writ)" "$answered" >>"$T/rec_writer"
  echo "$(ratio "$at_end" "$answered")" >>"$T/at_end"
  echo "$drain" >>"$T/drain"
  echo "$(awk -v a="$answered" -v d="$DURATION" -v x="$drain" 'BEGIN { printf "%.0f", a / (d + x) }')" >>"$T/stored_rate"
  hwm_mb "$REC" >>"$T/peak"
  # 1 connection: record, then the others.
  read -r rps p50 p99 n1 bad < <(wrk_run 1 "$SRV_URL$PATH_PM")
  echo "$p50" >>"$T/record1"
  answered=$((answered + n1))
  # wrk hangs up with a request in flight (recorded as aborted, no response): one complete
  # request last, so that the replay below repeats a real answer once the recorded ones
  # are used up (--exhausted repeat-last).
  one_get "$SRV_URL" && answered=$((answered + 1))
  stop_server "$REC"
  final=$(stored "$DB" "load$r")
  echo "$answered $final" >>"$T/counts"
  baselines_at_1 direct1 nginx1 floor1

  # Replay of this round's recording at 32 connections vs the upstream (nginx: the same
  # bytes from a file) measured just before.
  start_server "replay$r" replay --db "$DB" --session "load$r" --listen 127.0.0.1:0
  REP=$SRV_PID
  read -r rps p50 p99 n bad < <(wrk_run $CONNS "$SRV_URL$PATH_PM")
  echo "$rps" >>"$T/replay32"; echo "$p99" >>"$T/replay32p99"
  ratio "$bad" "$n" >>"$T/replay_bad"; echo >>"$T/replay_bad"
  stop_server "$REP"
  echo "round $r done" >&2
done

# SIGTERM in the middle of a load.
start_server recordterm record --upstream "$UPSTREAM" --listen 127.0.0.1:0 --db "$DB" --session term
REC=$SRV_PID
wrk -t1 -c$CONNS -d"${DURATION}s" -H "Accept: application/json" "$SRV_URL$PATH_PM" >"$T/wrk-term.log" 2>&1 &
WRK=$!
sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
stop_server "$REC"
wait "$WRK" || true
term_answered=$(awk '/requests in/ { print $1 }' "$T/wrk-term.log")
term_stored=$(stored "$DB" term)

# Every request distinct, as every events-feed P-GET is (its ack): record meets a new match
# key with each exchange, and its memory must stay flat however many it meets.
cat >"$T/distinct.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "$PATH_PM?ack=" .. counter, { ["Accept"] = "application/json" })
end
LUA
start_server recorddistinct record --upstream "$UPSTREAM" --listen 127.0.0.1:0 --db "$DB" --session distinct
REC=$SRV_PID
wrk -t1 -c$CONNS -d"${DISTINCT_DURATION}s" -s "$T/distinct.lua" "$SRV_URL" >"$T/wrk-distinct.log" 2>&1 &
WRK=$!
for _ in 1 2 3; do
  sleep "$(awk -v d="$DISTINCT_DURATION" 'BEGIN { print d / 3 }')"
  rss_mb "$REC" >>"$T/distinct_rss"
done
wait "$WRK" || true
distinct_peak=$(hwm_mb "$REC")
distinct_answered=$(awk '/requests in/ { print $1 }' "$T/wrk-distinct.log")
stop_server "$REC"
distinct_stored=$(stored "$DB" distinct)

d32=$(median <"$T/direct32")
r32=$(median <"$T/record32")
echo "record at $CONNS connections (req/s):"
echo "  upstream direct (baseline)     $d32"
if [ "$HAVE_NGINX" = 1 ]; then
  n32=$(median <"$T/nginx32")
  echo "  nginx proxy_pass               $n32  ratio $(ratio "$n32" "$d32")"
  echo "  ucwa-replay record             $r32  ratio $(ratio "$r32" "$d32"); vs nginx proxy $(ratio "$r32" "$n32") (target ≥ 0.6)"
else
  echo "  ucwa-replay record             $r32  ratio $(ratio "$r32" "$d32")"
fi
f32=$(median <"$T/floor32")
echo "  hyper proxy floor              $f32  ratio $(ratio "$f32" "$d32"); record is $(ratio "$r32" "$f32")× the floor"
echo "  CPU per exchange (µs, utime + stime of the threads): record's workers $(median <"$T/rec_worker"), finishing thread $(median <"$T/rec_finish"), writer $(median <"$T/rec_writer"); the floor proxy's workers $(median <"$T/floor32cpu")"
echo "stored vs answered (record at $CONNS connections, $DURATION s):"
echo "  stored when the load stops     $(median <"$T/at_end") of answered"
echo "  writer still busy after it     $(median <"$T/drain") s"
echo "  stored rate                    $(median <"$T/stored_rate") exchanges/s (answered / (load + drain)); ratio to answered rate $(ratio "$(median <"$T/stored_rate")" "$r32")"
echo "  after SIGTERM, answered/stored per round: $(tr '\n' ' ' <"$T/counts")"
awk '$2 < $1 { lost = 1 } END { print "  every answered exchange stored: " (lost ? "NO" : "yes") }' "$T/counts"
echo "record peak resident memory (VmHWM) under that load: $(median <"$T/peak") MB (target ≤ 64)"
echo "record with every request distinct ($DISTINCT_DURATION s, ?ack=N): $distinct_answered answered, $distinct_stored stored;" \
  "VmRSS at a third, two thirds and the end: $(tr '\n' ' ' <"$T/distinct_rss")MB; peak $distinct_peak MB (it should not grow with DISTINCT_DURATION: the match keys held are bounded)"
d1=$(median <"$T/direct1")
r1=$(median <"$T/record1")
echo "median latency at 1 connection (µs):"
echo "  upstream direct (baseline)     $d1"
if [ "$HAVE_NGINX" = 1 ]; then
  n1=$(median <"$T/nginx1")
  echo "  nginx proxy_pass               $n1  (+$(awk -v a="$n1" -v b="$d1" 'BEGIN { print a - b }'))"
  echo "  ucwa-replay record             $r1  (+$(awk -v a="$r1" -v b="$d1" 'BEGIN { print a - b }')); over nginx's added: $(awk -v a="$r1" -v n="$n1" 'BEGIN { print a - n }') µs (target ≤ 15)"
else
  echo "  ucwa-replay record             $r1  (+$(awk -v a="$r1" -v b="$d1" 'BEGIN { print a - b }'))"
fi
f1=$(median <"$T/floor1")
echo "  hyper proxy floor              $f1  (+$(awk -v a="$f1" -v b="$d1" 'BEGIN { print a - b }')); record over the floor: $(awk -v a="$r1" -v f="$f1" 'BEGIN { print a - f }') µs"
rp=$(median <"$T/replay32")
echo "replay at $CONNS connections:"
echo "  req/s: upstream $( [ "$HAVE_NGINX" = 1 ] && echo '(nginx, the same bytes from a file) ' )$d32, replay $rp  ratio $(ratio "$rp" "$d32") (target ≥ 1.0)"
dp=$(median <"$T/direct32p99")
rpp=$(median <"$T/replay32p99")
echo "  p99 µs: upstream $dp, replay $rpp  ratio $(ratio "$rpp" "$dp") (target ≤ 1.5)"
fs=$(median <"$T/floorstatic32")
echo "  hyper static floor $fs req/s ($(ratio "$fs" "$d32")× the upstream); replay is $(ratio "$rp" "$fs")× the floor"
fv=$(median <"$T/floorserved32")
echo "  the same static answer through ucwa-replay's serve layer: $fv req/s ($(ratio "$fv" "$fs")× the floor)"
echo "  share of replay answers that were not 2xx: $(median <"$T/replay_bad") (must be 0: else the figures are of error answers)"
echo "SIGTERM half-way through a $DURATION s load: answered $term_answered, stored $term_stored ($( [ "${term_stored:-0}" -ge "${term_answered:-0}" ] && echo 'nothing lost' || echo 'LOST SOME'))"
