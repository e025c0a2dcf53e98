"""Side by side: the logging bench's ship under several sets of role variables, in alternating rounds.

    .venv/bin/python bench/tools/logging_side_by_side.py [--lines N] [--rounds R] [--out FILE] NAME=JSON ...

    e.g. ... --rounds 3 'default={}' 'batch4k={"logging_queue_batch_size": 4096}'

Each round converges the logging role on the bench host (bench/logging/converge.yml, plus the variant's
variables) and ships --lines lines the way `make bench B=logging` does (bench/logging.py measure_ship),
once per variant, in the order given. Per ship one JSON line on stdout: lines/s, rsyslog's and the
receiver's CPU per line, dockerd's and its shims' CPU per line, how busy the machine's cores were. With
--out, a summary per variant (medians, and each median over the first variant's). The machine's speed
swings by about 10% between ships, so compare variants within rounds, never across runs. The side-by-side
figures in docs/logging.md were measured this way. Needs the fleet (make fleet-up); not part of make bench.
"""

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))
from _bench import run_playbook, ssh  # noqa: E402

# bench/logging.py by path: on sys.path it would shadow the standard library's logging
_SPEC = importlib.util.spec_from_file_location("bench_logging", BENCH / "logging.py")
LOGGING_BENCH = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(LOGGING_BENCH)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="write the ships and a summary per variant to this JSON file")
    parser.add_argument("variants", nargs="+", metavar="NAME=JSON", help="role variables of one variant")
    args = parser.parse_args(argv)
    args.variants = [parse_variant(text) for text in args.variants]
    return args


def parse_variant(text):
    name, sep, variables = text.partition("=")
    try:
        parsed = json.loads(variables) if sep else None
    except ValueError as exc:
        raise SystemExit("variant %r: the variables are not JSON: %s" % (text, exc)) from exc
    if not name or not isinstance(parsed, dict):
        raise SystemExit("variant %r: expected NAME={JSON object of role variables}" % text)
    return name, parsed


def machine_busy_jiffies():
    """(busy, total) jiffies of all cores, from /proc/stat (the fleet shares this kernel)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def docker_cpu_seconds(host):
    return LOGGING_BENCH.host_cpu_seconds(host, "dockerd containerd-shim-runc-v2")


def one_ship(host, receiver, image, lines):
    ssh(host, "docker rm -f bench-log-writer >/dev/null 2>&1; sync; true")
    time.sleep(2)  # the converge's restart settles
    LOGGING_BENCH.control(receiver["control"] + "/_dockyard/reset", "POST")
    docker_before, busy_before = docker_cpu_seconds(host), machine_busy_jiffies()
    check, seconds = LOGGING_BENCH.measure_ship(host, receiver["control"], image)[:2]
    busy_after, docker_after = machine_busy_jiffies(), docker_cpu_seconds(host)
    return {
        "lines_per_second": round(check["received"] / seconds),
        "ship_seconds": seconds,
        "received": check["received"],
        "duplicates": check["duplicates"],
        "rsyslog_cpu_us_per_line": round(check["rsyslog_cpu_seconds"] * 1e6 / lines, 1),
        "receiver_cpu_us_per_line": round(check["receiver_cpu_seconds"] * 1e6 / lines, 1),
        "docker_cpu_us_per_line": round((docker_after - docker_before) * 1e6 / lines, 1),
        "machine_busy": round((busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]), 3),
    }


def summary(ships, variants):
    medians = {}
    for name, dummy in variants:
        mine = [ship for ship in ships if ship["variant"] == name]
        medians[name] = {
            key: statistics.median(ship[key] for ship in mine)
            for key in ("lines_per_second", "rsyslog_cpu_us_per_line", "receiver_cpu_us_per_line")
        }
    first = medians[variants[0][0]]
    for values in medians.values():
        values["lines_per_second_ratio"] = round(values["lines_per_second"] / first["lines_per_second"], 3)
        values["rsyslog_cpu_ratio"] = round(values["rsyslog_cpu_us_per_line"] / first["rsyslog_cpu_us_per_line"], 3)
    return medians


def main(argv):
    args = parse_args(argv)
    LOGGING_BENCH.LINES = args.lines
    host, fleet_vars = LOGGING_BENCH.inventory()
    image = "%s/debian:bookworm" % fleet_vars["fleet_origin_registry"]
    LOGGING_BENCH.stop_receiver()
    receiver = LOGGING_BENCH.start_receiver(fleet_vars["fleet_subnet"])
    ships = []
    try:
        ssh(host, "docker pull -q %s" % image)
        for round_number in range(args.rounds):
            for name, variables in args.variants:
                run_playbook(LOGGING_BENCH.PLAYS / "converge.yml", ["lb_receiver=%s" % receiver["address"], variables])
                ship = {"variant": name, "round": round_number, **one_ship(host, receiver, image, args.lines)}
                print(json.dumps(ship), flush=True)
                ships.append(ship)
    finally:
        try:
            run_playbook(LOGGING_BENCH.PLAYS / "clean_up.yml")
        finally:
            LOGGING_BENCH.stop_receiver()
    result = {"lines": args.lines, "rounds": args.rounds, "variants": dict(args.variants), "ships": ships}
    result["summary"] = summary(ships, args.variants)
    print(json.dumps(result["summary"], indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except LOGGING_BENCH.BenchError as exc:
        sys.exit("logging side by side: %s" % exc)
