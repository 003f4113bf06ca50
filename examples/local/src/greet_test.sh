#!/bin/sh
# Checks the built greeter: it greets whoever it is given, and carries its version.
set -e
greet="$1"
test "$($greet ferry)" != ""
$greet ferry | grep -q "ferry"
$greet | grep -q "stranger"
if $greet | grep -q "@VERSION@"; then echo "version was not stamped" >&2; exit 1; fi
echo "greeter tests passed"
