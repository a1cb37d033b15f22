"""HTTP endpoints of the project, one module per real BOINC program or page.

Each module exposes `ENDPOINTS`, a list of `http_server.Endpoint`. To add one (e.g.
submit_rpc_handler.php, job_file.php, get_output3.php), write a module here and list it
in `http_server.ENDPOINT_MODULES`.
"""
