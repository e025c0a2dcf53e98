"""make bench B=logging: 1,000,000 container log lines shipped by rsyslog (the logging role) to Elasticsearch _bulk.

On the first fleet host, one run:

  ship        a container writes LINES lines of ~200 bytes (`seq | sed`, as fast as it can) to its json-file
              log; the role's rsyslog follows it and posts them to the test receiver (tests/receivers/
              es_bulk.py, the Elasticsearch _bulk protocol) on the fleet gateway. ship_seconds: from
              Docker's timestamp of the first line until the receiver got the last sequence number it
              lacked (every number counted, duplicates too); ship_seconds_from_docker_run: the wall time
              from `docker run` until a poll (every 2 s) saw them all, as measured before 2026-12-03 15:30;
              write_seconds: first to last line of the writer (Docker's timestamps).
  raw read    `cat LOGFILE > /dev/null` of the same json-file log on that host: the physical limit.
  truncate    log_rotate strategy=truncate on a file a container appends to as fast as it can:
              rotate_truncate_bytes_at_risk is the window it measured (bytes in neither file).
  outage      the receiver closes for OUTAGE_SECONDS while a container writes OUTAGE_LINES lines;
              outage_lines_lost = lines missing once it is back and the queue drained.
  receiver    the test receiver alone: RECEIVER_LINES lines in bulk requests shaped like rsyslog's
              (RECEIVER_BATCH items, RECEIVER_CONNECTIONS requests in flight), bodies built before the
              clock starts: receiver_only_lines_per_second, the most the receiver could take here.

Where the time goes: rsyslog_cpu_seconds (rsyslogd's CPU during the ship, all its threads) and
receiver_cpu_seconds (the receiver's), also per line in microseconds. On 2 shared cores the end-to-end
rate cannot exceed the cores' share left over by the writer, dockerd and other work divided by
the CPU those two spend per line.

The writer's container gets max-size=2g: Docker's own rotation while rsyslog lags loses lines
(imfile 8.2302 does not finish a renamed file; see docs/logging.md, known limits).

Published per-instance shipper figures (file -> TCP) for comparison, in MiB/s: Vector ~77,
Fluent Bit ~35, Filebeat ~8; ours is mib_per_second (json-file bytes shipped / ship_seconds).
The fleet shares its machine with other work: look at load_average in the result.
"""

import datetime
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from _bench import INVENTORY, REPO, BenchError, run_playbook, ssh

PLAYS = REPO / "bench/logging"
LINES = 1_000_000
OUTAGE_LINES = 20_000
OUTAGE_SECONDS = 30
PAD = "x" * 170
PUBLISHED_MIB_S = {"vector": 77, "fluent_bit": 35, "filebeat": 8}
SHIP_TIMEOUT = 600  # the result says how many arrived when it gave up
RECEIVER_LINES = 200_000
RECEIVER_BATCH = 1024
RECEIVER_CONNECTIONS = 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def inventory():
    data = yaml.safe_load(INVENTORY.read_text())
    hosts = data["all"]["children"]["docker_hosts"]["hosts"]
    first = next(iter(hosts))
    return hosts[first]["ansible_host"], data["all"]["vars"]


def control(url, method="GET"):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def start_receiver(subnet):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests/receivers/es_bulk.py"),
            "--subnet",
            subnet,
            "--tcp-port",
            "0",
            "--daemon",
            "--pidfile",
            str(REPO / ".fleet/bench-receiver.pid"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def receiver_pid():
    return int((REPO / ".fleet/bench-receiver.pid").read_text())


def local_cpu_seconds(pid):
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def host_cpu_seconds(host, programs):
    """utime + stime of every process of these programs on the host (all threads), in seconds (USER_HZ 100)."""
    out = ssh(host, "for p in $(pidof %s); do cut -d' ' -f14,15 /proc/$p/stat; done" % programs)
    return sum(int(value) for value in out.split()) / 100


def rsyslog_cpu_seconds(host):
    return host_cpu_seconds(host, "rsyslogd")


def stop_receiver():
    pidfile = REPO / ".fleet/bench-receiver.pid"
    receiver = [sys.executable, str(REPO / "tests/receivers/es_bulk.py"), "--stop", "--pidfile", str(pidfile)]
    subprocess.run(receiver, capture_output=True, check=False)


def writer(name, run, lines, image):
    """docker run command writing `lines` numbered lines of ~200 bytes, as fast as `seq | sed` goes."""
    script = "seq 0 %d | sed 's/.*/run=%s seq=& %s/'" % (lines - 1, run, PAD)
    # max-size 2g: Docker must not rotate during the run (imfile 8.2302 loses the rest of a rotated file when
    # it lags; with the 50m x 5 defaults a first run shipped 262,295 of 1,000,000 lines).
    return 'docker run -d --name %s --log-opt max-size=2g %s sh -c "%s"' % (name, image, script)


def docker_time(stamp):
    """Epoch seconds of a json-file "time" (RFC 3339 with nanoseconds, UTC: 2026-12-03T13:02:43.123456789Z)."""
    whole, dummy, fraction = stamp.rstrip("Z").partition(".")
    parsed = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return parsed.timestamp() + float("0." + (fraction or "0"))


def wait_all(control_url, run, lines, timeout):
    deadline = time.monotonic() + timeout
    while True:
        check = control("%s/_dockyard/check?run=%s&count=%d" % (control_url, run, lines))
        if check["missing_count"] == 0 or time.monotonic() > deadline:
            return check
        time.sleep(2)


def measure_ship(host, control_url, image):
    ssh(host, "docker rm -f bench-log-writer >/dev/null 2>&1; true")
    cpu_before = rsyslog_cpu_seconds(host), local_cpu_seconds(receiver_pid())
    started = time.monotonic()
    container = ssh(host, writer("bench-log-writer", "bench", LINES, image)).strip()
    check = wait_all(control_url, "bench", LINES, SHIP_TIMEOUT)
    check["ship_seconds_from_docker_run"] = round(time.monotonic() - started, 2)
    check["rsyslog_cpu_seconds"] = round(rsyslog_cpu_seconds(host) - cpu_before[0], 1)
    check["receiver_cpu_seconds"] = round(local_cpu_seconds(receiver_pid()) - cpu_before[1], 1)
    log_path = ssh(host, "docker inspect --format '{{.LogPath}}' %s" % container).strip()
    file_facts = ssh(host, f"stat -c %s {log_path}; head -n 1 {log_path}; tail -n 1 {log_path}")
    size, first_line, last_line = file_facts.splitlines()
    first_written = docker_time(json.loads(first_line)["time"])
    check["write_seconds"] = round(docker_time(json.loads(last_line)["time"]) - first_written, 2)
    # From Docker's timestamp of the first line to the receiver's clock when the last missing number came
    # (both CLOCK_REALTIME of this one kernel: the fleet hosts are containers): neither the container's
    # creation nor the poll interval is counted. Without every number, the wall time of the wait.
    if check["missing_count"] == 0 and check.get("last_new_at"):
        ship_seconds = round(check["last_new_at"] - first_written, 2)
    else:
        ship_seconds = check["ship_seconds_from_docker_run"]
    timer = (
        "import subprocess, sys, time; s = time.monotonic(); "
        "subprocess.run(['cat', sys.argv[1]], stdout=subprocess.DEVNULL, check=True); print(time.monotonic() - s)"
    )
    raw = ssh(host, 'python3 -c "%s" %s' % (timer, log_path))
    ssh(host, "docker rm -f bench-log-writer")
    return check, ship_seconds, int(size), round(float(raw.strip()), 3)


def measure_truncate(host, image):
    ssh(host, "docker rm -f bench-log-truncate >/dev/null 2>&1; mkdir -p /srv/bench-log; rm -f /srv/bench-log/*")
    ssh(
        host,
        "docker run -d --name bench-log-truncate -v /srv/bench-log:/srv/bench-log %s sh -c "
        "\"exec >> /srv/bench-log/app.log; seq 0 100000000 | sed 's/.*/run=trunc seq=& %s/'\"" % (image, PAD),
    )
    time.sleep(3)
    dummy, out = run_playbook(PLAYS / "truncate.yml", ["lb_file=/srv/bench-log/app.log"])
    ssh(host, "docker rm -f bench-log-truncate; rm -rf /srv/bench-log")
    return int(out.split("BYTES_AT_RISK=")[1].split('"')[0].split()[0])


def measure_outage(host, control_url, image):
    ssh(host, "docker rm -f bench-log-outage >/dev/null 2>&1; true")
    control("%s/_dockyard/outage?seconds=%d" % (control_url, OUTAGE_SECONDS), method="POST")
    ssh(host, writer("bench-log-outage", "outage", OUTAGE_LINES, image))
    time.sleep(OUTAGE_SECONDS)
    check = wait_all(control_url, "outage", OUTAGE_LINES, SHIP_TIMEOUT)
    ssh(host, "docker rm -f bench-log-outage")
    return check


def bulk_body(run, first, count):
    """A bulk request as the role's rsyslog sends it: action line with index and _id, then the event."""
    container = "f" * 64
    lines = []
    for seq in range(first, first + count):
        lines.append('{"index":{"_index":"logs-unlabelled-2026.01.01","_id":"%s-%d"}}' % (container, seq * 232))
        event = {
            "message": "run=%s seq=%d %s" % (run, seq, PAD),
            "stream": "stdout",
            "@timestamp": "2026-01-01T00:00:00.000000000Z",
            "host": "host1",
            "container": {"id": container, "name": "/bench-log-writer", "image": "debian:bookworm"},
            "app": "unlabelled",
        }
        lines.append(json.dumps(event, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def measure_receiver(address, control_url):
    """The receiver alone: lines/s it takes from a client that costs next to nothing (bodies built beforehand)."""
    starts = range(0, RECEIVER_LINES, RECEIVER_BATCH)
    bodies = [bulk_body("receiver", first, min(RECEIVER_BATCH, RECEIVER_LINES - first)) for first in starts]
    failures = []

    def post(part):
        connection = http.client.HTTPConnection(address, 9200, timeout=60)
        try:
            for body in bodies[part::RECEIVER_CONNECTIONS]:
                connection.request("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
                answer = connection.getresponse()
                if answer.status != 200 or json.loads(answer.read())["errors"]:
                    failures.append(answer.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(part,)) for part in range(RECEIVER_CONNECTIONS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    check = control("%s/_dockyard/check?run=receiver&count=%d" % (control_url, RECEIVER_LINES))
    if failures or check["missing_count"]:
        raise BenchError(
            "receiver alone: %d failed requests, %d lines missing" % (len(failures), check["missing_count"])
        )
    return round(RECEIVER_LINES / seconds)


def main(out_path):
    host, fleet_vars = inventory()
    image = "%s/debian:bookworm" % fleet_vars["fleet_origin_registry"]
    result = {"host": host, "lines": LINES, "line_bytes_approx": 200, "image": image}
    stop_receiver()
    receiver = start_receiver(fleet_vars["fleet_subnet"])
    try:
        ssh(host, "docker pull -q %s" % image)
        run_playbook(PLAYS / "converge.yml", ["lb_receiver=%s" % receiver["address"]])
        check, ship_seconds, size, raw_seconds = measure_ship(host, receiver["control"], image)
        result.update(
            {
                "lines_received": check["received"],
                "duplicates": check["duplicates"],
                "ship_seconds": ship_seconds,
                "ship_seconds_from_docker_run": check["ship_seconds_from_docker_run"],
                "write_seconds": check["write_seconds"],
                "lines_per_second": round(check["received"] / ship_seconds),
                "json_file_bytes": size,
                "mib_per_second": round(size / ship_seconds / 1024 / 1024, 2),
                "raw_read_seconds": raw_seconds,
                "raw_read_mib_per_second": round(size / raw_seconds / 1024 / 1024, 1),
                "rsyslog_cpu_seconds": check["rsyslog_cpu_seconds"],
                "rsyslog_cpu_us_per_line": round(check["rsyslog_cpu_seconds"] * 1e6 / LINES, 1),
                "receiver_cpu_seconds": check["receiver_cpu_seconds"],
                "receiver_cpu_us_per_line": round(check["receiver_cpu_seconds"] * 1e6 / LINES, 1),
            }
        )
        result["rotate_truncate_bytes_at_risk"] = measure_truncate(host, image)
        outage = measure_outage(host, receiver["control"], image)
        result["outage_seconds"] = OUTAGE_SECONDS
        result["outage_lines"] = OUTAGE_LINES
        result["outage_lines_lost"] = outage["missing_count"]
        result["outage_duplicates"] = outage["duplicates"]
        result["receiver_only_lines_per_second"] = measure_receiver(receiver["address"], receiver["control"])
    finally:
        try:
            run_playbook(PLAYS / "clean_up.yml")
        finally:
            stop_receiver()
    result["published_mib_per_second"] = PUBLISHED_MIB_S
    result["ratio_to_published"] = {k: round(result["mib_per_second"] / v, 3) for k, v in PUBLISHED_MIB_S.items()}
    result["targets"] = {
        "no_line_lost": result["lines_received"] == LINES and result["outage_lines_lost"] == 0,
        "lines_per_second_ge_50000": result["lines_per_second"] >= 50000,
    }
    result["load_average"] = os.getloadavg()
    result["measured_at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n")
    print(
        "%(lines_received)d/%(lines)d lines in %(ship_seconds)s s (%(lines_per_second)d lines/s, "
        "%(mib_per_second)s MiB/s); raw read %(raw_read_seconds)s s" % result
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BenchError as exc:
        sys.exit("bench logging: %s" % exc)
