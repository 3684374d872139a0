"""Integration-test harness: starts the real imlog binary on loopback ports and talks HTTP to it.

Only the Python standard library is used, so the tests run on a bare Debian 12 with python3.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

IMLOG_BIN = os.environ.get("IMLOG_BIN", "build/server/imlog")
READY_TIMEOUT = 60.0  # a deadline for an event, not a sleep


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (closed again, so reused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One imlog process with its own data directory and ports."""

    host = "127.0.0.1"  # where its ports are reached (a cluster test in namespaces changes it)

    def __init__(self, data_dir=None, secret=None, args=(), env=None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="imlog-test-")
        self.secret = secret
        self.args = list(args)
        self.env = env
        self.proc = None
        self.api_port = None
        self.ws_port = None
        self.stdout_lines = []
        self.log_path = os.path.join(self.data_dir, "server.log")
        self._conn = None

    def start(self):
        self.api_port = free_port()
        self.ws_port = free_port()
        ws_port, raft_port = self.ws_port, free_port()
        cmd = [IMLOG_BIN, "serve", "--data-dir", self.data_dir,
               "--api-addr", f"127.0.0.1:{self.api_port}",
               "--ws-addr", f"127.0.0.1:{ws_port}",
               "--raft-addr", f"127.0.0.1:{raft_port}",
               "--raft-segment-kb", "1024"] + self.args
        if self.secret is not None:
            cmd += ["--secret", self.secret]
        env = dict(os.environ)
        env.pop("IMLOG_SECRET", None)
        if self.env:
            env.update(self.env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("imlog did not become ready; log:\n" + self.log_tail())
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("imlog exited before ready (rc=%s); log:\n%s"
                                   % (self.proc.wait(), self.log_tail()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                self.stdout_lines.append(text)
                if text.startswith("imlog: ready"):
                    return

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stored_secret(self):
        with open(os.path.join(self.data_dir, "secret")) as f:
            return f.read().strip()

    def kill9(self):
        self._close_conn()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        """SIGTERM and wait; returns the exit code."""
        self._close_conn()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.kill9()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- HTTP

    def _close_conn(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def raw(self, method, path, body=b"", headers=None):
        """One request on a keep-alive connection; returns (status, headers, body bytes)."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.api_port, timeout=60)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self._close_conn()
                return resp.status, dict(resp.getheaders()), data
            except (ConnectionError, http.client.HTTPException):
                self._close_conn()
                if attempt:
                    raise

    def post(self, path, body, token=None, op_id="op-test", raw_body=None, headers=None):
        """POST a JSON body; returns the decoded envelope."""
        h = {"Content-Type": "application/json"}
        if op_id is not None:
            h["operationID"] = op_id
        if token is not None:
            h["token"] = token
        if headers:
            h.update(headers)
        data = raw_body if raw_body is not None else json.dumps(body).encode()
        status, _, out = self.raw("POST", path, data, h)
        if status != 200:
            raise AssertionError(f"HTTP {status} for {path}: {out[:200]!r}")
        return json.loads(out)

    def admin_token(self, secret=None, user_id="imAdmin"):
        secret = secret if secret is not None else (self.secret or self.stored_secret())
        env = self.post("/auth/get_admin_token", {"secret": secret, "userID": user_id})
        assert env["errCode"] == 0, env
        return env["data"]["token"]

    def user_token(self, admin, user_id, platform=5):
        env = self.post("/auth/get_user_token", {"platformID": platform, "userID": user_id},
                        token=admin)
        assert env["errCode"] == 0, env
        return env["data"]["token"]

    def new_user_token(self, admin, user_id, platform, other):
        """A user token that differs from `other`.  OpenIM's tokens carry only whole seconds, so
        two issued in the same second for the same (user, platform) are the same string; this
        asks again until the clock has moved on (bounded by a deadline)."""
        deadline = time.monotonic() + 5
        while True:
            tok = self.user_token(admin, user_id, platform)
            if tok != other or time.monotonic() > deadline:
                return tok

    def register(self, admin, ids, **fields):
        users = [dict({"userID": u, "nickname": "n-" + u, "faceURL": ""}, **fields) for u in ids]
        return self.post("/user/user_register", {"users": users}, token=admin)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, secret, alg="HS256", header=None, sign=True):
    """Builds a JWT by hand (to craft foreign, forged and expired tokens)."""
    h = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(claims).encode())
    if not sign:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(sig)


class ServerTest(unittest.TestCase):
    """Base class: one server per test class, started with a configured secret."""

    secret = "test-secret-" + os.urandom(6).hex()
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(secret=cls.secret, args=cls.server_args).start()
        cls.admin = cls.srv.admin_token()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def assertCode(self, env, code, msg=None):
        self.assertEqual(env.get("errCode"), code, msg or env)

    def assertServing(self):
        status, _, body = self.srv.raw("GET", "/healthz")
        self.assertEqual(status, 200, body)


def main():
    unittest.main(verbosity=2)
