"""Signed task scripts: the line format, libsodium's Ed25519 check, and the refusing runtime.

Keys come from cryptography (the master's side, `pymw.signing`); the worker checks with
libsodium through its cffi binding, so every round trip crosses both implementations, and
the check also passes OpenSSL's own Ed25519 test vectors.
"""

import base64
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyboinc_helpers import REPO_ROOT, modules_a_worker_may_import, plant_trap_modules

from pyboinc import contract, signature, verify
from pyboinc.libsodium import verify_ed25519
from pymw.signing import sign_script

pytestmark = pytest.mark.usefixtures("compiled_binding", "compiled_sodium_binding")
OPENSSL_VECTORS = Path(__file__).with_name("data") / "openssl_ed25519_vectors.txt"

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


def openssl_stanzas(path: Path) -> list[dict]:
    """OpenSSL's evp_test format: `Key = value` lines, stanzas split by blank lines, a PEM
    block after `PublicKey=NAME`, comments with `#`."""
    stanzas, current, pem = [], {}, None
    for line in [*path.read_text().splitlines(), ""]:
        if pem is not None:
            pem.append(line)
            if line.startswith("-----END"):
                current["PEM"] = "".join(pem[1:-1])
                pem = None
        elif line.startswith("-----BEGIN"):
            pem = [line]
        elif not line.strip():
            if current:
                stanzas.append(current)
            current = {}
        elif not line.startswith("#"):
            name, _, value = line.partition("=")
            current[name.strip()] = value.strip()
    return stanzas


def openssl_verify_cases() -> list:
    """(public key, signature, message, valid) for every Ed25519 verification OpenSSL
    tests outside FIPS: its verify stanzas, and each sign stanza's output checked back."""
    stanzas = openssl_stanzas(OPENSSL_VECTORS)
    keys, pairs, cases = {}, {}, []
    for stanza in stanzas:
        if "PublicKey" in stanza:  # DER of SubjectPublicKeyInfo: 12-byte header, raw key
            keys[stanza["PublicKey"]] = base64.b64decode(stanza["PEM"])[12:]
        elif "PublicKeyRaw" in stanza:
            name, _, raw = stanza["PublicKeyRaw"].split(":")
            keys[name] = bytes.fromhex(raw)
        elif "PrivPubKeyPair" in stanza:
            private, public = stanza["PrivPubKeyPair"].split(":")
            pairs[private] = public
        elif stanza.get("Availablein") == "fips":
            continue
        elif "OneShotDigestSign" in stanza or "OneShotDigestVerify" in stanza:
            text = stanza["Input"]
            message = text[1:-1].encode() if text.startswith('"') else bytes.fromhex(text)
            public = keys[pairs.get(stanza["Key"], stanza["Key"])]
            valid = stanza.get("Result") != "VERIFY_ERROR"
            cases.append((public, bytes.fromhex(stanza["Output"]), message, valid))
    return cases


def test_openssl_test_vectors_are_all_read():
    cases = openssl_verify_cases()
    assert len(cases) == 10  # RFC 8032's five, five verify stanzas (three must fail)
    assert sum(valid for *_, valid in cases) == 7


@pytest.mark.parametrize(
    ("public_key", "signature_bytes", "message", "valid"), openssl_verify_cases()
)
def test_libsodium_passes_openssls_ed25519_vectors(public_key, signature_bytes, message, valid):
    assert verify_ed25519(public_key, signature_bytes, message) is valid


def test_libsodium_agrees_with_cryptography(key, other_key):
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
    with pytest.raises(verify.Refused, match=reason):
        verify.check_script(change(signed), raw_public_key(key))


def test_another_key_is_refused(key, other_key):
    signed = sign_script(SCRIPT, other_key).encode()
    with pytest.raises(verify.Refused, match="does not match"):
        verify.check_script(signed, raw_public_key(key))


def test_unsigned_script_is_refused(key):
    with pytest.raises(verify.Refused, match="not signed"):
        verify.check_script(SCRIPT.encode(), raw_public_key(key))
    with pytest.raises(signature.SignatureError):
        signature.split(b"")


def test_a_plain_checkout_trusts_no_key():
    assert verify.trust() is None


def test_a_script_asks_for_slot_imports_with_a_line_of_its_own():
    assert signature.asks_for_slot_imports(b"import x\n# pymw-worker: import-from-slot\n")
    assert not signature.asks_for_slot_imports(b"x = '# pymw-worker: import-from-slot'\n")
    assert not signature.asks_for_slot_imports(SCRIPT.encode())


# ------------------------------------------------------------------ the runtime


@pytest.fixture
def slot(tmp_path):
    slot = tmp_path / "slot"
    slot.mkdir()
    with zipfile.ZipFile(slot / "stdlib.zip", "w") as stdlib:
        stdlib.writestr("placeholder.txt", "the stdlib zip the worker was built with")
    (slot / "in").write_text("hello")
    return slot


@pytest.fixture
def trusting_pyboinc(tmp_path, key, slot):
    """A copy of the pyboinc package holding a generated `_trusted_key`, as a signing
    worker's bundle does (the build writes it; it never goes into the source tree): it
    trusts `key` and the slot's stdlib.zip."""
    site = tmp_path / "site"
    shutil.copytree(
        REPO_ROOT / "pyboinc", site / "pyboinc", ignore=shutil.ignore_patterns("__pycache__")
    )
    digests = {"stdlib.zip": verify.sha256_of_file(str(slot / "stdlib.zip"))}
    source = verify.trusted_key_module_source(raw_public_key(key), digests, "stdlib.zip")
    (site / "pyboinc" / "_trusted_key.py").write_text(source)
    return site


def run_worker(slot, pythonpath, script_text: str, stdlib_zip: str = "stdlib.zip"):
    (slot / "task.py").write_text(script_text)
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [sys.executable, "-m", "pyboinc", "task.py", stdlib_zip, "in", "out"],
        cwd=slot,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


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


# ------------------------------------------------------------------ the two bypasses


def test_a_stdlib_zip_the_worker_was_not_built_with_is_refused(slot, trusting_pyboinc, key):
    """Bypass (A): the workunit's command line names a zip of the server's choosing."""
    marker = slot.parent / "ran"
    with zipfile.ZipFile(slot / "evil.zip", "w") as evil:
        evil.writestr("traceback.py", f"open({str(marker)!r}, 'w').write('evil zip ran')\n")
        evil.writestr("runpy.py", f"open({str(marker)!r}, 'w').write('evil zip ran')\n")
    result = run_worker(slot, trusting_pyboinc, sign_script(SCRIPT, key), stdlib_zip="evil.zip")
    assert result.returncode == contract.EXIT_SCRIPT_REFUSED
    assert (
        "pymw worker: refusing evil.zip: its content is not the stdlib.zip this worker"
        in (slot / "stderr.txt").read_text()
    )
    assert not marker.exists()
    assert not (slot / "out").exists()


def test_nothing_sent_with_a_task_is_imported(slot, trusting_pyboinc, key):
    """Bypass (B): an input envelope naming a data zip made safe_extract import
    zipfile_deflate64, and a zipfile_deflate64.py sent as an input file ran. Here every
    module the worker may import lazily is planted in the slot, beside the task's files."""
    import tasks_for_tests as t

    from pymw.programs import program_from_function

    plant_trap_modules(slot, modules_a_worker_may_import())
    with zipfile.ZipFile(slot / "data.zip", "w") as data:
        data.writestr("numbers.txt", "1 2 3")
    (slot / "in").write_bytes(contract.encode_input(("numbers.txt",), data_zip="data.zip"))
    script = sign_script(program_from_function(t.read_data_file).script, key)
    result = run_worker(slot, trusting_pyboinc, script)
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert contract.decode_output((slot / "out").read_bytes()).value == "1 2 3"
    assert "TRAP" not in (slot / "stderr.txt").read_text()


HELPER_USER = "import helper_module\nhelper_module.write()\n"


def test_a_signed_script_that_asks_imports_from_its_folder(slot, trusting_pyboinc, key):
    (slot / "helper_module.py").write_text(
        "import sys\ndef write():\n    open(sys.argv[2], 'w').write('from the slot')\n"
    )
    asking = f"{signature.SLOT_IMPORTS_LINE.decode()}\n{HELPER_USER}"
    result = run_worker(slot, trusting_pyboinc, sign_script(asking, key))
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert (slot / "out").read_text() == "from the slot"

    (slot / "out").unlink()
    result = run_worker(slot, trusting_pyboinc, sign_script(HELPER_USER, key))
    assert result.returncode == contract.EXIT_TASK_FAILED
    assert "No module named 'helper_module'" in (slot / "stderr.txt").read_text()
    assert not (slot / "out").exists()
