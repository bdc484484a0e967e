"""A fault-injecting TCP proxy on loopback, in front of a plain-HTTP registry.

Each new connection may get one fault (a seeded random draw; the kinds in turn) until a budget runs out:
``reset`` (the connection is cut with a TCP RST after a random number of bytes, either way),
``500`` and ``429`` (answered by the proxy instead of the registry), or ``stall`` (nothing forwarded
for longer than the client's read timeout); any chunk forwarded may also be ``cut`` by a reset. Every
fault is recorded, so a test can count them.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from types import TracebackType

FAULTS = ("500", "429", "stall", "reset", "cut")


class FaultProxy:
    def __init__(self, upstream: str, seed: int, budget: int, rate: float = 0.3, stall: float = 3.0):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.random = random.Random(seed)
        self.budget, self.rate, self.stall = budget, rate, stall
        self.faults: list[str] = []
        self.enabled = True
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._server.close()

    def _pick(self, choices: tuple[str, ...], rate: float, limit: int | None = None) -> str | None:
        """A fault of ``choices`` (each in turn) at ``rate``, while the budget lasts; ``limit``: at most that
        many of these kinds, so mid-stream cuts (many chunks on a slow host) never use up the budget before
        every connection fault had its turn."""
        with self._lock:
            if not self.enabled or len(self.faults) >= self.budget or self.random.random() >= rate:
                return None
            if limit is not None and sum(f in choices for f in self.faults) >= limit:
                return None
            fault = choices[sum(f in choices for f in self.faults) % len(choices)]  # each kind in turn
            self.faults.append(fault)
            return fault

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        fault = self._pick(FAULTS[:4], self.rate)
        try:
            if fault in ("500", "429"):
                client.recv(65536)  # the request head
                extra = "Retry-After: 1\r\n" if fault == "429" else ""
                client.sendall(f"HTTP/1.1 {fault} Injected\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n"
                               .encode())
                client.close()
                return
            if fault == "stall":
                time.sleep(self.stall)
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        both = (client, upstream)
        if fault == "reset":  # right away, before any answer
            self._reset(both)
            return
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(src, dst, both), daemon=True).start()

    @staticmethod
    def _reset(both: tuple[socket.socket, ...]) -> None:
        for s in both:  # SO_LINGER 0: close sends a TCP RST, not a FIN
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            s.close()

    def _pipe(self, src: socket.socket, dst: socket.socket, both: tuple[socket.socket, ...]) -> None:
        """Forward until EOF; at any chunk, a reset may cut the connection (both ways) mid-stream."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self._pick(("cut",), self.rate / 8, limit=self.budget // 4):
                    self._reset(both)
                    return
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            for s in both:
                s.close()
