"""Code-signing keys and signatures in BOINC's text format."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pymw.testing.boinc_sandbox.signing import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    parse_hex_block,
    parse_private_key,
    parse_public_key,
    sign_md5,
    verify_md5,
    write_code_sign_keys,
)

MD5 = "9307c0895c2e3e956d77bee3a92d16c3"


def test_key_files_have_boinc_layout(tmp_path):
    write_code_sign_keys(tmp_path)
    public_lines = (tmp_path / PUBLIC_KEY_FILE).read_text().splitlines()
    assert public_lines[0] == "1024"
    assert public_lines[-1] == "."
    assert len(public_lines) == 1 + 8 + 1  # 256 bytes, 32 a line
    assert public_lines[-2].endswith("010001")  # e = 65537, right-aligned
    private_lines = (tmp_path / PRIVATE_KEY_FILE).read_text().splitlines()
    assert private_lines[0] == "1024" and len(private_lines) == 1 + 22 + 1  # 704 bytes


def test_signature_round_trip_and_is_pkcs1_type1_over_md5_hex(tmp_path):
    write_code_sign_keys(tmp_path)
    private = parse_private_key((tmp_path / PRIVATE_KEY_FILE).read_text())
    public = parse_public_key((tmp_path / PUBLIC_KEY_FILE).read_text())
    assert (private.n, private.e) == (public.n, public.e)
    text = sign_md5(MD5, private)
    assert text.splitlines()[-1] == "." and len(text.splitlines()) == 5
    assert verify_md5(MD5, text, public)
    assert not verify_md5("0" * 32, text, public)
    # Independent check: the raw PKCS#1 v1.5 payload (no DigestInfo) is the md5 string.
    key = rsa.RSAPublicNumbers(public.e, public.n).public_key()
    payload = key.recover_data_from_signature(parse_hex_block(text), padding.PKCS1v15(), None)
    assert payload == MD5.encode()
