"""A compiled cffi module loaded once per process, as pyca/cryptography's `Binding` does.

The worker has two (`boinc_api._binding.Binding` over BOINC's library, `libsodium.Binding`
for the signature check). Each imports its module with a plain import statement, so that
PyInstaller's analysis finds the extension, and checks or initialises it before use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing is 5 ms of every task's start-up
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, ClassVar


class CompiledBinding:
    """Subclasses give `what` (for messages), `error`, `rebuild_hint`, `_import` and
    optionally `_ready`; `load()` then sets `ffi` and `lib`, or raises `error`."""

    what: ClassVar[str]
    error: ClassVar[type[Exception]]
    rebuild_hint: ClassVar[str]
    ffi: ClassVar[Any] = None
    lib: ClassVar[Any] = None

    @staticmethod
    def _import() -> ModuleType:
        raise NotImplementedError

    @classmethod
    def _ready(cls, compiled: ModuleType) -> None:
        """Check or initialise the freshly imported module (raise `error` if unusable)."""

    @classmethod
    def load(cls) -> None:
        if cls.lib is not None:
            return
        try:
            compiled = cls._import()
        except ImportError as error:
            raise cls.error(f"the {cls.what} is not built ({error}); {cls.rebuild_hint}") from None
        cls._ready(compiled)
        cls.ffi, cls.lib = compiled.ffi, compiled.lib
