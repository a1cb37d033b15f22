"""HTTP endpoints of the project, one module per real BOINC program or page.

Each module exposes `ENDPOINTS`, a list of `http_server.Endpoint`. To add one, write a
module here and list it in `http_server.ENDPOINT_MODULES`. `base` and `submit_util` are
the shared plumbing, not pages.
"""
