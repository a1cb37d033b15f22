"""Signed task scripts: the line format, OpenSSL's Ed25519 check, and the refusing runtime.

Keys come from cryptography (the master's side, `pymw.signing`); the worker checks with
libcrypto through the cffi binding, so every round trip crosses both implementations.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyboinc_helpers import REPO_ROOT

from pyboinc import contract, signature, verify
from pyboinc.boinc_api.libcrypto import verify_ed25519
from pymw.signing import sign_script

pytestmark = pytest.mark.usefixtures("compiled_binding")

SCRIPT = "import sys\nopen(sys.argv[2], 'w').write(open(sys.argv[1]).read().upper())\n"


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def other_key():
    return Ed25519PrivateKey.generate()


# ------------------------------------------------------------------ format and check


def test_signed_script_ends_with_the_signature_line_and_verifies(key):
    signed = sign_script(SCRIPT, key).encode()
    assert signed.startswith(SCRIPT.encode())
    assert signed.splitlines()[-1].startswith(b"# pymw-signature: ed25519 ")
    verify.check_script(signed, raw_public_key(key))  # does not raise


def test_a_script_without_final_newline_gets_one_before_the_line(key):
    signed = sign_script("print(1)", key).encode()
    assert signed.startswith(b"print(1)\n# pymw-signature: ")
    verify.check_script(signed, raw_public_key(key))


def test_libcrypto_agrees_with_cryptography(key, other_key):
    message = b"any bytes \x00\xff"
    good = key.sign(message)
    public = raw_public_key(key)
    assert verify_ed25519(public, good, message)
    assert not verify_ed25519(public, good, message + b" ")
    assert not verify_ed25519(raw_public_key(other_key), good, message)
    assert not verify_ed25519(public, good[:-1] + bytes([good[-1] ^ 1]), message)
    assert not verify_ed25519(public, good[:32], message)
    with pytest.raises(ValueError, match="32 bytes"):
        verify_ed25519(public[:31], good, message)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.replace(b"upper", b"lower"), "does not match"),  # one changed byte
        (lambda s: s + b"print('appended')\n", "not signed"),
        (lambda s: s.rsplit(b"#", 1)[0], "not signed"),  # line removed
        (lambda s: s[:-10] + b"!!!!!!!!!\n", "not hold valid base64"),
        (lambda s: s.rsplit(b" ", 1)[0] + b" " + b"A" * 44 + b"\n", "33 bytes, not 64"),
    ],
    ids=["changed-byte", "appended-line", "missing-line", "bad-base64", "short-signature"],
)
def test_tampered_scripts_are_refused_with_the_reason(key, change, reason):
    signed = sign_script(SCRIPT, key).encode()
    with pytest.raises(verify.ScriptRefused, match=reason):
        verify.check_script(change(signed), raw_public_key(key))


def test_another_key_is_refused(key, other_key):
    signed = sign_script(SCRIPT, other_key).encode()
    with pytest.raises(verify.ScriptRefused, match="does not match"):
        verify.check_script(signed, raw_public_key(key))


def test_unsigned_script_is_refused(key):
    with pytest.raises(verify.ScriptRefused, match="not signed"):
        verify.check_script(SCRIPT.encode(), raw_public_key(key))
    with pytest.raises(signature.SignatureError):
        signature.split(b"")


def test_a_plain_checkout_trusts_no_key():
    assert verify.trusted_key() is None


# ------------------------------------------------------------------ the runtime


@pytest.fixture
def trusting_pyboinc(tmp_path, key):
    """A copy of the pyboinc package holding a generated `_trusted_key`, as a signing
    worker's bundle does (the build writes it; it never goes into the source tree)."""
    site = tmp_path / "site"
    shutil.copytree(
        REPO_ROOT / "pyboinc", site / "pyboinc", ignore=shutil.ignore_patterns("__pycache__")
    )
    source = verify.trusted_key_module_source(raw_public_key(key))
    (site / "pyboinc" / "_trusted_key.py").write_text(source)
    return site


def run_worker(slot, pythonpath, script_text: str):
    (slot / "task.py").write_text(script_text)
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [sys.executable, "-m", "pyboinc", "task.py", "stdlib.zip", "in", "out"],
        cwd=slot,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def slot(tmp_path):
    slot = tmp_path / "slot"
    slot.mkdir()
    with zipfile.ZipFile(slot / "stdlib.zip", "w"):
        pass
    (slot / "in").write_text("hello")
    return slot


def test_signing_worker_refuses_an_unsigned_script(slot, trusting_pyboinc):
    result = run_worker(slot, trusting_pyboinc, SCRIPT)
    assert result.returncode == contract.EXIT_SCRIPT_REFUSED == 4
    stderr_txt = (slot / "stderr.txt").read_text()
    assert "pymw worker: refusing task.py: it is not signed" in stderr_txt
    assert (slot / "boinc_finish_called").read_text().strip() == "4"
    assert not (slot / "out").exists()


def test_signing_worker_refuses_a_tampered_script(slot, trusting_pyboinc, key):
    tampered = sign_script(SCRIPT, key).replace("upper", "lower")
    result = run_worker(slot, trusting_pyboinc, tampered)
    assert result.returncode == 4
    assert "refusing task.py: its signature does not match" in (slot / "stderr.txt").read_text()


def test_signing_worker_runs_a_signed_script(slot, trusting_pyboinc, key):
    result = run_worker(slot, trusting_pyboinc, sign_script(SCRIPT, key))
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert (slot / "out").read_text() == "HELLO"


def test_worker_without_a_key_runs_signed_and_unsigned_scripts(slot, key):
    for text in (SCRIPT, sign_script(SCRIPT, key)):
        result = run_worker(slot, REPO_ROOT, text)
        assert result.returncode == 0, (slot / "stderr.txt").read_text()
        assert (slot / "out").read_text() == "HELLO"
