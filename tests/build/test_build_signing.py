"""`--signing-public-key`: the key file is read once, and frozen in as `pyboinc._trusted_key`."""

import importlib.util

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pyboinc_build import options, signing
from pyboinc_build.errors import ConfigurationError

from pymw.signing import write_key_pair


def raw(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_pem_public_key_from_keygen(tmp_path):
    private_path, public_path = write_key_pair(tmp_path)
    opts = options.parse(["--signing-public-key", str(public_path)])
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), None)
    assert opts.trusted_key == raw(private_key.public_key())
    assert opts.signing_public_key.startswith("-----BEGIN PUBLIC KEY-----")  # the manifest's


def test_openssh_public_key(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (tmp_path / "id_ed25519.pub").write_bytes(line + b" user@host\n")
    assert signing.read_public_key(str(tmp_path / "id_ed25519.pub"))[1] == raw(key)


def test_no_key_means_a_worker_that_checks_nothing():
    assert options.parse([]).trusted_key is None


@pytest.mark.parametrize(
    ("kind", "message"),
    [("private", "is a private key"), ("rsa", "not an Ed25519"), ("junk", "not an Ed25519")],
)
def test_wrong_key_files_are_one_line_errors(tmp_path, kind, message):
    paths = {
        "private": write_key_pair(tmp_path)[0],
        "rsa": tmp_path / "rsa.pub",
        "junk": tmp_path / "junk",
    }
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    paths["rsa"].write_bytes(
        rsa_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    paths["junk"].write_text("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigurationError, match=message) as raised:
        options.parse(["--signing-public-key", str(paths[kind])])
    assert "\n" not in str(raised.value)


def test_trusted_key_module_holds_the_raw_key(tmp_path):
    key = bytes(range(32))
    path = signing.write_trusted_key_module(key, tmp_path)
    spec = importlib.util.spec_from_file_location("trusted_key_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert key == module.PUBLIC_KEY
