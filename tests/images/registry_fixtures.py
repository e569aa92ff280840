"""Real registries for the registry tests: Debian's docker-registry, started per test session.

- `registry`: plain HTTP on a free loopback port, no auth.
- `tls_registry`: HTTPS with a certificate from a CA the fixture makes with openssl, and
  htpasswd (bcrypt, `htpasswd -B`) basic auth.
- `token_registry`: docker-registry configured for *token* auth for real: it trusts a signing
  certificate the fixture makes, and a small token server (a thread here) issues RS256 JWTs
  signed with `openssl dgst` after checking basic credentials — the same dance as Docker Hub's.
Each is one process per xdist worker, under its own temp dir, stopped at the end.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER, PASSWORD = "corral", "s3cret-pass"
REGISTRY_BIN = "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT"
    root: Path  # its storage directory
    cert_dir: Path | None = None  # holds ca.crt, for --cert-dir
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, port: int, extra: str = "") -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    cfg = root / "config.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log: {level: error, accesslog: {disabled: true}}\n"
        f"storage:\n  filesystem: {{rootdirectory: {root / 'data'}}}\n  delete: {{enabled: true}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: corral-test\n" + extra
    )
    return cfg


@contextlib.contextmanager
def serve_registry(root: Path, extra_http: str = "", auth: str = "", *, tls: bool = False) -> Iterator[str]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.fail("docker-registry is not installed: run scripts/setup")
    for _ in range(5):
        port = free_port()
        cfg = _config(root, port, extra_http + auth)
        log = open(root / "registry.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log, stderr=log)
        if _wait_up(port, proc, tls=tls):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _wait_up(port: int, proc: subprocess.Popen[bytes], *, tls: bool) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url, timeout=1, context=ctx if tls else None)
            return True
        except urllib.error.HTTPError:
            return True  # 401: up, wants auth
        except OSError:
            time.sleep(0.05)
    return False


def make_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA (ca.crt) and a server certificate for localhost/127.0.0.1 signed by it."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=corral-test-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    with serve_registry(root) as host:
        yield Registry(host, root / "data")


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("tls-registry")
    ca, cert, key = make_ca_and_cert(root / "pki")
    cert_dir = root / "certs"
    cert_dir.mkdir()
    shutil.copy(ca, cert_dir / "ca.crt")
    if not shutil.which("htpasswd"):
        pytest.fail("htpasswd is not installed (apache2-utils): run scripts/setup")
    subprocess.run(["htpasswd", "-Bbc", str(root / "htpasswd"), USER, PASSWORD],
                   check=True, capture_output=True)
    tls = f"  tls: {{certificate: {cert}, key: {key}}}\n"
    auth = f"auth:\n  htpasswd: {{realm: corral-test, path: {root / 'htpasswd'}}}\n"
    with serve_registry(root, tls, auth, tls=True) as host:
        yield Registry(host, root / "data", cert_dir)


# -- token auth ------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenServer(http.server.ThreadingHTTPServer):
    service = "corral-test-registry"
    issuer = "corral-test-issuer"

    def __init__(self, pki: Path, requests: list[dict[str, list[str]]]) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.pki = pki
        self.requests = requests
        der = subprocess.run(["openssl", "x509", "-in", str(pki / "token.crt"), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()

    def sign(self, claims: dict[str, object]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.pki / "token.key")],
                             input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(sig)}"


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    server: _TokenServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.server.requests.append(query)
        authz = self.headers.get("Authorization", "")
        user = None
        if authz.startswith("Basic "):
            name, _, pw = base64.b64decode(authz[6:]).decode().partition(":")
            if (name, pw) != (USER, PASSWORD):
                self.send_response(401)
                self.end_headers()
                return
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            # Anonymous users may pull; pushing needs a login.
            allowed = [a for a in actions.split(",") if user or a == "pull"]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        token = self.server.sign({"iss": self.server.issuer, "sub": user or "", "aud": self.server.service,
                                  "exp": now + 300, "nbf": now - 10, "iat": now,
                                  "jti": os.urandom(8).hex(), "access": access})
        body = json.dumps({"token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("token-registry")
    pki = root / "pki"
    pki.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "token.key",
                    "-out", "token.crt", "-days", "2", "-subj", "/CN=corral-test-token-signer"],
                   cwd=pki, check=True, capture_output=True)
    requests: list[dict[str, list[str]]] = []
    server = _TokenServer(pki, requests)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    auth = (f"auth:\n  token: {{realm: '{realm}', service: {server.service}, "
            f"issuer: {server.issuer}, rootcertbundle: {pki / 'token.crt'}}}\n")
    try:
        with serve_registry(root, "", auth) as host:
            yield Registry(host, root / "data", token_requests=requests)
    finally:
        server.shutdown()
        server.server_close()


class Proxy:
    """A TCP proxy to a registry: drops `cuts` connections after `after` response bytes (request
    bytes with `cut_requests`, to break uploads), sleeps `delay` seconds per 64 KiB of response
    forwarded (to catch a pull in the middle), answers 503 to the first `busy` connections."""

    def __init__(self, upstream: str, *, after: int = 0, cuts: int = 0, delay: float = 0.0,
                 cut_requests: bool = False, busy: int = 0) -> None:
        self.upstream = upstream.rsplit(":", 1)
        self.after, self.cuts, self.delay = after, cuts, delay
        self.cut_requests = cut_requests
        self.busy = busy  # answer the first `busy` connections "503", as an overloaded LB does
        self.forwarded = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.sock.accept()
            except OSError:
                return
            if self.busy > 0:
                self.busy -= 1
                down.recv(65536)
                down.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                down.close()
                continue
            up = socket.create_connection((self.upstream[0], int(self.upstream[1])))
            threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, response: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if response != self.cut_requests and sent + len(data) > self.after:
                    with self.lock:
                        cut = self.cuts > 0
                        self.cuts -= cut
                    if cut:
                        dst.sendall(data[: max(0, self.after - sent)])
                        break
                dst.sendall(data)
                sent += len(data)
                if response:
                    self.forwarded += len(data)
                    time.sleep(self.delay)
        except OSError:
            pass
        for s in (src, dst):  # shutdown wakes the other pump's recv; close alone does not
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.sock.close()


# -- images the real tools push ------------------------------------------------------------------

def _layer_tar(rootfs: Path, marker: str) -> bytes:
    """The busybox tree plus /etc/corral-marker holding `marker`, as a tar."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(rootfs, arcname=".")
        info = tarfile.TarInfo("etc/corral-marker")
        info.size, info.mode = len(marker.encode()), 0o644
        tar.addfile(info, io.BytesIO(marker.encode()))
    return buf.getvalue()


def make_oci_layout(dest: Path, rootfs: Path, arches: tuple[str, ...] = ("amd64",), *,
                    salt: str = "") -> Path:
    """An OCI layout (gzip layers) whose index has one image per arch; each image's
    /etc/corral-marker says `marker-<arch><salt>` (a salt makes blobs no other test shares).
    skopeo copies it to a registry."""
    import gzip
    import hashlib

    blobs = dest / "blobs/sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    entries = []
    for arch in arches:
        tar = _layer_tar(rootfs, f"marker-{arch}{salt}")
        config = json.dumps({"architecture": arch, "os": "linux",
                             "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
                             "rootfs": {"type": "layers",
                                        "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        **blob(gzip.compress(tar, 1, mtime=0))}]}).encode()
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": entries}
    if len(arches) == 1:  # a single image: the layout's index names it directly
        entries[0]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    else:
        nested = json.dumps(index).encode()
        index = {"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", **blob(nested),
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dest / "index.json").write_text(json.dumps(index))
    return dest


class Podman:
    """podman with a private store, runc, cgroupfs and this host's rlimits (HOST-NOTES.md)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        conf = root / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        import tempfile

        self.runroot = Path(tempfile.mkdtemp(prefix="corral-pod-"))  # podman wants <= 50 chars
        self.base = ["podman", "--root", str(root / "root"), "--runroot", str(self.runroot),
                     "--storage-driver", "vfs", "--runtime", "runc"]

    def __call__(self, *args: str, input: bytes | None = None) -> str:
        done = subprocess.run([*self.base, *args], env=self.env, input=input, capture_output=True, timeout=180)
        if done.returncode:
            raise AssertionError(f"podman {' '.join(args)}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def reset(self) -> None:
        subprocess.run([*self.base, "system", "reset", "-f"], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.runroot, ignore_errors=True)


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, timeout=180)
    if done.returncode:
        raise AssertionError(f"skopeo {' '.join(args)}: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


def push_raw(registry: Registry, repo: str, config: bytes, layer: bytes, layer_type: str) -> str:
    """An OCI image put together by hand (any media types) with corral's client; its reference."""
    import hashlib
    import io

    from corral.images.registry.client import RegistryClient
    from corral.images.registry.hosts import host_config

    client = RegistryClient(host_config(registry.host))
    digests = []
    for blob in (config, layer):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        client.upload_blob(repo, digest, len(blob), lambda b=blob: io.BytesIO(b))  # type: ignore[misc]
        digests.append(digest)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0],
                   "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": digests[1], "size": len(layer)}]}).encode()
    client.put_manifest(repo, "latest", manifest, "application/vnd.oci.image.manifest.v1+json")
    return f"{registry.host}/{repo}:latest"
