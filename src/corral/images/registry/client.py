"""The OCI distribution protocol (and Docker's registry API v2), over the standard library.

Why `http.client`: a blob GET through it streams at socket speed (`readinto` a reused buffer,
no per-chunk objects), it needs no dependency, and the blocks it sends are as big as we ask
(`blocksize`). Measured on a 200 MB blob from a loopback docker-registry: see bench/registry.py.
One client serves one registry; its connection pool is shared by the threads of a parallel
pull or push (`http.client` connections are not thread-safe, so each request borrows one).

    RegistryClient                 one registry: ping, auth, the pool
     ├── get_manifest / head_manifest / put_manifest
     ├── open_blob  -> BlobStream  verified (size + digest at EOF), resumes a dropped
     │                             connection with a Range request
     ├── blob_exists (HEAD), mount_blob (?mount=&from=)
     └── upload_blob               monolithic PUT, or chunked PATCHes with Content-Range

Errors: a 404 manifest is `NotFound` with docker's message; a registry's JSON error body becomes
`RegistryError("<code>: <message>")`, as docker prints it; a digest or size mismatch is
`DigestMismatch`; a connection that keeps dropping is `RegistryError` after the retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeVar

from corral.errors import CorralError, InvalidArgument, NotFound
from corral.images import manifest as mf
from corral.images.registry.auth import Authenticator, Credentials, Unauthorized
from corral.images.registry.hosts import HostConfig, host_config

MANIFEST_MEDIA_TYPES = (mf.OCI_MANIFEST, mf.OCI_INDEX, mf.DOCKER_MANIFEST, mf.DOCKER_LIST)
_BUFFER = 1 << 20  # bytes per socket read/write: big enough that Python's overhead vanishes
_TIMEOUT_S = 60.0
_RETRIES = 5
_BACKOFF_S = (0.1, 0.3, 1.0, 2.0, 4.0)
_T = TypeVar("_T")
# What a dropped or reset connection raises somewhere in http.client / ssl / socket.
RETRYABLE = (
    ConnectionError,
    http.client.IncompleteRead,
    http.client.BadStatusLine,
    http.client.ImproperConnectionState,
    TimeoutError,
    socket.timeout,
    ssl.SSLEOFError,
)



class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


Body = bytes | Readable | None  # a request body: small bytes, or a stream sent once
Progress = Callable[[int], None]  # called with the number of bytes just moved


class Busy(ConnectionError):
    """429/502/503/504 to a GET or HEAD: the registry (or its load balancer) asks us to retry."""


_BUSY_STATUSES = (429, 502, 503, 504)


class RegistryError(CorralError):
    """The registry answered with an error, or could not be reached."""


class DigestMismatch(InvalidArgument):
    """Content whose size or digest is not the one it was asked for."""


@dataclass(frozen=True)
class Manifest:
    data: bytes
    media_type: str
    digest: str


def new_hash(digest: str) -> hashlib._Hash:
    """A hasher for `digest`'s algorithm (sha256, sha512); anything else is refused."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or algorithm not in ("sha256", "sha512") or not encoded:
        raise InvalidArgument(f"unsupported digest {digest!r}")
    return hashlib.new(algorithm)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def error_text(body: bytes, status: int) -> str:
    """A registry's error body as docker prints it: `manifest unknown: manifest unknown`."""
    try:
        errors = json.loads(body)["errors"]
        parts = [f"{str(e['code']).lower().replace('_', ' ')}: {e.get('message', '')}" for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, KeyError, TypeError):
        pass
    return f"HTTP {status} {http.client.responses.get(status, '')}".strip()


class RegistryClient:
    """One registry (`host_config`), optionally with credentials; safe to share between threads."""

    def __init__(
        self,
        host: HostConfig,
        *,
        credentials: Credentials | None = None,
        timeout: float = _TIMEOUT_S,
        retries: int = _RETRIES,
    ) -> None:
        self.host = host
        self._timeout = timeout
        self._retries = retries
        self._auth = Authenticator(host.name, credentials, self._fetch_token)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._scheme: str | None = None

    # -- manifests -------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest (or index) `reference` (a tag or a digest), digest-verified."""
        path = f"/v2/{repository}/manifests/{reference}"
        status, headers, body = self._fetch(
            "GET", path, scopes=[_scope(repository, "pull")], headers=_accept()
        )
        if status == 404:
            raise NotFound(self._manifest_unknown(repository, reference, body, status))
        self._check(status, body, f"manifest {repository}:{reference}", ok=(200,))
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        if reference.count(":") == 1 and reference.startswith(("sha256:", "sha512:")):
            digest = reference
            verify_bytes(body, digest, f"manifest {repository}@{digest}")
        else:
            digest = digest_of(body)
            claimed = headers.get("Docker-Content-Digest")
            if claimed and claimed.startswith("sha256:") and claimed != digest:
                raise DigestMismatch(
                    f"manifest {repository}:{reference}: registry says {claimed}, content is {digest}"
                )
        return Manifest(body, media_type, digest)  # "" if unsaid: copy() sniffs the JSON

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest of manifest `reference`, or None if the registry has no such manifest."""
        path = f"/v2/{repository}/manifests/{reference}"
        status, headers, body = self._fetch(
            "HEAD", path, scopes=[_scope(repository, "pull")], headers=_accept()
        )
        if status == 404:
            return None
        self._check(status, body, f"manifest {repository}:{reference}", ok=(200,))
        return headers.get("Docker-Content-Digest")

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest under `reference` (tag or digest); returns its digest."""
        path = f"/v2/{repository}/manifests/{reference}"
        status, _, body = self._fetch(
            "PUT",
            path,
            scopes=[_scope(repository, "pull,push")],
            headers={"Content-Type": media_type},
            body=data,
        )
        self._check(status, body, f"pushing manifest {repository}:{reference}", ok=(201, 200))
        return digest_of(data)

    # -- blobs -------------------------------------------------------------------------------

    def open_blob(self, repository: str, digest: str, size: int | None = None) -> BlobStream:
        """A reader of blob `digest` that fails at EOF unless size and digest match."""
        new_hash(digest)
        return BlobStream(self, repository, digest, size)

    def blob_exists(self, repository: str, digest: str) -> bool:
        status, _, body = self._fetch(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=[_scope(repository, "pull")]
        )
        if status == 404:
            return False
        self._check(status, body, f"checking blob {digest}", ok=(200,))
        return True

    def mount_blob(self, repository: str, digest: str, source_repository: str) -> bool:
        """Ask the registry to link `digest` from another repository (no bytes sent)."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repository})
        scopes = [_scope(repository, "pull,push"), _scope(source_repository, "pull")]
        status, headers, body = self._fetch(
            "POST", f"/v2/{repository}/blobs/uploads/?{query}", scopes=scopes, body=b""
        )
        if status == 201:
            return True
        if status == 202:  # mount refused, an upload session opened instead: close it
            self._cancel_upload(headers.get("Location"), repository)
            return False
        self._check(status, body, f"mounting blob {digest}", ok=())
        return False

    def upload_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        open_body: Callable[[], BinaryIO],
        *,
        chunk_size: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Upload a blob whose digest is known: one PUT, or PATCHes of `chunk_size` bytes.

        A dropped connection restarts the upload in a new session (registries discard
        unfinished ones); the registry verifies the digest before it links the blob.
        """
        scopes = [_scope(repository, "pull,push")]
        for attempt in range(self._retries + 1):
            try:
                self._upload_once(repository, digest, size, open_body, chunk_size, progress, scopes)
                return
            except RETRYABLE as e:
                if attempt == self._retries:
                    raise RegistryError(f"uploading {digest} to {self.host.name}: {e}") from e
                time.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])

    def _upload_once(
        self,
        repository: str,
        digest: str,
        size: int,
        open_body: Callable[[], BinaryIO],
        chunk_size: int | None,
        progress: Progress | None,
        scopes: list[str],
    ) -> None:
        status, headers, body = self._fetch(
            "POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes, body=b"", retry=False
        )
        self._check(status, body, f"starting upload of {digest}", ok=(202,))
        location = _location(headers)
        with open_body() as f:
            if chunk_size:
                offset = 0
                while offset < size:
                    n = min(chunk_size, size - offset)
                    piece = _CountingReader(f, n, progress)
                    status, headers, body = self._fetch(
                        "PATCH",
                        location,
                        scopes=scopes,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{offset + n - 1}",
                            "Content-Length": str(n),
                        },
                        body=piece,
                        retry=False,
                    )
                    self._check(status, body, f"uploading {digest}", ok=(202,))
                    location = _location(headers)
                    offset += n
                final = {"Content-Length": "0"}
                put_body: bytes | Readable = b""
            else:
                final = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
                put_body = _CountingReader(f, size, progress)
            sep = "&" if "?" in location else "?"
            url = f"{location}{sep}{urllib.parse.urlencode({'digest': digest})}"
            status, _, body = self._fetch(
                "PUT", url, scopes=scopes, headers=final, body=put_body, retry=False
            )
        if status == 400 and b"DIGEST_INVALID" in body:
            raise DigestMismatch(f"blob {digest}: the registry computed another digest")
        self._check(status, body, f"uploading {digest}", ok=(201,))

    def _cancel_upload(self, location: str | None, repository: str) -> None:
        if location:
            with contextlib.suppress(RegistryError, *RETRYABLE):
                self._fetch("DELETE", location, scopes=[_scope(repository, "pull,push")])

    # -- HTTP --------------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: pick the scheme and learn the auth challenge (401 is a fine answer)."""
        status, _, body = self._fetch("GET", "/v2/", scopes=[])
        self._check(status, body, f"{self.host.name}", ok=(200,))

    def open(
        self, method: str, url: str, *, scopes: list[str], headers: Mapping[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, Callable[[], None]]:
        """Send a request whose answer the caller streams; returns it and a `release` to call."""
        return self._retrying(lambda: self._send(method, url, scopes, dict(headers or {}), None))

    def _fetch(
        self,
        method: str,
        url: str,
        *,
        scopes: list[str],
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        retry: bool = True,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request whose answer is small: status, headers, body (read whole)."""

        def once() -> tuple[int, http.client.HTTPMessage, bytes]:
            resp, release = self._send(method, url, scopes, dict(headers or {}), body)
            data = resp.read()
            release()
            return resp.status, resp.headers, data

        if not retry or hasattr(body, "read"):  # a stream cannot be sent twice
            return once()
        return self._retrying(once)

    def _retrying(self, once: Callable[[], _T]) -> _T:
        """`once()`, tried again after a backoff while the network fails; the last failure is
        reported as the registry being unreachable."""
        for attempt in range(self._retries + 1):
            try:
                return once()
            except RETRYABLE as e:
                if attempt == self._retries:
                    raise self._unreachable(e) from e
                time.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
        raise AssertionError("unreachable")

    def _send(
        self,
        method: str,
        url: str,
        scopes: list[str],
        headers: dict[str, str],
        body: Body,
    ) -> tuple[http.client.HTTPResponse, Callable[[], None]]:
        """Send once (plus one retry after an auth challenge); follow redirects."""
        for auth_round in range(2):
            auth = self._auth.header(scopes)
            sent = dict(headers)
            if auth:
                sent["Authorization"] = auth
            resp, release = self._round_trip(method, url, sent, body)
            if resp.status != 401 or auth_round == 1:
                break
            resp.read()
            release()
            challenge = resp.headers.get("WWW-Authenticate", "")
            if hasattr(body, "read") or not self._auth.challenged(challenge, scopes):
                break
        if resp.status in _BUSY_STATUSES and method in ("GET", "HEAD"):
            resp.read()
            release()
            raise Busy(f"HTTP {resp.status} {http.client.responses.get(resp.status, '')}".strip())
        if resp.status == 401:
            body = resp.read()
            text = error_text(body, 401) if body else "unauthorized: authentication required"
            release()
            raise Unauthorized(f"{self.host.name}: {text} (log in with `corral login {self.host.name}`)")
        return resp, release

    def _round_trip(
        self, method: str, url: str, headers: dict[str, str], body: Body
    ) -> tuple[http.client.HTTPResponse, Callable[[], None]]:
        for _ in range(5):  # redirects
            parsed = urllib.parse.urlsplit(url)
            target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
            own = not parsed.netloc or parsed.netloc == self.host.api_host
            conn = self._borrow() if own else _one_off_connection(parsed, self._timeout)
            try:
                conn.request(method, target or "/", body=body, headers=headers)
                resp = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            if resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                resp.read()
                self._give_back(conn, resp, own)
                url = urllib.parse.urljoin(self._base() + target if own else url, resp.headers["Location"])
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
                continue
            return resp, _releaser(self, conn, resp, own)
        raise RegistryError(f"{self.host.name}: too many redirects for {url}")

    def _base(self) -> str:
        return f"{self._scheme_for_host()}://{self.host.api_host}"

    def _borrow(self) -> http.client.HTTPConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connection(self._scheme_for_host())

    def _give_back(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, own: bool) -> None:
        if own and not resp.will_close and resp.isclosed():
            with self._lock:
                self._idle.append(conn)
        else:
            conn.close()

    def _connection(self, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                self.host.api_host,
                timeout=self._timeout,
                context=self.host.ssl_context,
                blocksize=_BUFFER,
            )
        return http.client.HTTPConnection(self.host.api_host, timeout=self._timeout, blocksize=_BUFFER)

    def _scheme_for_host(self) -> str:
        """https, or — for an insecure registry that does not speak TLS — http (docker's rule)."""
        with self._lock:
            if self._scheme is not None:
                return self._scheme
        scheme = "https"
        conn = self._connection("https")
        try:
            conn.connect()
        except ssl.SSLError as e:
            if not self.host.insecure:
                if isinstance(e, ssl.SSLCertVerificationError):
                    why = f"certificate verify failed: {e.verify_message}"
                elif e.reason == "WRONG_VERSION_NUMBER":
                    why = "server gave HTTP response to HTTPS client"
                else:
                    why = e.reason or str(e)
                raise RegistryError(
                    f"{self.host.name}: TLS handshake failed: {why} "
                    "(use --tls-verify=false for a registry without a trusted certificate)"
                ) from e
            scheme = "http"
        except OSError as e:
            raise self._unreachable(e) from e
        finally:
            conn.close()
        with self._lock:
            self._scheme = scheme
        return scheme

    def _unreachable(self, e: BaseException) -> RegistryError:
        if isinstance(e, Busy):
            return RegistryError(f"{self.host.name}: {e}, still after {self._retries} retries")
        return RegistryError(f"{self.host.name}: {type(e).__name__}: {e or 'connection dropped'}")

    def _check(self, status: int, body: bytes, what: str, *, ok: tuple[int, ...]) -> None:
        if status not in ok:
            raise RegistryError(f"{what}: {error_text(body, status)}")

    def _manifest_unknown(self, repository: str, reference: str, body: bytes, status: int) -> str:
        sep = "@" if reference.startswith("sha") and ":" in reference else ":"
        return f"manifest for {self.host.name}/{repository}{sep}{reference} not found: {error_text(body, status)}"

    def _fetch_token(self, url: str, basic: str | None) -> tuple[int, bytes]:
        headers = {"Authorization": basic} if basic else {}
        parsed = urllib.parse.urlsplit(url)
        conn = _one_off_connection(parsed, self._timeout)
        try:
            conn.request("GET", parsed.path + (f"?{parsed.query}" if parsed.query else ""), headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise RegistryError(f"token server {parsed.netloc}: {e}") from e
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class BlobStream(io.RawIOBase):
    """Blob bytes as they arrive; verified at EOF; a dropped connection resumes where it was.

    The digest check is the last read: a consumer that reads to EOF (an extractor, a content
    store ingest) gets `DigestMismatch` instead of EOF when the bytes are wrong, and discards
    what it wrote.
    """

    def __init__(self, client: RegistryClient, repository: str, digest: str, size: int | None) -> None:
        super().__init__()
        self._client = client
        self._repository = repository
        self.digest = digest
        self._size = size
        self._hash = new_hash(digest)
        self._offset = 0
        self._failures = 0
        self._resp: http.client.HTTPResponse | None = None
        self._release: Callable[[], None] = lambda: None
        self._done = False
        self._connect()

    @property
    def size(self) -> int | None:
        return self._size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._done:
            return 0
        view = memoryview(buffer).cast("B")
        if self._size is not None:
            view = view[: max(0, min(len(view), self._size - self._offset + 1))]
        while True:
            try:
                assert self._resp is not None
                n = self._resp.readinto(view) if len(view) else 0
                # http.client's readinto returns 0, not an error, when the line drops before
                # Content-Length; a 0 with nothing left to read is a short (truncated) blob.
                if n == 0 and self._resp.length:
                    raise http.client.IncompleteRead(b"", self._resp.length)
                break
            except RETRYABLE as e:
                self._failures += 1
                if self._failures > self._client._retries:
                    raise RegistryError(
                        f"reading blob {self.digest} from {self._client.host.name}: "
                        f"connection dropped {self._failures} times, last at byte {self._offset}: {e!r}"
                    ) from e
                time.sleep(_BACKOFF_S[min(self._failures - 1, len(_BACKOFF_S) - 1)])
                self._connect()
        if n == 0:
            self._finish()
            return 0
        self._offset += n
        if self._size is not None and self._offset > self._size:
            raise DigestMismatch(f"blob {self.digest}: more than the expected {self._size} bytes")
        self._hash.update(view[:n])
        return n

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        super().close()

    def _finish(self) -> None:
        self._done = True
        self._release()
        self._resp = None
        if self._size is not None and self._offset != self._size:
            raise DigestMismatch(
                f"blob {self.digest}: got {self._offset} bytes, expected {self._size} (truncated)"
            )
        actual = f"{self.digest.split(':')[0]}:{self._hash.hexdigest()}"
        if actual != self.digest:
            raise DigestMismatch(f"blob {self.digest}: digest mismatch, content is {actual}")

    def _connect(self) -> None:
        if self._resp is not None:
            self._resp.close()
        headers = {"Range": f"bytes={self._offset}-"} if self._offset else {}
        scopes = [_scope(self._repository, "pull")]
        resp, release = self._client.open(
            "GET", f"/v2/{self._repository}/blobs/{self.digest}", scopes=scopes, headers=headers
        )
        if resp.status == 404:
            resp.read()
            release()
            raise NotFound(f"blob {self.digest} not found in {self._client.host.name}/{self._repository}")
        if resp.status == 416 and self._offset:  # the resume asked past what the registry has
            resp.read()
            release()
            raise DigestMismatch(f"blob {self.digest}: got {self._offset} bytes, expected "
                                 f"{self._size} (truncated)")
        if resp.status not in (200, 206):
            text = error_text(resp.read(), resp.status)
            release()
            raise RegistryError(f"fetching blob {self.digest}: {text}")
        if resp.status == 200 and self._offset:  # no Range support: skip what we already have
            _discard(resp, self._offset)
        if self._size is None and resp.status == 200 and resp.length is not None:
            self._size = resp.length
        self._resp, self._release = resp, release


class _CountingReader:
    """At most `limit` bytes of `f`, reporting progress as http.client reads them."""

    def __init__(self, f: BinaryIO, limit: int, progress: Progress | None) -> None:
        self._f = f
        self._left = limit
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        if self._progress and data:
            self._progress(len(data))
        return data


def verify_bytes(data: bytes, digest: str, what: str) -> None:
    h = new_hash(digest)
    h.update(data)
    actual = f"{digest.split(':')[0]}:{h.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(f"{what}: digest mismatch, content is {actual}")


def _discard(resp: http.client.HTTPResponse, n: int) -> None:
    buf = bytearray(min(n, _BUFFER))
    while n:
        got = resp.readinto(memoryview(buf)[: min(n, len(buf))])
        if not got:
            raise http.client.IncompleteRead(b"", n)
        n -= got


def _releaser(
    client: RegistryClient, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, own: bool
) -> Callable[[], None]:
    return lambda: client._give_back(conn, resp, own)


def _one_off_connection(parsed: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    if parsed.scheme == "https":
        ctx = host_config(parsed.netloc).ssl_context
        return http.client.HTTPSConnection(parsed.netloc, timeout=timeout, context=ctx, blocksize=_BUFFER)
    return http.client.HTTPConnection(parsed.netloc, timeout=timeout, blocksize=_BUFFER)


def _scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


def _accept() -> dict[str, str]:
    return {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}


def _location(headers: http.client.HTTPMessage) -> str:
    location = headers.get("Location")
    if not location:
        raise RegistryError("upload answered without a Location")
    return location
