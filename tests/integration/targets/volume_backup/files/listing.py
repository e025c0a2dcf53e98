"""Print one sorted line per path under a directory: what a user compares after a restore.

Type, size, mode, owner, mtime (ns), link target, sha256 and xattrs; independent of the
module's own manifest code on purpose. `--sparse PATH` also prints whether PATH is sparse.
"""

import hashlib
import os
import stat
import sys


def describe(root, rel):
    path = os.path.join(root, rel)
    st = os.lstat(path)
    digest = ""
    if stat.S_ISREG(st.st_mode):
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        digest = sha.hexdigest()
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    xattrs = sorted(
        "%s=%s" % (name, os.getxattr(path, name, follow_symlinks=False).hex())
        for name in os.listxattr(path, follow_symlinks=False)
    )
    size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
    return "%r %o %d %d:%d %d %r %s %s" % (
        rel,
        st.st_mode,
        size,
        st.st_uid,
        st.st_gid,
        st.st_mtime_ns,
        target,
        digest,
        ",".join(xattrs),
    )


def main():
    root = sys.argv[1]
    lines = [describe(root, ".")]
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            lines.append(describe(root, os.path.relpath(os.path.join(dirpath, name), root)))
    print("\n".join(sorted(lines)))
    if len(sys.argv) > 3 and sys.argv[2] == "--sparse":
        st = os.stat(os.path.join(root, sys.argv[3]))
        print("SPARSE" if st.st_blocks * 512 < st.st_size // 2 else "DENSE")


if __name__ == "__main__":
    main()
