"""Clearinghouse transports: the port billing sends 837P files through and reads
acknowledgments and remittances from, with a mailbox directory adapter (the default) and
an HTTP adapter, plus the retry policy for transient failures.

Directory mailbox (``DirectoryTransport(root)``)::

    root/outbox/      837P files we send (written to a dot-prefixed temp name, then linked
                      into place, so a reader never sees half a file; readers skip dotfiles)
    root/inbox/       999 / 277CA / 835 files the far side leaves for us
    root/archive/YYYY-MM-DD/   inbound files after they were processed
    root/quarantine/  inbound files we could not use, each with ``<name>.reason.txt``

HTTP clearinghouse protocol (``HttpTransport(url, auth_header, timeout)``), kept tiny on
purpose; ``tests/integration/test_http_transport.py`` runs a stub server implementing it:

* ``POST {url}`` with the file as the body: ``Content-Type: application/edi-x12``,
  ``X-Filename``, ``X-Batch-Id``, ``X-Content-SHA256`` and ``Idempotency-Key`` (the content
  hash) plus the configured auth header. 2xx confirms receipt; a JSON body ``{"id": ...}``
  (or a ``Location`` header) names the server's copy. A server that already holds the same
  idempotency key answers 2xx with the same id and ``X-Duplicate: true``, which makes
  retrying after a lost response safe. 409 (same file name, other content) and other 4xx are permanent; 408, 425, 429 and
  5xx are transient (``Retry-After`` in seconds is honoured as a lower bound).
* ``GET {url}/inbound`` lists waiting files: ``{"files": [{"id": ..., "name": ...}]}``.
* ``GET {url}/inbound/{id}`` returns one file's bytes.
* ``DELETE {url}/inbound/{id}`` acknowledges a processed file (it is no longer listed).
* ``POST {url}/inbound/{id}/reject`` with ``{"reasons": [...]}`` quarantines a file.

Reasons and log lines carry file names, ids and counts only, never PHI.

The code lives in ``transports_types`` (port, files, errors), ``transports_directory``,
``transports_http`` and ``transports_retry``; this module re-exports all of it.
"""

from __future__ import annotations

from services.billing.transports_directory import DirectoryTransport
from services.billing.transports_http import HttpTransport, parse_auth_header
from services.billing.transports_retry import Attempt, RetryPolicy, SendOutcome, send_with_retry
from services.billing.transports_types import (
    FileConflictError,
    InboundFile,
    InboundKind,
    OutgoingFile,
    PermanentTransportError,
    SendReceipt,
    TransientTransportError,
    Transport,
    TransportError,
    content_hash,
    detect_kind,
)

__all__ = [
    "Attempt",
    "DirectoryTransport",
    "FileConflictError",
    "HttpTransport",
    "InboundFile",
    "InboundKind",
    "OutgoingFile",
    "PermanentTransportError",
    "RetryPolicy",
    "SendOutcome",
    "SendReceipt",
    "TransientTransportError",
    "Transport",
    "TransportError",
    "content_hash",
    "detect_kind",
    "parse_auth_header",
    "send_with_retry",
]
