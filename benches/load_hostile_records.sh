#!/usr/bin/env bash
# Issue 81, `snowpipe load`'s hostile records measured: peak RSS and CPU (`/usr/bin/time -v`)
# of one `snowpipe load` binary against an embedded emulator, for
#   ndjson  a 300 MiB NDJSON line between rows,
#   csv     a 30 MiB CSV record of control bytes with a field too many,
#   stdin   a 1 GiB line without a line break on standard input,
#   follow  --follow for 30 s on a CSV file ending in an unterminated 200 MiB quote.
# Opt-in (not part of `cargo test`): bash benches/load_hostile_records.sh BINARY [CASE...]
# e.g. BINARY=target/release/snowpipe. Writes its inputs to a temporary directory (~550 MB).
set -euo pipefail
bin=$(realpath "$1"); shift
cases=("${@:-ndjson csv stdin follow}")
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
ddl="CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T (ID NUMBER, NAME VARCHAR, NOTE VARCHAR)"
load() {
  /usr/bin/time -v -o "$dir/time" "$bin" load "$@" --database D --schema S --table T \
    --emulator-ddl "$ddl" --no-progress > "$dir/out" 2>/dev/null || true
}
report() {
  echo "$1: $(grep -E 'Maximum resident|User time|System time|Elapsed' "$dir/time" | sed 's/^\s*//' | tr '\n' ';')"
  tail -1 "$dir/out" | cut -c1-160
  ls -l "$dir"/*.rejected.ndjson 2>/dev/null || true
}
rows() { for i in $(seq "$1" "$2"); do printf '{"id":%d,"name":"name-%d"}\n' "$i" "$i"; done; }
repeat() { head -c "$2" /dev/zero | tr '\0' "$1"; }
cd "$dir"
for c in ${cases[*]}; do
  rm -f "$dir"/*.rejected.ndjson
  case $c in
    ndjson)
      { rows 1 5; printf '{"id":99,"name":"'; repeat x $((300 << 20)); printf '"}\n'; rows 6 10; } > long.ndjson
      load long.ndjson ;;
    csv)
      { printf 'id,name,note\n1,one,a\n7,"'; head -c $((30 << 20)) /dev/urandom | tr -d '"' | tr '\0-\377' '\001-\037\001-\037\001-\037\001-\037\001-\037\001-\037\001-\037\001-\037\001-\037'; printf '",x,y\n8,eight,h\n'; } > control.csv
      load control.csv ;;
    stdin)
      { rows 1 1; repeat z $((1 << 30)); printf '\n'; rows 2 2; } | load - ;;
    follow)
      { printf 'ID,NAME,NOTE\n1,one,a\n2,"'; repeat q $((200 << 20)); } > feed.csv
      # SIGTERM after 30 s (what a reader stuck in a parse would ignore).
      ( sleep 30; pid=$(cat "$dir/pid" 2>/dev/null) && kill -TERM "$pid" ) &
      /usr/bin/time -v -o "$dir/time" bash -c 'echo $$ > "$0/pid"; exec "$@"' "$dir" "$bin" load feed.csv \
        --follow --database D --schema S --table T --emulator-ddl "$ddl" --no-progress > "$dir/out" 2>/dev/null || true
      wait ;;
  esac
  report "$c"
done
