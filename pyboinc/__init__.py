"""PyBOINC: the worker side of PyMW on BOINC.

- `pyboinc.contract`: the worker contract (argument order, result codec, safe unzip);
- `pyboinc.runtime`: the entry point of the frozen worker `pymw_<version>_<platform>`;
- `pyboinc.boinc_api`: the cffi binding over BOINC's application library, which task
  scripts import as `boinc` (and over OpenSSL's Ed25519 check, `boinc_api.libcrypto`);
- `pyboinc.signature` and `pyboinc.verify`: the signature line of signed task scripts, and
  the worker's refusal of unsigned ones when it was built with a trusted key.

This package never imports the master (`pymw`): the frozen worker carries only what a
volunteer host needs.
"""
