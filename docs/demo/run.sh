#!/usr/bin/env bash
# The synco demo: a small shop database and its uploads folder play "production"; synco-source
# publishes them, synco downloads them into a second database and folder, as on a laptop.
# Needs a MySQL/MariaDB server where $DEMO_MYSQL may create databases
# (default mysql://root@127.0.0.1:3306, as on the development machines).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYNCO_BIN:-$(cd "$here/../.." && pwd)/.venv/bin}
server=${DEMO_MYSQL:-mysql://root@127.0.0.1:3306}
work=$(mktemp -d)
mysql_cmd=(mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -u root)
command -v mariadb >/dev/null || mysql_cmd[0]=mysql

cleanup() {
  [ -n "${source_pid:-}" ] && kill "$source_pid" 2>/dev/null && wait "$source_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "== 1. production: database synco_demo_prod and folder uploads/"
"${mysql_cmd[@]}" -e "DROP DATABASE IF EXISTS synco_demo_prod; CREATE DATABASE synco_demo_prod CHARACTER SET utf8mb4"
"${mysql_cmd[@]}" synco_demo_prod < "$here/shop.sql"
cp -r "$here/uploads" "$work/prod-uploads"

echo "== 2. on the server: synco-source serve"
SYNCO_DB_URL="$server/synco_demo_prod" "$bin/synco-source" serve \
  --files "uploads=$work/prod-uploads" --listen 127.0.0.1:0 >"$work/token" &
source_pid=$!
for _ in $(seq 100); do [ -s "$work/token" ] && break; sleep 0.1; done
cat "$work/token"

echo "== 3. on the laptop: synco download (into synco_demo_local and local-uploads/)"
"${mysql_cmd[@]}" -e "DROP DATABASE IF EXISTS synco_demo_local; DROP DATABASE IF EXISTS synco_demo_local__synco_prev"
SYNCO_DB_URL="$server/synco_demo_local" $(cat "$work/token" | sed "s|^synco |$bin/synco |") \
  --files-dir "uploads=$work/local-uploads" --yes

echo "== 4. compare"
for db in synco_demo_prod synco_demo_local; do
  "${mysql_cmd[@]}" -N "$db" -e "CHECKSUM TABLE customer, product, \`order\`, order_line" | awk '{print $2}' | tr '\n' ' '
  echo " <- $db"
done
diff -r "$work/prod-uploads" "$work/local-uploads" && echo "uploads: identical"
a=$("${mysql_cmd[@]}" -N synco_demo_prod -e "CHECKSUM TABLE customer, product, \`order\`, order_line")
b=$("${mysql_cmd[@]}" -N synco_demo_local -e "CHECKSUM TABLE customer, product, \`order\`, order_line")
[ "${a//synco_demo_prod/}" = "${b//synco_demo_local/}" ] && echo "demo: the local copy matches production"
"${mysql_cmd[@]}" -e "DROP DATABASE synco_demo_prod; DROP DATABASE synco_demo_local"
