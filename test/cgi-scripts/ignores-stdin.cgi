#!/bin/sh
# Test CGI script that answers at once and exits without reading its stdin.
printf 'Content-Type: text/plain\r\n\r\nI did not read your upload\n'
