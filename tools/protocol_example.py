#!/usr/bin/env python3
"""Prints the worked example of docs/PROTOCOL.md §7 from a live server: the bytes of a QUERY,
its RESULT (compact), the decoded document, and an ERROR. Usage:
    python3 tools/protocol_example.py [--port 8081]      (against `tally serve` on the sample)
"""
import argparse
import json
import socket
import struct
import sys
import os

sys.path.insert(0, os.path.dirname(__file__))
import tally_client as tc  # noqa: E402

CLIENT = "aa7cf840-9ca9-46a3-9778-9015d6580d50"
PARAMS = [("start_date", "2026-02-01"), ("end_date", "2026-02-28"), ("compare_start_date", "2026-01-01"),
          ("compare_end_date", "2026-01-31"), ("granularity", "monthly"), ("is_approved", "false"), ("page_size", "2")]


def hexdump(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:04x}  {' '.join(f'{b:02x}' for b in chunk):<47}  {text}")
    return "\n".join(lines)


def read_frame(sock: socket.socket) -> bytes:
    def exact(n):
        out = b""
        while len(out) < n:
            part = sock.recv(n - len(out))
            if not part:
                raise SystemExit("connection closed")
            out += part
        return out
    head = exact(4)
    (length,) = struct.unpack(">I", head)
    return head + exact(length)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8081)
    args = ap.parse_args()
    sock = socket.create_connection(("127.0.0.1", args.port))
    sock.sendall(tc.encode_frame(tc.HELLO, 1, tc.encode_hello("YOUR_API_TOKEN", "doc")))
    read_frame(sock)
    query = tc.encode_frame(tc.QUERY, 2, tc.encode_query(2, 1, CLIENT, PARAMS))
    sock.sendall(query)
    result = read_frame(sock)
    bad = [(k, "0" if k == "page_size" else v) for k, v in PARAMS]
    sock.sendall(tc.encode_frame(tc.QUERY, 3, tc.encode_query(2, 1, CLIENT, bad)))
    error = read_frame(sock)
    print("QUERY\n" + hexdump(query) + "\n")
    print("RESULT\n" + hexdump(result) + "\n")
    print("decoded\n" + json.dumps(tc.decode_compact(result[13:]), indent=2) + "\n")
    print("ERROR\n" + hexdump(error))


if __name__ == "__main__":
    main()
