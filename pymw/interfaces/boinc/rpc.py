"""BOINC remote job submission over HTTP: submit and follow batches from any machine.

Most scientists have no shell on a BOINC server. BOINC's route for them is remote job
submission: XML web RPCs authenticated with the account's authenticator (BOINC's own
Python client is `lib/boinc_submit.py`). This module speaks them with `requests`:

    client = BoincRpcClient("https://project.example.org/myproj/", authenticator)
    job = JobSpec("j0", files=[client.input_file(path)])
    batch_id = client.submit_batch(BatchSpec("myapp", [job]))
    client.query_batch(batch_id).state            # BatchState.COMPLETE once done
    client.get_output(result_id, 0)               # bytes of an assimilated output
    client.retire_batch(batch_id)

The path of one call:

    method -> request XML (root tag = operation, <authenticator>)
           -> POST request=<XML> to <project>/submit_rpc_handler.php (or job_file.php)
           -> reply XML, DTDs and entities refused -> <error> ? RemoteError : dataclass

`input_file` sends small text `inline` in the request, anything else uploaded once to
`job_file.php` under its content name `jf_<md5>` and referenced as `local_staged`. (The
BOINC interface uploads each job's input as a file of its own instead: remote.py says why.)
Outputs come from `get_output3.php`, which serves what sample_assimilator moved to
results/. It checks no authenticator (anyone who knows a result id may fetch it);
the `auth` cookie is sent anyway, as to any BOINC page.

Idempotent calls are retried with backoff on connection errors, read errors and 5xx
replies; submit_batch and create_batch only on connection errors, when the request
cannot have reached the server (a retried submit could make a second batch). Whatever
fails in the end is a BoincRpcError whose message is one line naming the URL and the
cause (refused, TLS, HTTP status, BOINC's `<error>`, a reply that is not XML).

An output the server cannot serve yet is not an output: BOINC's query_batch says a job
is done once its canonical result is chosen, seconds before the assimilator moves the
file, and get_output3.php answers that gap with HTTP 200, `Content-Disposition:
attachment` and an empty body. Such a body, or one shorter than announced, raises
OutputNotReadyError (ask again later); it is never handed on as a result.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from pymw.errors import PyMWError, UserError

try:
    import defusedxml.ElementTree as SafeET
    import requests
    from defusedxml import DefusedXmlException
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
except ModuleNotFoundError as missing:  # the [boinc] extra is not installed
    raise UserError(
        f"--url needs the Python module {missing.name!r}: pip install 'pymw[boinc]'"
    ) from None

SUBMIT_HANDLER = "submit_rpc_handler.php"
JOB_FILE_HANDLER = "job_file.php"
OUTPUT_PAGE = "get_output3.php"
#: Seconds to connect and to wait for each read.
DEFAULT_TIMEOUT = (10.0, 120.0)
#: Attempts after the first, and the backoff: sleeps of factor * 2**n seconds.
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF_FACTOR = 0.5
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: Inputs up to this size that are plain text go inline in the submit request.
INLINE_MAX_BYTES = 64 * 1024
#: One upload_files request carries at most this many files and bytes: PHP's defaults
#: (max_file_uploads 20, post_max_size 8M) drop anything larger without a word.
UPLOAD_MAX_FILES = 20
UPLOAD_MAX_BYTES = 7 * 1024 * 1024
#: Schemes a project URL may have (requests speaks no other).
URL_SCHEMES = ("http", "https")
#: Outputs larger than this are refused unless the caller allows more.
DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 64 * 1024
USER_AGENT = "pymw-boinc-rpc"
#: Characters XML 1.0 cannot carry; inline data must have none (and no CR, which XML
#: parsers turn into LF).
NOT_XML_TEXT = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|\r")


class BoincRpcError(PyMWError):
    """Remote job submission failed; the message (one line) says where and why."""


class BadUrlError(BoincRpcError):
    """The project URL is not an http(s) URL with a host."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url!r} is not a BOINC project URL: {reason}")
        self.url = url


class RemoteError(BoincRpcError):
    """The project answered with `<error><error_num/><error_msg/></error>`."""

    def __init__(self, num: int, message: str, url: str = "") -> None:
        super().__init__(f"{url or 'the BOINC project'} answered error {num}: {message}")
        self.num = num
        self.message = message
        self.url = url


class BoincUnreachableError(BoincRpcError):
    """No answer from the project's web server (DNS, refused, TLS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the BOINC project at {url}: {reason}")
        self.url = url


class HttpStatusError(BoincRpcError):
    """The web server answered with an HTTP error status (after any retries)."""

    def __init__(self, url: str, status: int, reason: str = "") -> None:
        hint = "; is --url the project's master URL?" if status == 404 else ""
        super().__init__(f"{url} answered HTTP {status} {reason}".rstrip() + hint)
        self.url = url
        self.status = status


class MalformedReplyError(BoincRpcError):
    """A reply that is not the XML the operation returns (or that carries a DTD)."""


class OutputUnavailableError(BoincRpcError):
    """get_output3.php answered with a page instead of the file (not the owner, bad
    index, no such result, or the authenticator was refused)."""


class OutputNotReadyError(OutputUnavailableError):
    """get_output3.php sent an empty or short file: the job's output is not assimilated
    yet (or its transfer broke off). Asking again later may succeed."""


class OutputTooLargeError(BoincRpcError):
    """An output file is larger than the caller's limit; nothing was kept."""


def check_project_url(url: str) -> None:
    """Refuse at once what requests would reject deep inside a call (MissingSchema)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        start = f"it starts with {parts.scheme}://" if parts.scheme else "it has no scheme"
        raise BadUrlError(url, f"{start}; give the project's http:// or https:// master URL")
    if not parts.hostname:
        raise BadUrlError(url, "it has no host name")


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)")
_SSL = re.compile(r"\[SSL: [A-Z_]+\] ([^'\"(]+)")
_INCOMPLETE = re.compile(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)")


def transport_reason(error: Exception) -> str:
    """The cause of a requests failure in a few words, not urllib3's nested repr."""
    text = str(error)
    incomplete = _INCOMPLETE.search(text)
    if incomplete:
        got, more = (int(n) for n in incomplete.groups())
        return f"the connection closed after {got} of {got + more} bytes"
    for pattern, prefix in ((_SSL, "TLS failed: "), (_ERRNO, "")):
        found = pattern.findall(text)
        if found:
            reason = prefix + found[-1].strip()
            return f"cannot resolve the host name ({reason})" if "resolve" in text else reason
    if isinstance(error, requests.Timeout):
        return "timed out"
    return " ".join(f"{type(error).__name__}: {text}".split())[:300]


class BatchState(IntEnum):
    """`state` of a batch in query_batch."""

    INIT = 0
    IN_PROGRESS = 1
    COMPLETE = 2
    ABORTED = 3
    RETIRED = 4


@dataclass(frozen=True)
class InputFile:
    """One `<input_file>` of a job: `source` is the data (inline) or a physical name."""

    mode: str
    source: str

    @classmethod
    def inline(cls, text: str) -> InputFile:
        """The file's contents in the request; the server stages it as `jf_<md5>`."""
        if NOT_XML_TEXT.search(text):
            raise ValueError("inline data must be XML text without CR; upload the file instead")
        return cls("inline", text)

    @classmethod
    def staged(cls, physical_name: str) -> InputFile:
        """A file already in the project's download hierarchy (e.g. uploaded)."""
        return cls("local_staged", physical_name)


@dataclass(frozen=True)
class JobSpec:
    """One job of a batch. `rsc_fpops_est` only feeds estimate_batch (the server's
    create_work takes FLOPs from job_params or the template)."""

    name: str | None = None
    command_line: str | None = None
    files: Sequence[InputFile] = ()
    rsc_fpops_est: float | None = None


@dataclass(frozen=True)
class JobParams:
    """Batch-wide workunit bounds (`<job_params>`); None leaves the template's value."""

    rsc_fpops_est: float | None = None
    rsc_fpops_bound: float | None = None
    rsc_memory_bound: float | None = None
    rsc_disk_bound: float | None = None
    delay_bound: float | None = None


@dataclass(frozen=True)
class BatchSpec:
    """A batch to submit; `batch_id` adds the jobs to a batch made by create_batch."""

    app_name: str
    jobs: Sequence[JobSpec]
    batch_name: str | None = None
    batch_id: int | None = None
    job_params: JobParams | None = None


@dataclass(frozen=True)
class JobStatus:
    """A job (workunit) of query_batch. `status` (done, error, in_progress, queued),
    `cpu_time`, `exit_status` and `errors` come only with job details."""

    id: int
    name: str
    canonical_instance_id: int
    status: str | None = None
    cpu_time: float | None = None
    exit_status: int | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchStatus:
    id: int
    name: str
    app_name: str
    state: BatchState
    njobs: int
    fraction_done: float
    nerror_jobs: int
    create_time: int
    completion_time: int
    expire_time: int
    jobs: tuple[JobStatus, ...] = ()


@dataclass(frozen=True)
class JobInstance:
    """One result (instance) of a job, from query_job."""

    id: int
    name: str
    state: str
    outfile_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class AppTemplates:
    """An app's input and output templates (XML text), from get_templates."""

    input_template: str
    output_template: str


@dataclass
class _Request:
    """A request document being built: the operation's root element."""

    root: ET.Element

    def add(self, tag: str, value: object, parent: ET.Element | None = None) -> ET.Element:
        element = ET.SubElement(self.root if parent is None else parent, tag)
        element.text = str(value)
        return element

    def text(self) -> str:
        return ET.tostring(self.root, encoding="unicode")


def physical_name(data: bytes) -> str:
    """The name BOINC gives a submitted file: `jf_` and the MD5 of its contents."""
    return f"jf_{hashlib.md5(data).hexdigest()}"


def _number(element: ET.Element, tag: str, kind: type = int):
    text = (element.findtext(tag) or "").strip()
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError as error:
        raise MalformedReplyError(f"<{tag}> is not a number: {text!r}") from error


def parse_reply(body: bytes, operation: str, url: str = "") -> ET.Element:
    """The reply's root element; raises RemoteError for an `<error>` reply.

    The server declares ISO-8859-1 but sends PHP strings, i.e. UTF-8: decode as UTF-8
    when it is valid. The error may stand alone or sit in the operation's tag.
    """
    where = url or operation
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except ET.ParseError as error:
        raise MalformedReplyError(
            f"{where}: the {operation} reply is not XML ({error}); is this a BOINC project?"
        ) from error
    except DefusedXmlException as error:  # a web page's <!DOCTYPE>, or an entity bomb
        raise MalformedReplyError(
            f"{where}: the {operation} reply is not BOINC's XML (it declares a DTD or "
            "entities); is this a BOINC project?"
        ) from error
    error = root if root.tag == "error" else root.find("error")
    if error is not None:
        num = (error.findtext("error_num") or "-1").strip()
        raise RemoteError(
            int(num) if num.lstrip("-").isdigit() else -1,
            " ".join((error.findtext("error_msg") or "").split()),
            url,
        )
    if root.tag != operation:
        raise MalformedReplyError(f"{where}: the {operation} reply is <{root.tag}>")
    return root


def submit_request(authenticator: str, operation: str) -> _Request:
    request = _Request(ET.Element(operation))
    request.add("authenticator", authenticator)
    return request


def batch_request(authenticator: str, operation: str, batch: BatchSpec) -> _Request:
    """submit_batch or estimate_batch: `<batch>` with the app, name, params and jobs."""
    request = submit_request(authenticator, operation)
    element = ET.SubElement(request.root, "batch")
    request.add("app_name", batch.app_name, element)
    if batch.batch_id is not None:
        request.add("batch_id", batch.batch_id, element)
    if batch.batch_name is not None:
        request.add("batch_name", batch.batch_name, element)
    if batch.job_params is not None:
        params = ET.SubElement(element, "job_params")
        for tag, value in vars(batch.job_params).items():
            if value is not None:
                request.add(tag, value, params)
    for job in batch.jobs:
        job_element = ET.SubElement(element, "job")
        for tag in ("name", "rsc_fpops_est", "command_line"):
            if getattr(job, tag) is not None:
                request.add(tag, getattr(job, tag), job_element)
        for f in job.files:
            file_element = ET.SubElement(job_element, "input_file")
            request.add("mode", f.mode, file_element)
            request.add("source", f.source, file_element)
    return request


def parse_batch(root: ET.Element) -> BatchStatus:
    jobs = []
    for job in root.findall("job"):
        status = job.findtext("status")
        cpu_time = job.findtext("cpu_time")
        exit_status = job.findtext("exit_status")
        jobs.append(
            JobStatus(
                id=_number(job, "id"),
                name=(job.findtext("name") or "").strip(),
                canonical_instance_id=_number(job, "canonical_instance_id"),
                status=status.strip() if status is not None else None,
                cpu_time=float(cpu_time) if cpu_time is not None else None,
                exit_status=int(exit_status) if exit_status is not None else None,
                errors=tuple((e.text or "").strip() for e in job.findall("error")),
            )
        )
    return BatchStatus(
        id=_number(root, "id"),
        name=(root.findtext("name") or "").strip(),
        app_name=(root.findtext("app_name") or "").strip(),
        state=BatchState(_number(root, "state")),
        njobs=_number(root, "njobs"),
        fraction_done=_number(root, "fraction_done", float),
        nerror_jobs=_number(root, "nerror_jobs"),
        create_time=_number(root, "create_time"),
        completion_time=_number(root, "completion_time"),
        expire_time=_number(root, "expire_time"),
        jobs=tuple(jobs),
    )


def _upload_groups(names: Sequence[str], files: Mapping[str, bytes]) -> Iterator[list[str]]:
    group: list[str] = []
    size = 0
    for name in names:
        if group and (len(group) == UPLOAD_MAX_FILES or size + len(files[name]) > UPLOAD_MAX_BYTES):
            yield group
            group, size = [], 0
        group.append(name)
        size += len(files[name])
    if group:
        yield group


def _session(retry: Retry, ca_bundle: str | None) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.verify = ca_bundle if ca_bundle is not None else True
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class BoincRpcClient:
    """A BOINC project's remote job submission, for one account.

    `project_url` is the project's master URL; `authenticator` the account key (from
    the project's account page or lookup_account.php). The account needs submit rights
    (user_submit). TLS certificates are always verified; `ca_bundle` names a CA file for
    a project with a private CA.
    """

    def __init__(
        self,
        project_url: str,
        authenticator: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        ca_bundle: str | None = None,
    ) -> None:
        check_project_url(project_url)
        self.project_url = project_url if project_url.endswith("/") else project_url + "/"
        self.authenticator = authenticator
        self.timeout = timeout
        idempotent = Retry(
            total=retries,
            backoff_factor=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST"},
            raise_on_status=False,
        )
        # POST is not in the default allowed methods: only connection errors are retried.
        once = Retry(total=retries, backoff_factor=backoff_factor, read=0, status=0)
        self._session = _session(idempotent, ca_bundle)
        self._once_session = _session(once, ca_bundle)

    def __enter__(self) -> BoincRpcClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()
        self._once_session.close()

    # Transport.
    def _send(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs
    ) -> requests.Response:
        session = self._session if idempotent else self._once_session
        try:
            response = session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.InvalidURL as error:  # e.g. a port that is no number
            raise BadUrlError(url, transport_reason(error)) from error
        except requests.RequestException as error:
            raise BoincUnreachableError(url, transport_reason(error)) from error
        if response.status_code >= 400:
            response.close()
            raise HttpStatusError(url, response.status_code, response.reason or "")
        return response

    def _call(
        self,
        request: _Request,
        handler: str = SUBMIT_HANDLER,
        idempotent: bool = True,
        files: list | None = None,
    ) -> ET.Element:
        operation = request.root.tag
        url = self.project_url + handler
        response = self._send(
            "POST", url, idempotent=idempotent, data={"request": request.text()}, files=files
        )
        return parse_reply(response.content, operation, url)

    def _request(self, operation: str) -> _Request:
        return submit_request(self.authenticator, operation)

    def _batch_op(self, operation: str, batch_id: int) -> ET.Element:
        request = self._request(operation)
        request.add("batch_id", batch_id)
        return self._call(request)

    # Batches.
    def submit_batch(self, batch: BatchSpec) -> int:
        """Create the batch's jobs on the server; returns the batch id."""
        root = self._call(
            batch_request(self.authenticator, "submit_batch", batch), idempotent=False
        )
        return _number(root, "batch_id")

    def create_batch(
        self, app_name: str, batch_name: str | None = None, expire_time: int = 0
    ) -> int:
        """An empty batch (state INIT) that a later submit_batch fills; returns its id."""
        request = self._request("create_batch")
        request.add("app_name", app_name)
        if batch_name is not None:
            request.add("batch_name", batch_name)
        request.add("expire_time", expire_time)
        return _number(self._call(request, idempotent=False), "batch_id")

    def estimate_batch(self, batch: BatchSpec) -> float:
        """The server's (crude) estimate of the batch's run time, in seconds."""
        root = self._call(batch_request(self.authenticator, "estimate_batch", batch))
        return _number(root, "seconds", float)

    def query_batch(
        self, batch_id: int, *, job_details: bool = True, cpu_time: bool = False
    ) -> BatchStatus:
        request = self._request("query_batch")
        request.add("batch_id", batch_id)
        if cpu_time:
            request.add("get_cpu_time", 1)
        if job_details:
            request.add("get_job_details", 1)
        return parse_batch(self._call(request))

    def query_job(self, job_id: int) -> list[JobInstance]:
        """The instances (results) of one job, with the sizes of outputs not yet moved."""
        request = self._request("query_job")
        request.add("job_id", job_id)
        return [
            JobInstance(
                id=_number(instance, "id"),
                name=(instance.findtext("name") or "").strip(),
                state=(instance.findtext("state") or "").strip(),
                outfile_sizes=tuple(_number(o, "size") for o in instance.findall("outfile")),
            )
            for instance in self._call(request).findall("instance")
        ]

    def abort_batch(self, batch_id: int) -> None:
        self._batch_op("abort_batch", batch_id)

    def retire_batch(self, batch_id: int) -> None:
        """Let the server clean up the batch's files and records (state RETIRED)."""
        self._batch_op("retire_batch", batch_id)

    def get_templates(self, app_name: str) -> AppTemplates:
        request = self._request("get_templates")
        request.add("app_name", app_name)
        templates = self._call(request).find("templates")
        children = list(templates) if templates is not None else []
        parts = {child.tag: ET.tostring(child, encoding="unicode") for child in children}
        if set(parts) != {"input_template", "output_template"}:
            raise MalformedReplyError(f"get_templates: got {sorted(parts)}")
        return AppTemplates(parts["input_template"], parts["output_template"])

    # Input files.
    def _file_request(
        self, operation: str, names: Sequence[str], batch_id: int | None, delete_time: int | None
    ) -> _Request:
        """query_files or upload_files: the names, and what job_file.php records for
        them (a batch that uses them; a time before which its file deleter keeps them)."""
        request = self._request(operation)
        if batch_id is not None:
            request.add("batch_id", batch_id)
        if delete_time is not None:
            request.add("delete_time", delete_time)
        for name in names:
            request.add("phys_name", name)
        return request

    def query_files(
        self,
        physical_names: Sequence[str],
        *,
        batch_id: int | None = None,
        delete_time: int | None = None,
    ) -> list[int]:
        """Indices of the names that are not in the project's download hierarchy.

        For those that are, the server records the batch and moves their delete time
        forward to `delete_time` if that is later: a file another batch uploaded stays.
        """
        request = self._file_request("query_files", physical_names, batch_id, delete_time)
        root = self._call(request, JOB_FILE_HANDLER)
        return [_number(f, ".") for f in root.iterfind("absent_files/file")]

    def upload_data(
        self,
        files: Mapping[str, bytes],
        *,
        batch_id: int | None = None,
        delete_time: int | None = None,
    ) -> None:
        """Put files (physical name -> contents) on the server, only those it lacks.

        Names must be immutable: other contents, other name. Uploads go in requests of
        at most UPLOAD_MAX_FILES files and about UPLOAD_MAX_BYTES.
        """
        names = list(files)
        absent = self.query_files(names, batch_id=batch_id, delete_time=delete_time)
        for group in _upload_groups([names[i] for i in absent], files):
            request = self._file_request("upload_files", group, batch_id, delete_time)
            parts = [
                (f"file_{n}", (name, files[name], "application/octet-stream"))
                for n, name in enumerate(group)
            ]
            self._call(request, JOB_FILE_HANDLER, files=parts)

    def upload_files(self, paths: Sequence[Path], **recorded: int | None) -> list[str]:
        """Put files on the server under their content names `jf_<md5>`; returns them."""
        contents = [Path(p).read_bytes() for p in paths]
        names = [physical_name(data) for data in contents]
        self.upload_data(dict(zip(names, contents, strict=True)), **recorded)
        return names

    def input_file(self, path: Path) -> InputFile:
        """How to send a file: inline if it is small text, else uploaded and staged."""
        data = Path(path).read_bytes()
        if 0 < len(data) <= INLINE_MAX_BYTES:
            try:
                return InputFile.inline(data.decode("utf-8"))
            except ValueError:  # binary, or text XML cannot carry unchanged
                pass
        return InputFile.staged(self.upload_files([path])[0])

    # Outputs.
    def output_url(self, result_id: int, index: int) -> str:
        return (
            f"{self.project_url}{OUTPUT_PAGE}?action=get_file"
            f"&result_id={result_id}&index={index}&download=1"
        )

    def _output_chunks(self, result_id: int, index: int, max_bytes: int) -> Iterator[bytes]:
        url = self.output_url(result_id, index)
        response = self._send(
            "GET", url, stream=True, allow_redirects=False, cookies={"auth": self.authenticator}
        )
        with response:
            if response.is_redirect:
                raise OutputUnavailableError(f"{url}: the project refused the authenticator")
            disposition = response.headers.get("Content-Disposition", "")
            if not disposition.lower().startswith("attachment"):
                page = re.sub(r"<[^>]+>", " ", response.text)
                raise OutputUnavailableError(f"{url}: {' '.join(page.split())[:300]}")
            announced = response.headers.get("Content-Length")
            length = int(announced) if announced and announced.isdigit() else None
            if length == 0:
                raise OutputNotReadyError(f"{url}: an empty file (not assimilated yet)")
            if length is not None and length > max_bytes:
                raise OutputTooLargeError(f"{url}: {length} bytes, over the limit of {max_bytes}")
            received = 0
            try:
                for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                    received += len(chunk)
                    if received > max_bytes:
                        raise OutputTooLargeError(f"{url}: over the limit of {max_bytes} bytes")
                    yield chunk
            except requests.RequestException as error:
                raise OutputNotReadyError(
                    f"{url}: the transfer broke off ({transport_reason(error)})"
                ) from error
            if received == 0:
                raise OutputNotReadyError(f"{url}: an empty file (not assimilated yet)")
            if length is not None and received < length:
                raise OutputNotReadyError(f"{url}: {received} of {length} bytes arrived")

    def get_output(
        self, result_id: int, index: int = 0, *, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    ) -> bytes:
        """Output file `index` of result `result_id` (a job's canonical_instance_id)."""
        return b"".join(self._output_chunks(result_id, index, max_bytes))

    def download_output(
        self,
        result_id: int,
        index: int,
        destination: Path,
        *,
        max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    ) -> int:
        """Stream an output to `destination`; returns its size. No partial file is left."""
        destination = Path(destination)
        size = 0
        try:
            with destination.open("wb") as sink:
                for chunk in self._output_chunks(result_id, index, max_bytes):
                    sink.write(chunk)
                    size += len(chunk)
        except BaseException:
            destination.unlink(missing_ok=True)
            raise
        return size
