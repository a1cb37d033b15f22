"""Test infrastructure for PyMW.

Fixtures and stand-ins for systems that cannot be installed on a developer's machine
(e.g. a BOINC server). Production code never imports this package; tests and users'
own checks do.
"""
