#!/usr/bin/python3
"""Frame-level HTTP/2 scenarios against lisod's application mounts (python3-h2 pieces).

usage: app_frames.py PORT CA_FILE SCENARIO [ARG]
Prints one JSON line at the checkpoint (the test then looks at lisod's processes and fds)
and waits for a line on stdin; then plays the rest and prints the final JSON line. Each
line: {"status": {sid: code}, "data": {sid: bytes}, "rst": {sid: code}, "goaway": code|null,
"closed": bool, "ended": [sids with END_STREAM]}.

stall_reset MARKER: our stream windows start at 0; stream 1 asks for 16 MiB (MARKER is
  written by the script once all of it went out) and never opens its window; stream 3 (a
  small answer) gets a window. Checkpoint. Stream 1 is reset; stream 5 must be answered.
upload_reset: stream 1 starts a 10 MiB upload and sends 60000 bytes. Checkpoint. Stream 1
  is reset; stream 3 must be answered.
"""
import json
import os
import socket
import sys

from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame)
import hpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from frames import PREFACE, connect, request_block  # noqa: E402


class Client:
    def __init__(self, port, ca):
        self.s = connect(port, ca)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.res = {'status': {}, 'data': {}, 'rst': {}, 'goaway': None, 'closed': False, 'ended': []}
        self.buf = b''

    def send(self, *frames):
        self.s.sendall(b''.join(f.serialize() for f in frames))

    def request(self, sid, path, method='GET', end=True, extra=()):
        h = HeadersFrame(sid, request_block(self.enc, path, method, extra))
        h.flags.add('END_HEADERS')
        if end:
            h.flags.add('END_STREAM')
        return h

    def read(self, quiet):
        """Reads frames until nothing comes for `quiet` seconds or the server closes."""
        self.s.settimeout(quiet)
        while not self.res['closed']:
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return
            except OSError:
                chunk = b''
            if not chunk:
                self.res['closed'] = True
                return
            self.buf += chunk
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                self.frame(f)

    def frame(self, f):
        sid = str(f.stream_id)
        if isinstance(f, GoAwayFrame):
            self.res['goaway'] = f.error_code
        elif isinstance(f, RstStreamFrame):
            self.res['rst'][sid] = f.error_code
        elif isinstance(f, HeadersFrame):
            for k, v in self.dec.decode(f.data):
                if k in (':status', b':status'):
                    self.res['status'][sid] = int(v)
        elif isinstance(f, DataFrame):
            self.res['data'][sid] = self.res['data'].get(sid, 0) + len(f.data)
        elif isinstance(f, SettingsFrame) and 'ACK' not in f.flags:
            self.send(SettingsFrame(0, flags=['ACK']))
        if isinstance(f, (HeadersFrame, DataFrame)) and 'END_STREAM' in f.flags:
            self.res['ended'].append(f.stream_id)

    def report(self):
        print(json.dumps(self.res), flush=True)


def main():
    port, ca, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    c = Client(port, ca)
    if name == 'stall_reset':
        marker = sys.argv[4]
        c.s.sendall(PREFACE + SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}).serialize())
        c.send(WindowUpdateFrame(0, window_increment=1 << 24),
               c.request(1, '/cgi/big?mib=16&marker=' + marker),
               c.request(3, '/cgi/env'), WindowUpdateFrame(3, window_increment=1 << 20))
        c.read(3)
        c.report()
        sys.stdin.readline()
        c.send(RstStreamFrame(1, error_code=8),
               c.request(5, '/cgi/env'), WindowUpdateFrame(5, window_increment=1 << 20))
        c.read(2)
    elif name == 'upload_reset':
        c.s.sendall(PREFACE + SettingsFrame(0).serialize())
        c.send(c.request(1, '/cgi/env', 'POST', end=False, extra=[('content-length', str(10 << 20))]),
               DataFrame(1, data=b'x' * 15000), DataFrame(1, data=b'y' * 15000),
               DataFrame(1, data=b'z' * 15000), DataFrame(1, data=b'w' * 15000))
        c.read(2)
        c.report()
        sys.stdin.readline()
        c.send(RstStreamFrame(1, error_code=8), c.request(3, '/cgi/env'))
        c.read(2)
    else:
        raise SystemExit('unknown scenario ' + name)
    c.report()
    c.s.close()


if __name__ == '__main__':
    main()
