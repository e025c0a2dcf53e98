#!/bin/sh
# The writer of the PostgreSQL consistency test: INSERT id 1, 2, 3, ... one transaction
# each (psql autocommit), appending "<id> ok" when the commit was acknowledged and
# "<id> fail" when not (server stopped: the next id is tried). Stops when /log/stop exists.
i=0
while [ ! -e /log/stop ]; do
    i=$((i + 1))
    if psql -h "$1" -qAt -v ON_ERROR_STOP=1 -c "INSERT INTO t (id) VALUES ($i)" >/dev/null 2>&1; then
        echo "$i ok" >>/log/acks
    else
        echo "$i fail" >>/log/acks
        sleep 0.1
    fi
done
