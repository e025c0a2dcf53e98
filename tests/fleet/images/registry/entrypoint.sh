#!/bin/sh
# Like upstream: `registry serve CONFIG`. AWS_CA_BUNDLE makes the s3 driver
# panic (distribution 2.8), so it never reaches the registry process.
set -e
unset AWS_CA_BUNDLE
case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help) set -- registry "$@" ;;
esac
exec "$@"
