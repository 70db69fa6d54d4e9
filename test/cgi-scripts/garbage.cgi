#!/bin/sh
# Test CGI script that prints something that is not a CGI response.
printf 'this is not a header line\nneither is this\n\n<html>garbage</html>\n'
