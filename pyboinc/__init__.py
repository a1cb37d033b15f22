"""PyBOINC: the worker side of PyMW on BOINC.

- `pyboinc.contract`: the worker contract (argument order, result codec, safe unzip);
- `pyboinc.runtime`: the entry point of the frozen worker `pymw_<version>_<platform>`;
- `pyboinc.boinc_api`: the cffi binding over BOINC's application library, which task
  scripts import as `boinc`;
- `pyboinc.signature` and `pyboinc.verify`: the signature line of signed task scripts, and
  the worker's refusal of unsigned ones (and of files it was not built with) when it was
  built with a trusted key; `pyboinc.libsodium`: the Ed25519 check, over libsodium.

This package never imports the master (`pymw`): the frozen worker carries only what a
volunteer host needs.
"""
