"""Where the bytes of a chat `image_url` part come from: the data: URL itself, or (only when the operator allows
it) an http(s) fetch that cannot be turned against the server's own network.

The fetch is the dangerous part (SSRF): a client-chosen URL makes the server send a request from inside its
network. So it is off by default, and when on, every hop is resolved once, refused if any address it resolves to
is not public (unless the operator allowed that network), and then connected to that checked address itself, so
a DNS answer that changes between the check and the connect (rebinding) cannot move it. No proxy from the
environment, bodies capped in bytes, one deadline over the whole fetch. Every failure is a 400 naming the part.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpx

from .errors import APIError, invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Fail = Callable[[str], APIError]  # reason -> the 400 that names the part

DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # OpenAI's documented per-image limit
FLAG = "--allow-image-fetch"
# What a data: URL may declare; the bytes must then sniff as one of the four formats.
DATA_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp"}
SUPPORTED = "png, jpeg, gif, webp"
_REDIRECTS = {301, 302, 303, 307, 308}
# Plain answers only: a compressed body could inflate far past the byte cap inside a single decoded chunk.
_HEADERS = {"Accept": "image/png, image/jpeg, image/gif, image/webp, image/*;q=0.8", "Accept-Encoding": "identity",
            "User-Agent": "wirecheck-reference-server"}
# Beyond what ipaddress calls private: carrier-grade NAT (100.64/10) is not is_private, yet it is nobody's
# public address.
_NEVER = (ipaddress.ip_network("100.64.0.0/10"),)


@dataclass(frozen=True)
class FetchPolicy:
    allow_fetch: bool = False
    # Networks the operator trusts although they are private or loopback (an internal image store, say).
    allow_cidrs: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = 10.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        _networks(self.allow_cidrs)  # a bad CIDR is the operator's mistake: say so at startup, not per request
        if self.max_bytes <= 0:
            raise ValueError(f"the image size limit must be positive (got {self.max_bytes} bytes)")
        if self.timeout_s <= 0:
            raise ValueError(f"the image fetch timeout must be positive (got {self.timeout_s} s)")
        if self.max_redirects < 0:
            raise ValueError(f"image fetch redirects cannot be negative (got {self.max_redirects})")


def parse_cidr(text: str) -> IPNetwork:
    """One --image-fetch-allow-cidr value; a ValueError that names it when it is not a network."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"invalid image fetch CIDR {text!r}: {exc}") from None


@functools.lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(parse_cidr(c) for c in cidrs)


def sniff(data: bytes) -> str | None:
    """The image type the bytes themselves say, whatever the sender declared."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image(data: bytes, param: str, source: str) -> str:
    if not data:
        raise invalid(f"The image at {source} is empty.", param=param, code="invalid_image")
    kind = sniff(data)
    if kind is None:
        raise invalid(f"The image at {source} is not a supported image; supported formats: {SUPPORTED}.",
                      param=param, code="invalid_image_format")
    return kind


def _too_large(size: str, max_bytes: int, param: str, source: str) -> APIError:
    return invalid(f"The image at {source} is larger than this server accepts ({size} bytes; the limit is "
                   f"{max_bytes} bytes).", param=param, code="invalid_image")


def parse_data_url(url: str, where: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, bytes]:
    """(media type, bytes) of a `data:image/...;base64,...` URL; the media type is the sniffed one."""
    source = "the data: URL"
    header, comma, payload = url.partition(",")
    if header[:5].lower() != "data:" or not comma:
        raise invalid("The image data: URL is malformed: expected data:image/<type>;base64,<data>.", param=where,
                      code="invalid_image_url")
    params = [p.strip().lower() for p in header[5:].split(";")]
    declared = params[0]
    if not declared.startswith("image/"):
        raise invalid(f"The data: URL's media type is {declared or 'missing'!r}, not an image; send "
                      f"data:image/<type>;base64,<data> with one of {SUPPORTED}.", param=where,
                      code="invalid_image_format")
    if declared not in DATA_TYPES:
        raise invalid(f"The data: URL's media type {declared!r} is not supported; supported formats: {SUPPORTED}.",
                      param=where, code="invalid_image_format")
    if params[-1] != "base64":
        raise invalid("The image data: URL is not base64-encoded; send data:image/<type>;base64,<data>.",
                      param=where, code="invalid_image_url")
    text = "".join(payload.split())  # line-wrapped base64 (76 columns) is still base64
    if len(text) // 4 * 3 > max_bytes + 2:  # refuse before decoding what could not be kept anyway
        raise _too_large(f"about {len(text) // 4 * 3}", max_bytes, where, source)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"The image data: URL's payload is not valid base64 ({exc}).", param=where,
                      code="invalid_image") from None
    if len(data) > max_bytes:
        raise _too_large(str(len(data)), max_bytes, where, source)
    return _image(data, where, source), data


def address_allowed(ip: IPAddress, policy: FetchPolicy) -> bool:
    """Whether the server may connect to `ip`: public unicast only, unless the operator allowed its network."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is a.b.c.d on the wire
    if any(ip in net for net in _networks(policy.allow_cidrs) if net.version == ip.version):
        return True
    if (not ip.is_global or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or any(ip in net for net in _NEVER if net.version == ip.version)):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        # Tunnels that carry an IPv4 address inside: that address must pass too. (NAT64, 64:ff9b::/96, lies in
        # ::/8, which is_reserved already refuses.)
        if ip.sixtofour is not None and not address_allowed(ip.sixtofour, policy):
            return False
        if ip.teredo is not None and not all(address_allowed(v4, policy) for v4 in ip.teredo):
            return False
    return True


def _refused_address(ip: IPAddress) -> str:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            return f"a 6to4 address ({ip}) carrying {ip.sixtofour}"
        elif ip.teredo is not None:
            return f"a Teredo address ({ip}) carrying {ip.teredo[1]}"
    kind = ("a loopback" if ip.is_loopback else "a link-local" if ip.is_link_local
            else "a multicast" if ip.is_multicast else "an unspecified" if ip.is_unspecified
            else "a private" if ip.is_private or any(ip in n for n in _NEVER if n.version == ip.version)
            else "a reserved" if ip.is_reserved else "a non-public")
    return f"{kind} address ({ip})"


async def load_image(url: str, where: str, policy: FetchPolicy) -> tuple[str, bytes]:
    """(media type, bytes) for a chat `image_url.url`; `where` is the param its errors name. Every failure is an
    APIError 400 (`invalid`), a slow or hanging source included."""
    url = url.strip()
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if scheme == "data":
        return parse_data_url(url, where, policy.max_bytes)
    if scheme not in ("http", "https"):
        also = " or an http(s) URL" if policy.allow_fetch else ""
        raise invalid(f"Unsupported image URL scheme {scheme + ':' if scheme else '(none)'}; send the image as a "
                      f"data:image/<type>;base64,<data> URL{also}.", param=where, code="invalid_image_url")
    if not policy.allow_fetch:
        raise invalid(f"This server does not fetch image URLs; send the image inline as a "
                      f"data:image/<type>;base64,<data> URL. (Operators can allow fetching with {FLAG}.)",
                      param=where, code="invalid_image_url")
    try:
        with anyio.fail_after(policy.timeout_s):
            return await _fetch(url, where, policy)
    except TimeoutError:
        raise invalid(f"The image URL did not answer within {policy.timeout_s:g} s.", param=where,
                      code="invalid_image_url") from None


async def _fetch(url: str, where: str, policy: FetchPolicy) -> tuple[str, bytes]:
    def fail(reason: str) -> APIError:
        return invalid(f"The image URL could not be used: {reason}.", param=where, code="invalid_image_url")

    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise fail(f"it is not a valid URL ({exc})") from None
    # No environment proxies (they would make the request, unchecked), no automatic redirects (each hop is
    # checked here), no kept-alive connections (a hop to another host on the same IP would reuse the first
    # host's TLS session and so skip its own certificate check).
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(policy.timeout_s),
                                 limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for _ in range(policy.max_redirects + 1):
            if current.scheme not in ("http", "https"):
                raise fail(f"it redirects to a {current.scheme or 'schemeless'}: URL, which is not fetched")
            if not current.host:
                raise fail("it has no host")
            addresses = await _resolve(current, fail)
            for ip in addresses:
                if not address_allowed(ip, policy):
                    says = "is" if current.host == str(ip) else "resolves to"
                    raise fail(f"{current.host} {says} {_refused_address(ip)}, which this server does not fetch "
                               "from")
            response = await _send(client, current, addresses, fail)
            try:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    try:
                        current = current.join(response.headers["location"])
                    except (httpx.InvalidURL, ValueError):
                        raise fail("it redirects to an invalid URL") from None
                    continue
                return await _read(response, policy, where, fail)
            finally:
                await response.aclose()
    raise fail(f"it redirects more than {policy.max_redirects} times")


async def _resolve(url: httpx.URL, fail: Fail) -> list[IPAddress]:
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise fail(f"its host {url.host} could not be resolved ({exc})") from None
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
    if not addresses:
        raise fail(f"its host {url.host} has no IP address")
    return addresses


async def _send(client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress], fail: Fail) -> httpx.Response:
    """GET `url` from one of its checked addresses: the URL names the IP, Host and TLS SNI (and so certificate
    checking) name the host, so nothing resolves the name a second time."""
    headers = {**_HEADERS, "Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    error: Exception | None = None
    for ip in addresses:
        request = client.build_request("GET", url.copy_with(host=str(ip)), headers=headers, extensions=extensions)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:  # try the next address, as a browser would
            error = exc
        except httpx.TimeoutException:
            raise fail("the connection timed out") from None
        except httpx.HTTPError as exc:
            raise fail(f"the request failed ({type(exc).__name__}: {exc})") from None
    raise fail(f"could not connect to {url.host} ({error})")


async def _read(response: httpx.Response, policy: FetchPolicy, where: str, fail: Fail) -> tuple[str, bytes]:
    if not 200 <= response.status_code < 300:
        raise fail(f"it answered HTTP {response.status_code}")
    ctype = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # Refuse what says it is not an image before reading it; the bytes are sniffed either way.
    if ctype and not ctype.startswith("image/") and ctype not in ("application/octet-stream", "binary/octet-stream"):
        raise fail(f"it answered Content-Type {ctype}, not an image")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise fail(f"it answered a {encoding}-encoded body; images are fetched uncompressed")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > policy.max_bytes:
        raise _too_large(length, policy.max_bytes, where, "the image URL")
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > policy.max_bytes:
                raise _too_large(f"more than {policy.max_bytes}", policy.max_bytes, where, "the image URL")
    except httpx.TimeoutException:
        raise fail("reading the body timed out") from None
    except httpx.HTTPError as exc:
        raise fail(f"reading the body failed ({type(exc).__name__}: {exc})") from None
    data = bytes(body)
    return _image(data, where, "the image URL"), data
