"""The SSRF guard of http steps: resolve the host, check every address, connect to the checked one.

A global runtime runs on the platform's network: unless the runtime allows it (``allow_private_network``; local
runtimes always do), a step may not reach private, loopback, link-local, multicast, reserved or otherwise
non-global addresses. The check is made where the socket is opened (an httpcore network backend), on the
addresses the connection then uses, so a DNS answer cannot change between the check and the connect (rebinding),
and every connection is checked, the OAuth 2 token request's included. Redirects are not followed at all.

The backend also remembers its open sockets: :meth:`GuardedBackend.abort` shuts them down, which wakes a thread
blocked reading a slow answer at once (how a Stop or a step timeout ends a request mid-flight)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

SocketOption = Any


class BlockedAddress(Exception):
    """The host resolves to an address this runtime may not reach."""


class Aborted(Exception):
    """The request was aborted (stop, lost lease, shutdown or step timeout)."""


def is_forbidden(address: str) -> bool:
    """Private, loopback, link-local, multicast, reserved, unspecified, shared (CGNAT) … anything not global."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_forbidden(str(mapped))
        if ip.teredo:
            return True
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._aborted = False

    def resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error.strerror}") from error
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        if not self.allow_private:
            for address in addresses:
                if is_forbidden(address):
                    raise BlockedAddress(
                        f"{host} resolves to {address}, a private, loopback, link-local or reserved address: "
                        "this runtime may not reach private networks (allow_private_network is off)"
                    )
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        if self._aborted:
            raise Aborted("aborted")
        error: Exception | None = None
        for address in self.resolve(host, port):
            try:
                stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as failure:
                error = failure
                continue
            sock = stream.get_extra_info("socket")
            with self._lock:
                self._sockets.add(sock)
                aborted = self._aborted
            if aborted:
                self._shutdown(sock)
                raise Aborted("aborted")
            return stream
        raise error or httpcore.ConnectError(f"cannot connect to {host}:{port}")

    def abort(self) -> None:
        """Shut down every socket opened so far (blocked reads return at once) and refuse new connections."""
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every step (loading the CA bundle costs tens to hundreds of milliseconds; a
    context is safe to share between threads)."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context(trust_env=False)
        return _ssl_context


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, its connection pool opening connections through a :class:`GuardedBackend`."""

    def __init__(self, backend: GuardedBackend) -> None:
        context = shared_ssl_context()
        super().__init__(verify=context, trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=20,
            max_keepalive_connections=5,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def guarded_client(backend: GuardedBackend, *, timeout: float) -> httpx.Client:
    return httpx.Client(
        transport=GuardedTransport(backend),
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        trust_env=False,
    )
