#!/bin/sh
# Test CGI script that leaves a background child holding its stdout (pid to $LINGER_PIDFILE)
# and exits. PATH_INFO: /framed answers with a Content-Length first, /held with no framing
# (the body would end at EOF, which the child never gives), /working answers with a
# Content-Length and then keeps working itself for 1.5 s (then touches $LINGER_PIDFILE.done).
case "$PATH_INFO" in
  /framed|/working) printf 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n' ;;
  *) printf 'Content-Type: text/plain\r\n\r\npartial\n' ;;
esac
if [ "$PATH_INFO" = /working ]; then
  sleep 1.5
  if [ -n "$LINGER_PIDFILE" ]; then : > "$LINGER_PIDFILE.done"; fi
  exit 0
fi
sleep 1000 &
if [ -n "$LINGER_PIDFILE" ]; then echo $! > "$LINGER_PIDFILE.$$"; mv "$LINGER_PIDFILE.$$" "$LINGER_PIDFILE"; fi
exit 0
