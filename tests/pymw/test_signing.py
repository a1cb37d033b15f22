"""The master's side of signed scripts: keys, keygen, and masters that sign what they send."""

import concurrent.futures
import stat
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pymw import interfaces, pymw, signing
from pymw.errors import UserError
from pymw.interfaces.generic import GenericInterface

SIGNATURE_PREFIX = "# pymw-signature: ed25519 "


def own_script():
    """A task returning the script it runs in (fresh process: argv[0] is the script)."""
    with open(sys.argv[0]) as handle:
        return handle.read()


@pytest.fixture
def key_pair(tmp_path):
    private_path, public_path = signing.write_key_pair(tmp_path / "keys")
    return private_path, public_path


def write_key(path, key, fmt, encryption=None):
    encryption = encryption or serialization.NoEncryption()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))
    return path


# ----------------------------------------------------------------------------- keys


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path, capsys):
    assert signing.main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    private_path = tmp_path / "keys" / "pymw_sign.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert (tmp_path / "keys" / "pymw_sign.pub").read_text().startswith("-----BEGIN PUBLIC KEY")
    assert isinstance(signing.load_signing_key(private_path), ed25519.Ed25519PrivateKey)
    assert "never on the BOINC server" in capsys.readouterr().out


def test_keygen_never_overwrites_a_key(key_pair, capsys):
    private_path, _ = key_pair
    before = private_path.read_bytes()
    assert signing.main(["keygen", "--out", str(private_path.parent)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1
    assert private_path.read_bytes() == before


def test_openssh_ed25519_keys_load(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    path = write_key(tmp_path / "id_ed25519", key, serialization.PrivateFormat.OpenSSH)
    loaded = signing.load_signing_key(path)
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.pem", "cannot read signing key .*missing.pem"),
        (lambda tmp: signing.write_key_pair(tmp)[1], "is a public key; signing needs"),
        (
            lambda tmp: write_key(
                tmp / "encrypted.pem",
                ed25519.Ed25519PrivateKey.generate(),
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
            "is encrypted",
        ),
        (
            lambda tmp: write_key(
                tmp / "rsa.pem",
                rsa.generate_private_key(public_exponent=65537, key_size=1024),
                serialization.PrivateFormat.PKCS8,
            ),
            r"is not an Ed25519 key \(it is RSA\)",
        ),
        (lambda tmp: tmp / "junk.pem", "is not a PEM or OpenSSH private key"),
    ],
    ids=["missing", "public", "encrypted", "rsa", "junk"],
)
def test_key_mistakes_are_one_line_user_errors(tmp_path, make, message):
    (tmp_path / "junk.pem").write_text("not a key\n")
    with pytest.raises(UserError, match=message) as raised:
        signing.load_signing_key(make(tmp_path))
    assert "\n" not in str(raised.value)


# -------------------------------------------------------------------- signing masters


def test_master_signs_the_scripts_it_sends_and_tasks_still_run(key_pair):
    private_path, _ = key_pair
    interface = GenericInterface(num_workers=1, fresh_process=True)
    with pymw.PyMW_Master(interface, sign_key=private_path, show_progress=False) as master:
        _, script = master.get_result(master.submit_task(own_script))
    last_line = script.splitlines()[-1]
    assert last_line.startswith(SIGNATURE_PREFIX)
    assert script.endswith("\n") and "def own_script" in script


def test_executor_signs_with_a_loaded_key(key_pair):
    key = signing.load_signing_key(key_pair[0])
    interface = GenericInterface(num_workers=1, fresh_process=True)
    with pymw.Executor(interface=interface, sign_key=key) as pool:
        script = pool.submit(own_script).result(timeout=60)
    assert script.splitlines()[-1].startswith(SIGNATURE_PREFIX)


def test_without_a_key_scripts_are_not_signed():
    interface = GenericInterface(num_workers=1, fresh_process=True)
    with pymw.Executor(interface=interface) as pool:
        futures = [pool.submit(own_script)]
        (done,) = concurrent.futures.as_completed(futures, timeout=60)
    assert SIGNATURE_PREFIX not in done.result()


def test_sign_key_switch_reaches_the_master_through_the_interface(key_pair):
    options, _ = interfaces.parse_options(
        args=["--fresh_process", "-n", "1", "--sign-key", str(key_pair[0])]
    )
    interface = interfaces.get_interface(options)
    assert isinstance(interface.signing_key, ed25519.Ed25519PrivateKey)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        _, script = master.get_result(master.submit_task(own_script))
    assert script.splitlines()[-1].startswith(SIGNATURE_PREFIX)


def test_a_bad_sign_key_switch_is_one_line_and_exit_2(tmp_path, capsys):
    options, _ = interfaces.parse_options(args=["--sign-key", str(tmp_path / "nope.pem")])
    with pytest.raises(SystemExit) as raised:
        interfaces.get_interface(options)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "error: cannot read signing key" in err and err.count("\n") == 1


def test_sign_key_of_the_wrong_type_is_a_user_error():
    with pytest.raises(UserError, match="sign_key must be a key file's path"):
        pymw.PyMW_Master(sign_key=42)
