#!/bin/sh
# Test CGI script that never answers: it starts a background child (whose pid goes to
# $SLEEP_PIDFILE when set) and waits, so a timeout must kill the whole process group.
sleep 1000 &
if [ -n "$SLEEP_PIDFILE" ]; then echo $! > "$SLEEP_PIDFILE.$$"; mv "$SLEEP_PIDFILE.$$" "$SLEEP_PIDFILE"; fi
wait
