#!/bin/sh
# pg-dump-to DIR [DB]: a consistent dump (pg_dump's snapshot) of DB (postgres) as
# DIR/DB.dump, written beside and renamed when complete, so DIR never holds half a dump.
set -eu
dir=$1 db=${2:-postgres}
pg_dump --format=custom --file="$dir/.$db.dump.partial" "$db"
sync "$dir/.$db.dump.partial"
mv -f "$dir/.$db.dump.partial" "$dir/$db.dump"
