"""The compiled BOINC binding, built once per session (needs libboinc-app-dev)."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def compiled_binding():
    if (
        not Path("/usr/include/boinc/boinc_api.h").exists()
        and "BOINC_INCLUDE_DIR" not in os.environ
    ):
        pytest.skip("libboinc-app-dev is not installed")
    from pyboinc.boinc_api import build_binding

    return build_binding.compile_in_place()


@pytest.fixture(scope="session")
def compiled_sodium_binding():
    """The libsodium binding that checks signed scripts (needs libsodium-dev)."""
    if not Path("/usr/include/sodium.h").exists() and "SODIUM_INCLUDE_DIR" not in os.environ:
        pytest.skip("libsodium-dev is not installed")
    from pyboinc.libsodium import build_binding

    return build_binding.compile_in_place()
