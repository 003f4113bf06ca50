#!/bin/sh
# greeter @VERSION@: says hello.
echo "${GREETING:-hello}, ${1:-stranger} (greeter @VERSION@)"
