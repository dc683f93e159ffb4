"""A `tally serve` of a snapshot on loopback for the scripts of tools/load: started, waited for
(/readyz), and stopped when the `with` block ends."""
import contextlib
import http.client
import os
import subprocess
import time


@contextlib.contextmanager
def served_snapshot(tally, snapshot, port, ready_seconds=120):
    """Yields once `tally serve --snapshot SNAPSHOT` answers /readyz on 127.0.0.1:PORT (HTTP
    only; the environment passes through); stops it afterwards."""
    server = subprocess.Popen([tally, "serve", "--snapshot", snapshot, "--host", "127.0.0.1",
                               "--port", str(port), "--no-binary"],
                              env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + ready_seconds
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/readyz")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("tally serve did not become ready")
            time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
