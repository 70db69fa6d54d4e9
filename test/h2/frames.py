#!/usr/bin/python3
"""Frame-level HTTP/2 client for lisod's tests (Debian's python3-h2 + hyperframe + hpack).

usage: frames.py PORT CA_FILE SCENARIO
Connects to 127.0.0.1:PORT over TLS (ALPN h2, verified against CA_FILE for "localhost"),
plays SCENARIO, then reads frames until the server closes or goes quiet and prints one
JSON line: {"alpn", "goaway": error code or null, "rst": {sid: code}, "status": {sid: code},
"data": {sid: bytes}, "closed": bool}.
"""
import json
import socket
import ssl
import sys
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'


def connect(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(['h2', 'http/1.1'])
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='localhost')
    return s


def request_block(enc, path, method='GET', extra=()):
    return enc.encode([(':method', method), (':scheme', 'https'), (':authority', 'localhost'),
                       (':path', path)] + list(extra))


def scenario(name, s, enc):
    send = s.sendall
    settings = SettingsFrame(0)
    if name == 'stall':
        settings.settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 0}
    send(PREFACE + settings.serialize())
    if name == 'get':
        f = HeadersFrame(1, request_block(enc, '/hello.txt'))
        f.flags.add('END_HEADERS'); f.flags.add('END_STREAM')
        send(f.serialize())
    elif name in ('rapid_reset', 'some_resets'):
        # CVE-2023-44487: open and cancel streams as fast as possible (some_resets: 50,
        # then one request that must be answered).
        out = []
        count = 3000 if name == 'rapid_reset' else 50
        for i in range(count):
            sid = 1 + 2 * i
            h = HeadersFrame(sid, request_block(enc, '/hello.txt'))
            h.flags.add('END_HEADERS'); h.flags.add('END_STREAM')
            out.append(h.serialize() + RstStreamFrame(sid, error_code=8).serialize())
        if name == 'some_resets':
            h = HeadersFrame(1 + 2 * count, request_block(enc, '/hello.txt'))
            h.flags.add('END_HEADERS'); h.flags.add('END_STREAM')
            out.append(h.serialize())
        try:
            send(b''.join(out))
        except OSError:
            pass
    elif name == 'continuation_flood':
        # CVE-2024-28182: a header block that never ends.
        h = HeadersFrame(1, request_block(enc, '/hello.txt'))
        h.flags.add('END_STREAM')
        out = [h.serialize()]
        for i in range(200):
            out.append(ContinuationFrame(1, enc.encode([('x-filler-%d' % i, 'a' * 100)])).serialize())
        try:
            send(b''.join(out))
        except OSError:
            pass
    elif name == 'big_headers':
        # Over SETTINGS_MAX_HEADER_LIST_SIZE: this stream is reset, the connection serves on.
        block = request_block(enc, '/hello.txt', extra=[('x-big-%d' % i, 'b' * 12000) for i in range(8)])
        frames = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        first = HeadersFrame(1, frames[0])
        first.flags.add('END_STREAM')
        out = [first]
        for part in frames[1:]:
            out.append(ContinuationFrame(1, part))
        out[-1].flags.add('END_HEADERS')
        send(b''.join(f.serialize() for f in out))
        g = HeadersFrame(3, request_block(enc, '/hello.txt'))
        g.flags.add('END_HEADERS'); g.flags.add('END_STREAM')
        send(g.serialize())
    elif name == 'bad_frame':
        # DATA on stream 0 is a connection error (RFC 9113 §6.1): GOAWAY PROTOCOL_ERROR.
        send(b'\x00\x00\x01\x00\x00\x00\x00\x00\x00x')  # hyperframe refuses to build it
    elif name == 'window_overflow':
        # A WINDOW_UPDATE taking the connection window past 2^31-1 (RFC 9113 §6.9.1).
        send(WindowUpdateFrame(0, window_increment=2 ** 31 - 1).serialize())
    elif name == 'stall':
        # Our stream windows are 0: the response body can never flow; the server must
        # give up on the connection after send_timeout rather than hold it forever.
        f = HeadersFrame(1, request_block(enc, '/big.bin'))
        f.flags.add('END_HEADERS'); f.flags.add('END_STREAM')
        send(f.serialize())
    elif name == 'hpack_bomb':
        # HPACK bomb: one 4,000-byte field put in the dynamic table, then referenced 5,000
        # times by its one-byte index (0xbe = index 62, the newest entry): ~20 MB of header
        # list from a 9 KB block. That stream must be refused; stream 3 is served.
        block = request_block(enc, '/hello.txt') + enc.encode([('x-bomb', 'a' * 4000)]) + b'\xbe' * 5000
        f = HeadersFrame(1, block)
        f.flags.add('END_HEADERS'); f.flags.add('END_STREAM')
        g = HeadersFrame(3, request_block(enc, '/hello.txt'))
        g.flags.add('END_HEADERS'); g.flags.add('END_STREAM')
        send(f.serialize() + g.serialize())
    elif name == 'many_streams':
        out = []
        for i in range(300):
            f = HeadersFrame(1 + 2 * i, request_block(enc, '/hello.txt'))
            f.flags.add('END_HEADERS'); f.flags.add('END_STREAM')
            out.append(f.serialize())
        send(b''.join(out))
    else:
        raise SystemExit('unknown scenario ' + name)


def main():
    port, ca, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    quiet = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    s = connect(port, ca)
    res = {'alpn': s.selected_alpn_protocol(), 'goaway': None, 'rst': {}, 'status': {}, 'data': {}, 'closed': False}
    enc, dec = hpack.Encoder(), hpack.Decoder()
    scenario(name, s, enc)
    s.settimeout(quiet)
    buf = b''
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            res['closed'] = True
            break
        if not chunk:
            res['closed'] = True
            break
        buf += chunk
        while len(buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            f.parse_body(memoryview(buf[9:9 + length]))
            buf = buf[9 + length:]
            sid = str(f.stream_id)
            if isinstance(f, GoAwayFrame):
                res['goaway'] = f.error_code
            elif isinstance(f, RstStreamFrame):
                res['rst'][sid] = f.error_code
            elif isinstance(f, HeadersFrame):
                for k, v in dec.decode(f.data):
                    if k in (':status', b':status'):
                        res['status'][sid] = int(v)
            elif isinstance(f, DataFrame):
                res['data'][sid] = res['data'].get(sid, 0) + len(f.data)
            elif isinstance(f, SettingsFrame) and 'ACK' not in f.flags:
                s.sendall(SettingsFrame(0, flags=['ACK']).serialize())
    print(json.dumps(res))
    s.close()


if __name__ == '__main__':
    main()
