"""Run playbooks/site.yml through ansible-runner, the engine AWX and Tower use,
and print what a job's event stream says, as JSON:

    run_site.py PRIVATE_DATA_DIR PLAYBOOK [ansible-playbook args...]

{"status", "rc", "stats": {host: {changed, failures, ok, ...}}, "event_counts",
 "failed_tasks", "has_stats_event"}
"""

import collections
import json
import os
import sys

import ansible_runner


def main(private_data_dir, playbook, *cmdline):
    os.makedirs(private_data_dir, exist_ok=True)
    result = ansible_runner.run(
        private_data_dir=private_data_dir,
        playbook=os.path.abspath(playbook),
        cmdline=" ".join(cmdline),
        envvars={k: v for k, v in os.environ.items() if k.startswith(("ANSIBLE_", "DOCKYARD_"))},
        quiet=True,
    )
    counts = collections.Counter(event.get("event") for event in result.events)
    failed = [
        "%s: %s" % (e["event_data"].get("host"), e["event_data"].get("task"))
        for e in result.events
        if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")
    ]
    stats = {}
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        for host, number in (result.stats or {}).get(key, {}).items():
            stats.setdefault(host, {})[key] = number
    print(
        json.dumps(
            {
                "status": result.status,
                "rc": result.rc,
                "stats": stats,
                "event_counts": dict(counts),
                "failed_tasks": failed,
                "has_stats_event": counts.get("playbook_on_stats", 0) == 1,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
