#!/usr/bin/env python3
"""Object-storage dumps and snapshots against a real S3-compatible server on loopback (moto's
moto_server, from PyPI), started and stopped here. Checks, through the `tally` executable:

  * a dump listed under an s3:// prefix (no manifest) loads exactly as the same folder on disk;
  * a dump with a manifest (row counts, SHA-256) loads through it;
  * the same dump through a flaky proxy (503s, connections cut mid-body) loads the same, by
    retrying with backoff and resuming with Range requests;
  * an https://…-style dump on a web server loads through its manifest.json;
  * a snapshot at s3://bucket/key is served by `tally serve --snapshot`;
  * a missing object, an empty prefix, wrong credentials (moto with authentication on) and a
    corrupted part each fail with a clear message naming what went wrong.

Usage: python3 tools/s3_check.py [--tally .build/debug/tally]
"""
import argparse
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_packages():
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "moto[server]", "boto3"], check=True)


class Moto:
    def __init__(self, auth_after=None):
        self.port = free_port()
        env = dict(os.environ)
        if auth_after is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_after)
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise SystemExit("moto_server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def client(url, key="testing", secret="testing"):
    import boto3
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret)


def upload(s3, bucket, folder, prefix):
    for dirpath, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(dirpath, f)
            key = prefix + os.path.relpath(path, folder)
            s3.upload_file(path, bucket, key)


class FlakyProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Forwards GETs to moto; the first request for each object gets a 503, the second is cut
    off after half its body; later ones go through (Range requests included)."""
    daemon_threads = True

    def __init__(self, target):
        self.target = target
        self.seen = {}
        self.lock = threading.Lock()
        self.stats = {"503": 0, "cut": 0, "range": 0}
        super().__init__(("127.0.0.1", 0), FlakyHandler)


class FlakyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        path = self.path
        is_object = "list-type" not in path and path.endswith((".lz4", ".gz", ".csv", ".json"))
        with srv.lock:
            n = srv.seen.get(path, 0)
            srv.seen[path] = n + 1
        if is_object and n == 0:
            srv.stats["503"] += 1
            body = b"<Error><Code>SlowDown</Code><Message>try again</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        if "Range" in self.headers:
            srv.stats["range"] += 1
        req = urllib.request.Request(srv.target + path, headers=headers)
        try:
            resp = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            resp = e
        body = resp.read()
        cut = is_object and n == 1 and len(body) > 64
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:
            srv.stats["cut"] += 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)


def run(tally, args, env, expect_ok=True):
    p = subprocess.run([tally] + args, capture_output=True, text=True, env=env, timeout=600)
    if expect_ok and p.returncode != 0:
        raise SystemExit(f"FAILED: tally {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    return p


def summary(out):
    """The lines of `tally load` that describe the data (not the timings)."""
    keep = ("clients ", "users ", "apps ", "usage rows", "  client ")
    return [l for l in out.splitlines() if l.startswith(keep)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(ROOT, ".build/debug/tally"))
    args = ap.parse_args()
    ensure_packages()
    tally = args.tally
    work = tempfile.mkdtemp(prefix="tally-s3-")
    servers = []
    checks = 0
    try:
        dump = os.path.join(work, "gen")
        run(tally, ["generate", "--scale", "S", "--seed", "5", "--out", dump], os.environ)
        local = summary(run(tally, ["load", dump], os.environ).stdout)
        sample = os.path.join(ROOT, "data/sample")
        sample_local = summary(run(tally, ["load", sample], os.environ).stdout)

        moto = Moto()
        servers.append(moto)
        s3 = client(moto.url)
        s3.create_bucket(Bucket="tally-dumps")
        upload(s3, "tally-dumps", dump, "gen/2026-03-31/")
        upload(s3, "tally-dumps", sample, "sample/")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=moto.url)

        def check(name, cond, detail=""):
            nonlocal checks
            checks += 1
            if not cond:
                raise SystemExit(f"FAILED: {name}\n{detail}")
            print(f"ok  {name}")

        out = run(tally, ["load", "s3://tally-dumps/gen/2026-03-31/"], env)
        check("listed s3:// dump loads as on disk", summary(out.stdout) == local, out.stdout)
        out = run(tally, ["load", "s3://tally-dumps/sample/"], env)
        check("s3:// dump with a manifest (rows, SHA-256) loads as on disk", summary(out.stdout) == sample_local, out.stdout)

        # Retries: a proxy that answers 503 first and cuts the body off the second time.
        proxy = FlakyProxy(moto.url)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        flaky = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
        out = run(tally, ["load", "s3://tally-dumps/gen/2026-03-31/"], flaky)
        check(f"through 503s and cut connections (stats {proxy.stats}) the dump loads the same",
              summary(out.stdout) == local and proxy.stats["503"] > 0 and proxy.stats["cut"] > 0 and proxy.stats["range"] > 0,
              out.stdout + out.stderr)
        proxy.shutdown()

        # A web server: the sample through its manifest.
        web_port = free_port()
        web = subprocess.Popen([sys.executable, "-m", "http.server", str(web_port), "--bind", "127.0.0.1", "--directory", sample],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(type("P", (), {"stop": lambda self: (web.terminate(), web.wait())})())
        time.sleep(0.8)
        out = run(tally, ["load", f"http://127.0.0.1:{web_port}/"], os.environ)
        check("http(s):// dump through its manifest.json loads as on disk", summary(out.stdout) == sample_local, out.stdout + out.stderr)

        # A snapshot in the bucket, served.
        snap = os.path.join(work, "sample.tsnap")
        run(tally, ["snapshot", "save", "--dump", sample, "--out", snap], os.environ)
        s3.upload_file(snap, "tally-dumps", "snapshots/sample.tsnap")
        port = free_port()
        serve = subprocess.Popen([tally, "serve", "--port", str(port), "--no-binary", "--snapshot",
                                  "s3://tally-dumps/snapshots/sample.tsnap"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = None
        for _ in range(300):
            try:
                ready = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read())
                break
            except Exception:
                if serve.poll() is not None:
                    break
                time.sleep(0.1)
        serve.send_signal(signal.SIGTERM)
        err = serve.communicate(timeout=20)[1]
        rows = [l for l in sample_local if l.startswith("usage rows")][0].split()[-2]
        check("tally serve --snapshot s3://… serves it", ready is not None and str(ready.get("usage_rows")) == rows, f"{ready} {err}")

        # Failures, each with a clear message.
        p = run(tally, ["load", "s3://tally-dumps/nothing-here/"], env, expect_ok=False)
        check("an empty prefix is refused, saying so", p.returncode != 0 and "no objects under this prefix" in p.stderr, p.stderr)
        p = run(tally, ["serve", "--port", str(free_port()), "--no-binary", "--snapshot", "s3://tally-dumps/snapshots/missing.tsnap"],
                env, expect_ok=False)
        check("a missing snapshot object is refused, naming it",
              p.returncode != 0 and "s3://tally-dumps/snapshots/missing.tsnap" in p.stderr and "not found" in p.stderr, p.stderr)
        manifest = json.load(open(os.path.join(sample, "manifest.json")))
        first_part = manifest["tables"]["app_usage_reports"][0]
        s3.delete_object(Bucket="tally-dumps", Key="sample/" + first_part)
        p = run(tally, ["load", "s3://tally-dumps/sample/"], env, expect_ok=False)
        check("a part the manifest lists but the bucket lacks is refused, naming it",
              p.returncode != 0 and first_part in p.stderr, p.stderr)
        # A corrupted part: bytes flipped in the middle of an LZ4 part (no manifest to catch it first).
        key = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="tally-dumps", Prefix="gen/2026-03-31/app_usage_reports/")["Contents"])[0]
        body = bytearray(s3.get_object(Bucket="tally-dumps", Key=key)["Body"].read())
        for i in range(len(body) // 2, len(body) // 2 + 64):
            body[i] ^= 0x5A
        s3.put_object(Bucket="tally-dumps", Key=key, Body=bytes(body))
        p = run(tally, ["load", "s3://tally-dumps/gen/2026-03-31/"], env, expect_ok=False)
        part = key.split("gen/2026-03-31/")[1]
        check("a corrupted part is refused, naming the file", p.returncode != 0 and part in p.stderr, p.stderr)

        # Wrong credentials, against a moto that checks signatures (after 5 setup calls).
        authed = Moto(auth_after=5)
        servers.append(authed)
        import boto3
        iam = boto3.client("iam", endpoint_url=authed.url, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        iam.create_user(UserName="tally")
        key_pair = iam.create_access_key(UserName="tally")["AccessKey"]
        iam.put_user_policy(UserName="tally", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        good = client(authed.url, key_pair["AccessKeyId"], key_pair["SecretAccessKey"])
        good.create_bucket(Bucket="tally-private")
        good.upload_file(snap, "tally-private", "sample.tsnap")
        auth_env = dict(env, AWS_ENDPOINT_URL=authed.url, AWS_ACCESS_KEY_ID=key_pair["AccessKeyId"],
                        AWS_SECRET_ACCESS_KEY=key_pair["SecretAccessKey"])
        port = free_port()
        ok = subprocess.Popen([tally, "serve", "--port", str(port), "--no-binary", "--snapshot", "s3://tally-private/sample.tsnap"],
                              env=auth_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        served = None
        for _ in range(300):
            try:
                served = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read())
                break
            except Exception:
                if ok.poll() is not None:
                    break
                time.sleep(0.1)
        ok.send_signal(signal.SIGTERM)
        err = ok.communicate(timeout=20)[1]
        check("SigV4 requests are accepted by a server that checks signatures", served is not None, err)
        for name, bad_env in [("a wrong secret key", dict(auth_env, AWS_SECRET_ACCESS_KEY="wrong-secret")),
                              ("an unknown access key", dict(auth_env, AWS_ACCESS_KEY_ID="AKIAUNKNOWN0000000"))]:
            p = run(tally, ["serve", "--port", str(free_port()), "--no-binary", "--snapshot", "s3://tally-private/sample.tsnap"],
                    bad_env, expect_ok=False)
            check(f"{name} is refused with a clear message",
                  p.returncode != 0 and "access denied" in p.stderr and "AWS_ACCESS_KEY_ID" in p.stderr, p.stderr)
        p = run(tally, ["load", "s3://tally-dumps/gen/2026-03-31/"], dict(env, AWS_ACCESS_KEY_ID=""), expect_ok=False)
        check("missing credentials are refused, naming the variables", p.returncode != 0 and "AWS_SECRET_ACCESS_KEY" in p.stderr, p.stderr)
        print(f"s3_check: {checks} checks passed")
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
