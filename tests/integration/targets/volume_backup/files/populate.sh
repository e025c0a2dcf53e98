#!/bin/sh
# Fill a volume (its mountpoint is $1) with what a real app leaves: many small files, a sparse
# file, symlinks (one dangling), a hard link, odd names, xattrs, owners other than root, a fifo.
set -eu
cd "$1"
mkdir -p "small files" "ünïcødé dir" owned
i=1
while [ "$i" -le 300 ]; do
    printf 'file %s %s\n' "$i" "$(head -c 48 /dev/urandom | base64)" > "small files/f $i.txt"
    i=$((i + 1))
done
head -c 2000000 /dev/urandom > "ünïcødé dir/random €.bin"
truncate -s 64M sparse.img
printf 'middle' | dd of=sparse.img bs=1 seek=33554432 conv=notrunc status=none
ln -s "small files/f 1.txt" "link to file"
ln -s /does/not/exist dangling
ln "ünïcødé dir/random €.bin" hardlink.bin
setfattr -n user.origin -v host1 "small files/f 2.txt"
setfattr -n user.blob -v 0x00ff10 "ünïcødé dir"
echo secret > owned/data
chown -R 999:998 owned
chmod 0700 owned
chmod 0640 owned/data
chmod 0600 "small files/f 4.txt"
mkfifo pipe
