"""The one exception hierarchy of edge-inspector.

Every error the project raises on purpose derives from :class:`EdgeError`.
Errors from onnxruntime, OpenCV, safetensors and the OS are translated into
one of these at the boundary where they happen, so callers (the CLI, and the
gRPC servicer later) can map them to exit codes and status codes in one place.

    EdgeError
    ├── ConfigError                 bad flags, environment or config file
    ├── BundleError                 a bundle cannot be trusted or loaded
    │   ├── BundleNotFoundError     no bundle (or no manifest) at the path
    │   ├── BundleIntegrityError    bytes differ from the manifest; file missing or extra
    │   └── BundleSchemaError       manifest malformed, or written by a newer schema
    ├── ExportError                 the build host could not produce a bundle
    │   ├── UnsupportedModelError   model type we cannot export (lists supported ones)
    │   ├── CheckpointError         checkpoint missing, truncated or corrupt
    │   ├── OutputSpaceError        the output disk is too full
    │   └── ParityError             exported graphs disagree with PyTorch
    ├── InputError                  a request's content is unusable (the caller's fault)
    │   ├── FieldError              … and we know which request field (``images[0].raw.stride: …``)
    │   ├── ImageError              empty, corrupt, oversized or unsupported image
    │   ├── AudioError              empty, non-finite, oversized or unsupported audio
    │   ├── PromptError             prompt does not fit the context, or is malformed
    │   ├── SchemaError             a response schema that is not JSON or cannot be compiled
    │   └── ThresholdError          a gate threshold override outside (0, 1)
    ├── EngineError                 onnxruntime failed while running a valid request
    ├── SourceError                 a camera or microphone cannot be opened or read (``permanent``: needs a person)
    ├── NotFoundError               a journal event or evidence file that does not exist (any more)
    ├── GateError                   an anomaly gate cannot be fitted, loaded or trusted
    │   ├── GateNotFoundError       no gate (or no manifest) at the path
    │   ├── GateIntegrityError      bytes differ from the gate manifest; file missing or extra
    │   ├── GateSchemaError         gate manifest malformed, or written by a newer schema
    │   ├── GateContractError       the graph breaks anomalib's ONNX export contract
    │   ├── GateFitError            the good set cannot make a gate (too few, unreadable)
    │   └── GateScoreError          scoring produced a NaN or infinite score
    ├── JournalError                the event journal cannot be opened or written (disk, corruption)
    └── ServiceError                the daemon cannot take this request now
        ├── OverloadedError         the description queue or the stream limit is full
        ├── ShuttingDownError       the daemon is draining for shutdown
        └── SessionError            an Inspect stream broke the session protocol
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with when this escapes."""

    exit_code = 1


class ConfigError(EdgeError):
    exit_code = 2


class BundleError(EdgeError):
    exit_code = 3


class BundleNotFoundError(BundleError):
    pass


class BundleIntegrityError(BundleError):
    pass


class BundleSchemaError(BundleError):
    pass


class ExportError(EdgeError):
    exit_code = 4


class UnsupportedModelError(ExportError):
    pass


class CheckpointError(ExportError):
    pass


class OutputSpaceError(ExportError):
    pass


class ParityError(ExportError):
    exit_code = 5


class InputError(EdgeError):
    exit_code = 6


class FieldError(InputError):
    """An InputError that names the request field at fault; the message starts with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class ImageError(InputError):
    pass


class AudioError(InputError):
    pass


class PromptError(InputError):
    pass


class SchemaError(InputError):
    pass


class ThresholdError(InputError):
    pass


class EngineError(EdgeError):
    exit_code = 7


class SourceError(EdgeError):
    """A pulled source failed; ``permanent`` when retrying is unlikely to help (a wrong password, no such file)."""

    exit_code = 10

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class GateError(EdgeError):
    exit_code = 9


class GateNotFoundError(GateError):
    pass


class GateIntegrityError(GateError):
    pass


class GateSchemaError(GateError):
    pass


class GateContractError(GateError):
    pass


class GateFitError(GateError):
    pass


class GateScoreError(GateError):
    pass


class NotFoundError(EdgeError):
    exit_code = 6


class JournalError(EdgeError):
    exit_code = 11


class ServiceError(EdgeError):
    exit_code = 8


class OverloadedError(ServiceError):
    pass


class ShuttingDownError(ServiceError):
    pass


class SessionError(ServiceError):
    pass
