"""`--signing-public-key`: the key file is read once, and frozen in as `pyboinc._trusted_key`
with the sha256 of every file the worker may put on sys.path."""

import hashlib
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


def load_generated(path):
    spec = importlib.util.spec_from_file_location("trusted_key_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trusted_key_module_holds_the_raw_key_and_each_files_sha256(tmp_path):
    key = bytes(range(32))
    stdlib, layer = tmp_path / "1.00_python311.zip", tmp_path / "1.00_numpy-2.2.6_cp311.zip"
    stdlib.write_bytes(b"the stdlib")
    layer.write_bytes(b"numpy")
    files = {stdlib.name: stdlib, layer.name: layer}
    module = load_generated(
        signing.write_trusted_key_module(key, tmp_path / "work", files, stdlib.name)
    )
    assert key == module.PUBLIC_KEY
    assert stdlib.name == module.STDLIB_ZIP
    assert {
        stdlib.name: hashlib.sha256(b"the stdlib").hexdigest(),
        layer.name: hashlib.sha256(b"numpy").hexdigest(),
    } == module.TRUSTED_FILES


def test_the_worker_refuses_files_it_was_not_built_with(tmp_path):
    """The runtime's check against what the build wrote (pyboinc.verify)."""
    from pyboinc import verify

    stdlib = tmp_path / "1.00_python311.zip"
    stdlib.write_bytes(b"the stdlib")
    module = load_generated(
        signing.write_trusted_key_module(bytes(32), tmp_path, {stdlib.name: stdlib}, stdlib.name)
    )
    trusted = verify.Trust(module.PUBLIC_KEY, module.TRUSTED_FILES, module.STDLIB_ZIP)
    verify.check_trusted_file(str(stdlib), stdlib.name, trusted)  # the built one passes
    (tmp_path / "evil.zip").write_bytes(b"the stdlib, changed")
    with pytest.raises(verify.Refused, match=r"not the 1\.00_python311\.zip this worker was built"):
        verify.check_trusted_file(str(tmp_path / "evil.zip"), stdlib.name, trusted)
    with pytest.raises(verify.Refused, match=r"built without a file 1\.00_scipy\.zip"):
        verify.check_trusted_file(str(stdlib), "1.00_scipy.zip", trusted)
    with pytest.raises(verify.Refused, match="cannot be read"):
        verify.check_trusted_file(str(tmp_path / "missing.zip"), stdlib.name, trusted)


def test_the_stdlib_zip_must_be_among_the_trusted_files(tmp_path):
    from pyboinc import verify

    with pytest.raises(ValueError, match="not among the trusted files"):
        verify.trusted_key_module_source(bytes(32), {"layer.zip": "00"}, "1.00_python311.zip")
