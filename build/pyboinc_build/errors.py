"""User-facing build errors: printed as one line `build-workers: <message>`, no traceback."""


class FatalError(Exception):
    """An error the user can act on; `main()` prints it on one line and exits with `code`."""

    code = 2


class ConfigurationError(FatalError):
    """Bad options or platform data."""


class NotSupportedError(FatalError):
    """The requested worker cannot be built on this host (e.g. another OS)."""


class ImmutableFileError(FatalError):
    """A rebuilt file differs from the published one with the same version."""


class BuildStepError(FatalError):
    """A build tool (compiler, PyInstaller, patchelf, gcc) failed."""

    code = 3
