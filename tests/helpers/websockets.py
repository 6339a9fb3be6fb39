"""WebSocket clients for tests of /ws/watching: Tornado's client, and raw sockets that behave badly."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import tornado.httpclient
import tornado.websocket

TEXT, PING, PONG = 0x1, 0x9, 0xA  # RFC 6455 §5.2 opcodes


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/ws/watching"


async def connect(base_url: str, **headers: str) -> tornado.websocket.WebSocketClientConnection:
    request = tornado.httpclient.HTTPRequest(ws_url(base_url), headers=headers or None)
    return await tornado.websocket.websocket_connect(request)


async def receive(conn, timeout: float = 5.0) -> dict | None:
    """The next message as JSON; None when the server closed the connection."""
    raw = await asyncio.wait_for(conn.read_message(), timeout)
    return None if raw is None else json.loads(raw)


def raw_websocket(port: int, rcvbuf: int = 4096) -> socket.socket:
    """A blocking socket that completes the WebSocket handshake and has not read one byte of what
    the server sent after it (a small receive buffer, so it fills quickly)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/watching HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)  # byte by byte: not one byte of the first frame is read
        assert chunk, "the server closed during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_frame(payload: bytes | str, opcode: int = TEXT) -> bytes:
    """One final client frame (clients must mask, RFC 6455 §5.3)."""
    data = payload.encode() if isinstance(payload, str) else payload
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    if len(data) < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | len(data))
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(data))
    return header + mask + body


def send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    """`sendall` for a client the server may disconnect halfway through."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection (or reset it)."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
