"""Who may talk to the listening server: the serve options, and the Host / Origin checks made on every request.

* **Host** (against DNS rebinding: a page on ``evil.example`` whose name is re-pointed at this server makes the
  browser send ``Host: evil.example``). Accepted: ``localhost`` (and ``*.localhost``), any IP address literal
  (a rebinding attack always uses a name it controls; a literal IP means the browser was pointed at this
  machine itself), the host of ``public_url`` and the names in ``allowed_hosts`` (``*.example.org`` matches
  subdomains; ``*`` turns the check off). A request without a Host header is refused too.
* **Origin** (against cross-site request forgery: any page a participant visits could otherwise POST ratings
  in their name). A request that may change state (every method but GET/HEAD/OPTIONS/TRACE) must say
  ``Content-Type: application/json`` (a cross-site page cannot send that without a CORS preflight, which this
  server never grants), must not be marked ``Sec-Fetch-Site: cross-site`` / ``same-site``, and when it carries
  an ``Origin`` (browsers always send one on POST) that origin must be the public URL's or name the very host
  and port the request was sent to, and that host must pass the Host check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from vitmusic.errors import ConfigError

DEFAULT_PORTS = {"http": 80, "https": 443}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110 safe methods: change nothing


@dataclass(frozen=True)
class ServeOptions:
    """How ``vitmusic listen`` serves a test (the CLI flags of the same names).

    Args:
        host: address to bind (``127.0.0.1``: this machine only; ``0.0.0.0`` / ``::``: every interface).
        port: TCP port (0 picks a free one).
        public_url: the address participants open when a reverse proxy is in front
            (``https://listen.example.org``); its host and origin are allowed.
        allowed_hosts: more host names participants may use (``*.example.org`` for subdomains, ``*`` for any).
        max_body_bytes: largest request body accepted (413 beyond).
        max_connections: connections served at once; a request beyond gets 503.
        timeout_s: a request (headers and body) must arrive within this time, and a response that stops
            draining for this long is dropped.
        forwarded_allow_ips: proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed (for the
            client address in the access log); comma-separated IPs / networks, ``*`` for any.
        verbose: log every request (one line each).

    Raises:
        ConfigError: an out-of-range value, or a public URL that is not ``http(s)://host[:port]``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024
    max_connections: int = 512
    timeout_s: float = 10.0
    forwarded_allow_ips: str = "127.0.0.1"
    verbose: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"--max-body must be at least 1024 bytes, got {self.max_body_bytes}")
        if self.max_connections < 1:
            raise ConfigError(f"--max-connections must be >= 1, got {self.max_connections}")
        if not 0 < self.timeout_s <= 3600:
            raise ConfigError(f"--timeout must be in (0, 3600] seconds, got {self.timeout_s}")
        for name in self.allowed_hosts:
            pattern = name.removeprefix("*.")
            if name != "*" and (not pattern or any(c in pattern for c in "/:@*[] ") or pattern != pattern.strip(".")):
                raise ConfigError(f"--allowed-host takes a host name (or *.domain, or *), got {name!r}")
        if self.public_url is not None:
            public_origin(self.public_url)

    @property
    def origin(self) -> str | None:
        """The public URL's origin (``scheme://host[:port]``), None without one."""
        return None if self.public_url is None else public_origin(self.public_url)

    def host_allowed(self, name: str) -> bool:
        """Whether a host name (lower case, no port) may be served; see the module docstring."""
        if not name:
            return False
        if name == "localhost" or name.endswith(".localhost") or _is_ip(name):
            return True
        if self.public_url is not None and name == split_host(urlsplit(self.public_url).netloc)[0]:
            return True
        for pattern in self.allowed_hosts:
            pattern = pattern.lower()
            if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
                return True
        return False

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        """Whether a request's ``Origin`` is this server: the public origin, or the host it was sent to."""
        if self.origin is not None and origin.lower() == self.origin:
            return True
        try:
            parts = urlsplit(origin)
            origin_port = parts.port
        except ValueError:
            return False
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path or parts.query:
            return False
        name, port = split_host(host_header)
        default = DEFAULT_PORTS[parts.scheme]
        return (parts.hostname == name and (origin_port or default) == (port or default)
                and self.host_allowed(name))

    def refusal(self, method: str, headers: Mapping[str, str]) -> tuple[HTTPStatus, str] | None:
        """Why a request must be refused before routing (status, message), or None. ``headers``: lower-case
        names (a Starlette ``Headers``)."""
        host = headers.get("host")
        if host is None or not self.host_allowed(split_host(host)[0]):
            return HTTPStatus.BAD_REQUEST, "this server does not answer for that host name"
        if method in SAFE_METHODS:
            return None
        if headers.get("sec-fetch-site", "same-origin").lower() not in ("same-origin", "none"):
            return HTTPStatus.FORBIDDEN, "cross-site request refused"
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, host):
            return HTTPStatus.FORBIDDEN, "cross-origin request refused"
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json"
        return None


def split_host(value: str) -> tuple[str, int | None]:
    """A Host header (or URL netloc) as (lower-case name without a trailing dot, port or None);
    ``("", None)`` when malformed. IPv6 literals lose their brackets: ``[::1]:80`` -> ``("::1", 80)``."""
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", None
        port_text = rest[1:]
    else:
        name, _, port_text = value.partition(":")
    if port_text:
        if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
            return "", None
        port = int(port_text)
    name = name.rstrip(".")
    if value.startswith("[") and not _is_ip(name):
        return "", None
    return name, port


def public_origin(url: str) -> str:
    """``http(s)://host[:port]`` of a public URL, normalised (lower case, default port dropped).

    Raises:
        ConfigError: not an http(s) URL of a site root.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"--public-url {url!r}: not a URL ({e})") from e
    if (parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query
            or parts.fragment or parts.username or parts.password):
        raise ConfigError(f"--public-url must look like https://host[:port] (the site root, no path), got {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    suffix = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{suffix}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
