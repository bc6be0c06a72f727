"""`snowpipe-emulator` for the Python checks and benches: a work directory with a key pair,
the emulator started and its URL, and `snowpipe-emulator query`.

Used by emulator/scripts/official_sdk_check.py and official_sdk_file_mode.py,
benches/official_sdk_head_to_head.py and kafka/lab/benches/python_peer_check.py (those put this
directory on sys.path). The standard library only, and `cryptography` for the key pair.
"""

import collections
import json
import pathlib
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]

Work = collections.namedtuple("Work", "dir data private_pem private_key public_key")
Work.__doc__ = """A work directory, its `data/` directory, and a key pair: the private key as
PKCS#8 PEM text and at `private_key` (rsa_key.p8), the public key at `public_key` (rsa_key.pub)."""


def prepare(binaries, prefix, build):
    """Exits naming the `build` command unless all of `binaries` exist; else a new temporary
    work directory (its name starting with `prefix`) with `data/` and a key pair: a `Work`."""
    for binary in binaries:
        if not pathlib.Path(binary).exists():
            raise SystemExit(f"{binary} not found; run `{build}` first")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    work = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    (work / "data").mkdir()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (work / "rsa_key.p8").write_bytes(private)
    (work / "rsa_key.pub").write_bytes(public)
    return Work(work, work / "data", private.decode(), work / "rsa_key.p8", work / "rsa_key.pub")


def start(cmd, log, log_mode="w"):
    """Starts the emulator command line `cmd`, its stderr to the file `log` (opened with
    `log_mode`), and waits up to 30 s for its `listening on URL` line: (process, URL)."""
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                            stderr=open(log, log_mode), text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("listening on "):
            return proc, line.split("listening on ", 1)[1].strip()
    proc.kill()
    raise SystemExit(f"emulator did not start; see {log}")


def query(binary, data_dir, sql):
    """The rows (JSON arrays) of `sql` run by `snowpipe-emulator query` over `data_dir`."""
    out = subprocess.run(
        [str(binary), "query", "--data-dir", str(data_dir), "--format", "json", sql],
        check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
