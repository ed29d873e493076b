#!/bin/sh
# Starts the server, then the client, as a lab script would:
#   hc-trace exec -- examples/exec/lab.sh DIR [client options]
# DIR holds the compiled server and client (cc -o DIR/server server.c ...).
dir=${1:-.}
shift
"$dir/server" 5555 &
sleep 0.2
"$dir/client" 5555 "$@"
wait
