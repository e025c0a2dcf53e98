#!/usr/bin/env bash
# container_by_ip.sh ADDRESS: the name of the one running container with ADDRESS on one of its
# networks (fleets have their own subnets, so this is never another fleet's container).
set -euo pipefail
address=$1
names=$(docker ps -q | xargs -r docker inspect -f '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' \
    | awk -v ip="$address" '{for (i = 2; i <= NF; i++) if ($i == ip) print substr($1, 2)}')
[ "$(printf '%s\n' "$names" | grep -c .)" -eq 1 ] || { echo "not exactly one container at $address: $names" >&2; exit 1; }
echo "$names"
