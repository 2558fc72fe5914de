#!/usr/bin/env bash
# The caisse's bulk work, timed: import N persons from CSV into AK00 (default 100,000), then
# issue codes and write the activation letters for M other persons of AK01 (default 10,000),
# on SQLite or, with --postgres URL, on a fresh database of that server.
#
#   bench/bulk/run.sh                      # SQLite in a temporary data directory
#   bench/bulk/run.sh --postgres postgres://postgres@127.0.0.1:5432/postgres
#   bench/bulk/run.sh --persons 20000 --letters 2000 --keep /tmp/bulk
#
# Builds `connect` in release mode first (honours CARGO_TARGET_DIR). Prints one line per step:
# wall time, peak RSS, and what was produced. Targets (issue 11): import under 5 s, letters
# under 20 s.
set -euo pipefail

persons=100000
letters=10000
postgres=""
keep=""
while [ $# -gt 0 ]; do
    case "$1" in
        --persons) persons="$2"; shift 2 ;;
        --letters) letters="$2"; shift 2 ;;
        --postgres) postgres="$2"; shift 2 ;;
        --keep) keep="$2"; shift 2 ;;
        *) echo "usage: $0 [--persons N] [--letters M] [--postgres URL] [--keep DIR]" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo build --release --quiet --bin connect
bin="${CARGO_TARGET_DIR:-$root/target}/release/connect"

if [ -n "$keep" ]; then
    work="$keep"
    rm -rf "$work"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
fi
database=""
cleanup() {
    if [ -n "$database" ]; then
        psql -q "$postgres" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    fi
    if [ -z "$keep" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

export CONNECT_DATA_DIR="$work/data"
export CONNECT_REALM_DIR="$root/realm-config"
unset CONNECT_DATABASE_URL CONNECT_REDIS_URL
backend=SQLite
if [ -n "$postgres" ]; then
    database="connect_bench_bulk_$$"
    psql -q "$postgres" -c "CREATE DATABASE $database" >/dev/null
    export CONNECT_DATABASE_URL="${postgres%/*}/$database"
    backend=PostgreSQL
fi

# first: the AHV number 756.XXXX.XXXX.XC of each n (nine digits from n, EAN-13 check digit),
# with names, birth dates, languages and postal codes that vary from row to row.
generate() { # first count file
    awk -v first="$1" -v count="$2" 'BEGIN {
        split("de fr it en", lang, " ")
        split("Anna Jörg Zoë Lia Marc Hélène Luca Ursula", given, " ")
        split("Muster Bärtschi Rossi Favre Müller Dubois Bianchi Keller", family, " ")
        split("Bern Lausanne Lugano Zürich Genève Fribourg Chur Basel", town, " ")
        print "ahv,given_name,family_name,birth_date,language,street,postal_code,locality"
        for (n = first; n < first + count; n++) {
            body = sprintf("756%09d", n)
            sum = 0
            for (i = 1; i <= 12; i++) sum += substr(body, i, 1) * (i % 2 ? 1 : 3)
            d = body ((10 - sum % 10) % 10)
            ahv = substr(d, 1, 3) "." substr(d, 4, 4) "." substr(d, 8, 4) "." substr(d, 12, 2)
            printf "%s,%s,%s %d,%04d-%02d-%02d,%s,Rue du Marché %d,%04d,%s\n", ahv,
                given[n % 8 + 1], family[n % 7 + 1], n, 1930 + n % 60, n % 12 + 1, n % 28 + 1,
                lang[n % 4 + 1], n % 97 + 1, 1000 + (n * 7919) % 8000, town[n % 8 + 1]
        }
    }' > "$3"
}

# step NAME command...: runs it, prints wall seconds, CPU seconds (user + system) and peak RSS.
step() {
    local name="$1"; shift
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || {
        cat "$work/err" >&2; exit 1; }
    read -r seconds kb user sys < "$work/time"
    printf "%-34s %7.2f s  (CPU %6.2f s)  %5d MB peak  %s\n" "$name" "$seconds" \
        "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" $((kb / 1024)) "$(tr '\n' ' ' < "$work/out")"
}

mkdir -p "$CONNECT_DATA_DIR"
generate 1 "$persons" "$work/persons.csv"
generate $((persons + 1)) "$letters" "$work/letters.csv"
"$bin" migrate > /dev/null
# The first command that opens the realms makes their signing keys (RSA included): a caisse
# has them long before its first import, so they are made here, untimed.
"$bin" admin audit --realm AK00 > /dev/null

echo "connect $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $backend, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
step "import $persons persons (AK00)" "$bin" admin --operator bench person import --realm AK00 "$work/persons.csv"
step "import $letters persons (AK01)" "$bin" admin --operator bench person import --realm AK01 "$work/letters.csv"
step "codes + letters for $letters (AK01)" "$bin" admin --operator bench code letters --realm AK01 --out "$work/letters"
files=$(find "$work/letters" -name '756*.pdf' | wc -l)
bytes=$(find "$work/letters" -name '756*.pdf' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
batch=$(find "$work/letters" -name 'batch-*.pdf' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
printf "%-34s %d files, %d KB each on average; mailroom PDF %d KB\n" "letters written" \
    "$files" $((bytes / (files > 0 ? files : 1) / 1024)) $((batch / 1024))
