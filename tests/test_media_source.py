"""Where chat image bytes come from (reference_server/media_source.py): data: URLs, the address policy, and real
fetches from a loopback server started here (redirects, caps, deadlines, non-images)."""

from __future__ import annotations

import asyncio
import base64
import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from wirecheck.reference_server.config import ServerConfig
from wirecheck.reference_server.errors import APIError
from wirecheck.reference_server.media_source import (FetchPolicy, address_allowed, load_image, parse_cidr,
                                                     parse_data_url, sniff)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(32)
GIF = b"GIF89a" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
WHERE = "messages[0].content[1].image_url.url"


def data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"


def refused(coro_or_call) -> APIError:
    with pytest.raises(APIError) as info:
        if asyncio.iscoroutine(coro_or_call):
            asyncio.run(coro_or_call)
        else:
            coro_or_call()
    err = info.value
    assert err.status == 400 and err.param == WHERE and err.type == "invalid_request_error"
    return err


# --- address policy -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, allowed", [
    ("8.8.8.8", True), ("1.1.1.1", True), ("93.184.215.14", True),
    ("127.0.0.1", False), ("127.255.0.9", False), ("10.0.0.5", False), ("172.16.3.4", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("169.254.0.1", False), ("100.64.0.1", False),
    ("100.127.255.254", False), ("0.0.0.0", False), ("224.0.0.1", False), ("239.1.2.3", False),
    ("240.0.0.1", False), ("255.255.255.255", False), ("192.0.2.1", False), ("198.18.0.1", False),
    ("2606:4700:4700::1111", True), ("2001:4860:4860::8888", True),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("fd12:3456::1", False),
    ("fec0::1", False), ("ff02::1", False), ("2001:db8::1", False), ("::7f00:1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.5", False), ("::ffff:169.254.169.254", False),
    ("::ffff:8.8.8.8", True),
    ("2002:7f00:1::", False), ("2002:a9fe:a9fe::1", False), ("2002:808:808::1", True),  # 6to4
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
    ("64:ff9b::a00:5", False), ("64:ff9b::808:808", False),  # NAT64 (in ::/8, reserved), any embedded address
])
def test_address_policy(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address), FetchPolicy(allow_fetch=True)) is allowed


def test_allowed_cidrs_are_the_only_exception() -> None:
    policy = FetchPolicy(allow_fetch=True, allow_cidrs=("127.0.0.1/32", "10.1.2.0/24", "fd00::/8"))
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "10.1.2.200", "fd00::5"):
        assert address_allowed(ipaddress.ip_address(address), policy), address
    for address in ("127.0.0.2", "10.1.3.1", "169.254.169.254", "::1"):
        assert not address_allowed(ipaddress.ip_address(address), policy), address


def test_bad_cidrs_are_refused_at_startup() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.5/8 has host bits set"):
        FetchPolicy(allow_cidrs=("10.0.0.5/8",))
    with pytest.raises(ValueError, match="not-a-net"):
        ServerConfig(image_fetch_allow_cidrs=["not-a-net"]).fetch_policy()
    assert str(parse_cidr("127.0.0.1")) == "127.0.0.1/32"
    policy = ServerConfig(allow_image_fetch=True, image_fetch_allow_cidrs=["10.0.0.0/8"], max_image_bytes=5,
                          image_fetch_timeout_s=2.0).fetch_policy()
    assert policy == FetchPolicy(allow_fetch=True, allow_cidrs=("10.0.0.0/8",), max_bytes=5, timeout_s=2.0)


def test_cli_flags_reach_the_policy() -> None:
    import argparse

    from wirecheck.reference_server.cli import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--allow-image-fetch", "--image-fetch-allow-cidr", "10.1.2.0/24",
                              "--image-fetch-allow-cidr", "127.0.0.1", "--max-image-bytes", "1000",
                              "--image-fetch-timeout", "2.5"])
    assert args.allow_image_fetch and args.image_fetch_allow_cidr == ["10.1.2.0/24", "127.0.0.1/32"]
    assert (args.max_image_bytes, args.image_fetch_timeout) == (1000, 2.5)
    defaults = parser.parse_args([])
    assert not defaults.allow_image_fetch and defaults.image_fetch_allow_cidr == []
    with pytest.raises(SystemExit):
        parser.parse_args(["--image-fetch-allow-cidr", "10.0.0.0/33"])


# --- data: URLs -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, media", [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"),
                                         (WEBP, "image/webp")])
def test_data_urls(data: bytes, media: str) -> None:
    assert sniff(data) == media
    assert parse_data_url(data_url(data, media), WHERE) == (media, data)
    # The bytes decide the type, whatever the sender declared; line-wrapped base64 is still base64.
    wrapped = base64.encodebytes(data).decode()
    assert parse_data_url(f"data:image/png;base64,{wrapped}", WHERE) == (media, data)
    assert asyncio.run(load_image(data_url(data, media), WHERE, FetchPolicy())) == (media, data)


@pytest.mark.parametrize("url, says", [
    ("data:image/png;base64,iVBORw0KGgo*", "not valid base64"),
    ("data:image/png;base64,iVBORw0KGgo", "not valid base64"),  # bad padding
    ("data:text/plain;base64," + base64.b64encode(PNG).decode(), "'text/plain', not an image"),
    ("data:;base64," + base64.b64encode(PNG).decode(), "'missing', not an image"),
    ("data:image/svg+xml;base64,PHN2Zz4=", "'image/svg+xml' is not supported"),
    ("data:image/png," + "%89PNG", "not base64-encoded"),
    ("data:image/png;base64,", "is empty"),
    ("data:image/png;base64", "malformed"),
    ("data:image/png;base64," + base64.b64encode(b"<html>hello</html>").decode(), "not a supported image"),
])
def test_bad_data_urls(url: str, says: str) -> None:
    err = refused(lambda: parse_data_url(url, WHERE))
    assert says in err.message, err.message


def test_data_url_over_the_cap() -> None:
    err = refused(lambda: parse_data_url(data_url(PNG + bytes(1000)), WHERE, max_bytes=500))
    assert "larger than this server accepts" in err.message and "500 bytes" in err.message
    err = refused(load_image(data_url(PNG + bytes(100)), WHERE, FetchPolicy(max_bytes=len(PNG) + 50)))
    assert "larger" in err.message


# --- schemes and the default: no fetching --------------------------------------------------------------------

def test_fetch_is_refused_by_default() -> None:
    for url in ("http://example.com/cat.png", "https://example.com/cat.png"):
        err = refused(load_image(url, WHERE, FetchPolicy()))
        assert "does not fetch image URLs" in err.message and "data:" in err.message
        assert "--allow-image-fetch" in err.message and err.code == "invalid_image_url"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://127.0.0.1:25/x",
                                 "/relative/cat.png", "javascript:alert(1)"])
def test_other_schemes_are_refused(url: str) -> None:
    for policy in (FetchPolicy(), FetchPolicy(allow_fetch=True)):
        err = refused(load_image(url, WHERE, policy))
        assert "Unsupported image URL scheme" in err.message


# --- real fetches from a loopback server ----------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_hosts: ClassVar[list[str]] = []  # the Host header of each request, in order

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def answer(self, status: int, body: bytes = b"", ctype: str = "image/png", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Handler.seen_hosts.append(self.headers.get("Host", ""))
        path = self.path
        if path == "/ok.png":
            self.answer(200, PNG)
        elif path == "/octet":
            self.answer(200, JPEG, ctype="application/octet-stream")
        elif path == "/hop1":
            self.answer(302, Location="/hop2")
        elif path == "/hop2":
            self.answer(302, Location=f"http://127.0.0.1:{self.server.server_port}/ok.png")
        elif path == "/to-metadata":
            self.answer(302, Location="/to-metadata2")
        elif path == "/to-metadata2":
            self.answer(302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self.answer(302, Location="file:///etc/passwd")
        elif path == "/loop":
            self.answer(302, Location="/loop")
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(PNG)  # never sends the rest: the client must refuse on the header alone
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(100):
                    chunk = PNG + bytes(200)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client hung up at its cap
        elif path == "/slow-headers":
            time.sleep(2)
            self.answer(200, PNG)
        elif path == "/slow-body":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "200")
            self.end_headers()
            try:
                for _ in range(200):  # a byte every 50 ms never trips a per-read timeout; the deadline must
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif path == "/html":
            self.answer(200, b"<html>no</html>", ctype="text/html")
        elif path == "/html-as-png":
            self.answer(200, b"<html>no</html>", ctype="image/png")
        elif path == "/gzip":
            self.answer(200, PNG, Content_Encoding="gzip")
        else:
            self.answer(404, b"not found", ctype="text/plain")


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


LOOPBACK = FetchPolicy(allow_fetch=True, allow_cidrs=("127.0.0.1/32",), max_bytes=1000, timeout_s=0.5)


def test_fetch_an_image(origin: str) -> None:
    Handler.seen_hosts.clear()
    assert asyncio.run(load_image(f"{origin}/ok.png", WHERE, LOOPBACK)) == ("image/png", PNG)
    assert Handler.seen_hosts == [origin.removeprefix("http://")]
    # An octet-stream answer is fine when its bytes are an image.
    assert asyncio.run(load_image(f"{origin}/octet", WHERE, LOOPBACK)) == ("image/jpeg", JPEG)


def test_fetch_follows_checked_redirects(origin: str) -> None:
    assert asyncio.run(load_image(f"{origin}/hop1", WHERE, LOOPBACK)) == ("image/png", PNG)
    err = refused(load_image(f"{origin}/hop1", WHERE, FetchPolicy(**{**LOOPBACK.__dict__, "max_redirects": 1})))
    assert "redirects more than 1 times" in err.message
    err = refused(load_image(f"{origin}/loop", WHERE, LOOPBACK))
    assert "redirects more than 3 times" in err.message


def test_redirect_to_a_disallowed_address_is_refused(origin: str) -> None:
    err = refused(load_image(f"{origin}/to-metadata", WHERE, LOOPBACK))
    assert "169.254.169.254" in err.message and "link-local" in err.message
    assert "does not fetch from" in err.message
    err = refused(load_image(f"{origin}/to-file", WHERE, LOOPBACK))
    assert "file: URL" in err.message


def test_loopback_without_an_allowed_cidr_is_refused(origin: str) -> None:
    port = origin.rsplit(":", 1)[1]
    policy = FetchPolicy(allow_fetch=True, timeout_s=2)
    for url in (f"http://localhost:{port}/ok.png", f"{origin}/ok.png", f"http://[::1]:{port}/ok.png",
                f"http://2130706433:{port}/ok.png"):
        err = refused(load_image(url, WHERE, policy))
        assert "loopback address" in err.message and "does not fetch from" in err.message, err.message


@pytest.mark.parametrize("path, says", [
    ("big-declared", "larger than this server accepts (5000 bytes; the limit is 1000 bytes)"),
    ("big-chunked", "larger than this server accepts (more than 1000 bytes"),
    ("slow-headers", "did not answer within 0.5 s"),
    ("slow-body", "did not answer within 0.5 s"),
    ("html", "Content-Type text/html, not an image"),
    ("html-as-png", "not a supported image"),
    ("gzip", "gzip-encoded"),
    ("missing", "answered HTTP 404"),
])
def test_fetch_failures_are_400s(origin: str, path: str, says: str) -> None:
    start = time.monotonic()
    err = refused(load_image(f"{origin}/{path}", WHERE, LOOPBACK))
    assert says in err.message, err.message
    assert time.monotonic() - start < 1.5  # never a hang


def test_unresolvable_and_unreachable_hosts() -> None:
    policy = FetchPolicy(allow_fetch=True, allow_cidrs=("127.0.0.1/32",), timeout_s=2)
    err = refused(load_image("http://no-such-host.invalid/cat.png", WHERE, policy))
    assert "could not be resolved" in err.message
    # A port nobody listens on: connection refused, a 400 all the same.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = refused(load_image(f"http://127.0.0.1:{port}/x.png", WHERE, policy))
    assert "could not connect" in err.message


def test_the_connection_goes_to_the_checked_address(origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolved once per hop: a rebinding DNS answer (public, then private) cannot move the connection,
    and the request still names the host."""
    import anyio

    from wirecheck.reference_server import media_source

    port = int(origin.rsplit(":", 1)[1])
    answers = iter(["127.0.0.1", "10.0.0.5"])
    calls: list[str] = []

    async def rebinding(host, port_, **kwargs):
        calls.append(host)
        return [(2, 1, 6, "", (next(answers), port_))]

    monkeypatch.setattr(media_source.anyio, "getaddrinfo", rebinding)
    Handler.seen_hosts.clear()
    assert asyncio.run(load_image(f"http://images.example:{port}/ok.png", WHERE, LOOPBACK)) == ("image/png", PNG)
    assert calls == ["images.example"] and Handler.seen_hosts == [f"images.example:{port}"]
    assert anyio.getaddrinfo is rebinding  # (restored by monkeypatch after the test)


def test_https_is_pinned_with_sni_and_certificate_checks(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """https to a checked address: SNI and certificate verification use the URL's host, not the IP."""
    import shutil
    import ssl
    import subprocess

    import httpx

    from wirecheck.reference_server import media_source

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=images.example", "-addext", "subjectAltName=DNS:images.example"],
                   check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port

    async def resolve(host, port_, **kwargs):
        return [(2, 1, 6, "", ("127.0.0.1", port_))]

    trusting = ssl.create_default_context(cafile=str(cert))

    class Client(httpx.AsyncClient):  # the same client, trusting the test's certificate
        def __init__(self, **kwargs) -> None:
            super().__init__(verify=trusting, **kwargs)

    monkeypatch.setattr(media_source.anyio, "getaddrinfo", resolve)
    try:
        policy = FetchPolicy(allow_fetch=True, allow_cidrs=("127.0.0.1/32",), timeout_s=2)
        err = refused(load_image(f"https://images.example:{port}/ok.png", WHERE, policy))
        assert "certificate verify failed" in err.message  # default trust store: the self-signed cert is refused
        monkeypatch.setattr(media_source.httpx, "AsyncClient", Client)
        assert asyncio.run(load_image(f"https://images.example:{port}/ok.png", WHERE, policy)) == ("image/png", PNG)
        assert names[-1] == "images.example"
        err = refused(load_image(f"https://127.0.0.1:{port}/ok.png", WHERE, policy))
        assert "certificate is not valid for '127.0.0.1'" in err.message
    finally:
        server.shutdown()
        server.server_close()
