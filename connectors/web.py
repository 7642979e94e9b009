"""http(s) URLs → Documents, with an SSRF guard, a size limit and a time limit.

The guard: every host is resolved with getaddrinfo and refused if ANY of its addresses is private, loopback,
link-local, multicast, reserved or unspecified (unless `allow_private`). It runs twice: before each request
(so a refusal never opens a socket) and again inside the connection itself, which then connects to the very
address it checked — a DNS answer that changes between the check and the connect (rebinding) gains nothing.
Redirects are followed by hand, each hop checked the same way. Proxies from the environment are ignored: a
proxy would make the connection somewhere we did not check.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import socket
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from connectors.base import LoadOptions, human_size, loader_for, loader_for_mime
from connectors.files import run_loader
from rag.documents import Document
from rag.errors import SourceError, UnsupportedFormat

_USER_AGENT = "rag-plugin (+https://github.com/rag-plugin)"
_REDIRECTS = {301, 302, 303, 307, 308}


class BlockedAddress(SourceError):
    """A URL whose host resolves to an address the SSRF guard refuses."""


def check_host(host: str, port: int, allow_private: bool = False, allow_hosts: Iterable[str] = ()) -> list[str]:
    """Resolve `host` and return its addresses, or raise BlockedAddress if any is not a public one.

    `allow_hosts` are host names (as written in URLs) let through even when private, e.g. an intranet wiki.

    >>> check_host("127.0.0.1", 80)  # doctest: +SKIP
    BlockedAddress: 127.0.0.1: refused: 127.0.0.1 is a loopback address (use --allow-private to fetch it)
    """
    name = host.strip("[]")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise SourceError(host, f"cannot resolve host {name!r}: {getattr(exc, 'strerror', None) or exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise SourceError(host, f"cannot resolve host {name!r}: no address")
    if not allow_private and name.lower() not in {h.strip("[]").lower() for h in allow_hosts}:
        for address in addresses:
            kind = _non_public_kind(address)
            if kind:
                shown = name if name == address else f"{name} resolves to {address}, which"
                article = "an" if kind[0] in "aeiou" else "a"
                raise BlockedAddress(
                    host, f"refused: {shown} is {article} {kind} address (use --allow-private to fetch it)"
                )
    return addresses


def _non_public_kind(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


class _GuardedBackend(httpcore.NetworkBackend):
    """Connects only to addresses that pass the guard, and to exactly the address that was checked."""

    def __init__(self, allow_private: bool, allow_hosts: Iterable[str]) -> None:
        self.allow_private = allow_private
        self.allow_hosts = tuple(allow_hosts)
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in check_host(host, port, self.allow_private, self.allow_hosts):
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool, allow_hosts: Iterable[str]) -> None:
        super().__init__(trust_env=False)
        # httpx has no public hook for the network backend; its pool is one line to rebuild with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(allow_private, allow_hosts),
        )


def fetch(url: str, options: LoadOptions) -> Document:
    """Fetch `url` (following redirects, each checked) and read it with the loader for its content type."""
    deadline = time.monotonic() + options.fetch_seconds
    timeout = httpx.Timeout(options.timeout)
    transport = _GuardedTransport(options.allow_private, options.allow_hosts)
    with httpx.Client(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False) as client:
        current = url
        for _ in range(options.max_redirects + 1):
            _check_url(url, current, options)
            try:
                with client.stream("GET", current, headers={"User-Agent": _USER_AGENT}) as response:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise SourceError(url, f"HTTP {response.status_code} {response.reason_phrase}".strip())
                    data = _read_limited(url, response, options, deadline)
                    return _document(url, current, response, data, options)
            except BlockedAddress as exc:
                raise BlockedAddress(url, exc.reason) from exc
            except httpx.TimeoutException as exc:
                raise SourceError(url, f"timed out after {options.timeout:g} s ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise SourceError(url, f"cannot fetch: {exc or type(exc).__name__}") from exc
        raise SourceError(url, f"too many redirects (more than {options.max_redirects})")


def _check_url(original: str, url: str, options: LoadOptions) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SourceError(original, f"refused: redirect to a {parts.scheme or 'relative'} URL ({url})")
    if not parts.hostname:
        raise SourceError(original, f"not a valid URL: no host in {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise SourceError(original, f"not a valid URL: {exc}") from exc
    try:
        check_host(parts.hostname, port, options.allow_private, options.allow_hosts)
    except SourceError as exc:
        hop = "" if url == original else f" (redirected to {url})"
        raise type(exc)(original, exc.reason + hop) from exc


def _read_limited(url: str, response: httpx.Response, options: LoadOptions, deadline: float) -> bytes:
    limit = options.max_file_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise SourceError(url, f"over the {human_size(limit)} limit ({human_size(int(declared))} declared)")
    received = bytearray()
    for piece in response.iter_bytes():
        received += piece
        if len(received) > limit:
            raise SourceError(url, f"over the {human_size(limit)} limit (download stopped)")
        if time.monotonic() > deadline:
            raise SourceError(url, f"timed out: download took longer than {options.fetch_seconds:g} s")
    return bytes(received)


def _document(url: str, final: str, response: httpx.Response, data: bytes, options: LoadOptions) -> Document:
    mime = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    name = PurePosixPath(unquote(urlsplit(final).path)).name or urlsplit(final).hostname or "page"
    path = Path(name)
    loader = loader_for_mime(mime) if mime else None
    if loader is None:  # "application/octet-stream" and friends: the URL's file name may still say what it is
        loader = loader_for(path)
    if loader is None:
        raise UnsupportedFormat(url, f"unsupported content type '{mime or 'none'}'")
    text_data = _with_declared_charset(data, mime, response.headers.get("content-type", ""))
    sections, title, found_mime = run_loader(loader, path, text_data, options, url)
    return Document(
        source=url,
        sections=sections,
        title=title,
        mime=found_mime or mime,
        sha256=hashlib.sha256(data).hexdigest(),
        mtime=_last_modified(response),
        size=len(data),
        extra={"final_url": final} if final != url else {},
    )


def _with_declared_charset(data: bytes, mime: str, content_type: str) -> bytes:
    """Text whose Content-Type names its charset, re-encoded as UTF-8 with a BOM, which every text loader takes as
    proof (and which outranks a contradicting <meta charset>, as the HTTP header does in browsers)."""
    charset = next(
        (p.split("=", 1)[1].strip().strip("\"'") for p in content_type.split(";")[1:] if "charset=" in p.lower()), ""
    )
    textual = mime.startswith("text/") or mime in ("application/json", "application/xhtml+xml", "application/x-ndjson")
    if not charset or not textual or data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data
    try:
        return codecs.BOM_UTF8 + data.decode(charset, errors="replace").encode("utf-8")
    except LookupError:  # a charset name Python does not know: let the loader detect
        return data


def _last_modified(response: httpx.Response) -> float | None:
    value = response.headers.get("last-modified")
    try:
        return parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError):
        return None
