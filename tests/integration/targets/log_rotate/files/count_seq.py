"""count_seq.py RUN FILE...: which sequence numbers of RUN are in FILEs (gzip too), as JSON.

Lines look like "run=RUN seq=N ...". Missing = numbers between 0 and the highest seen that are in no file.
"""

import collections
import gzip
import json
import re
import sys

run, paths = sys.argv[1], sys.argv[2:]
pattern = re.compile(r"run=%s seq=(\d+)" % re.escape(run))
seen = collections.Counter()
for path in paths:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as handle:
        for line in handle:
            match = pattern.search(line)
            if match:
                seen[int(match.group(1))] += 1
top = max(seen) if seen else -1
missing = [n for n in range(top + 1) if n not in seen]
print(
    json.dumps(
        {
            "run": run,
            "highest": top,
            "lines": sum(seen.values()),
            "missing_count": len(missing),
            "missing": missing[:50],
            "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        }
    )
)
