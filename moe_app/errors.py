"""One exception hierarchy for the whole app.

Every message is written for the person who has to act on it (a clinician for
`CaseError`, an operator for the rest) and never contains patient identifiers.
"""

from __future__ import annotations


class MoeAppError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(MoeAppError):
    """The deployment is misconfigured (environment variable, file, permission)."""


class CaseError(MoeAppError):
    """A case cannot be read: bad DICOM, bad report, bad vitals, empty case.

    The only exception that escapes intake. Its message says what is wrong and
    what the user can do, e.g. "File 3 of 5 is not a DICOM file (it looks like a PNG image)".
    """


class DeidError(MoeAppError):
    """De-identification could not be applied, so the data must not go further."""


class ModelError(MoeAppError):
    """The model cannot be loaded or run (missing checkpoint, hash mismatch, bad config)."""


class AuditError(MoeAppError):
    """The audit store cannot be written or read, or its chain does not verify."""


class AuthError(MoeAppError):
    """Login failed or the user is not allowed to do this."""
