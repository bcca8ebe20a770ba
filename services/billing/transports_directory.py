"""The directory mailbox transport (the default): atomic writes to ``outbox/``, inbound
files read from ``inbox/`` and moved to ``archive/`` or ``quarantine/`` (layout in the
``transports`` module docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from services.billing.transports_types import (
    FileConflictError,
    InboundFile,
    OutgoingFile,
    SendReceipt,
    _check_name,
    content_hash,
    detect_kind,
)
from shared.clock import utc_now
from shared.logging import get_logger

__all__ = ["DirectoryTransport"]

log = get_logger("billing.transport")


# ---------------------------------------------------------------- directory mailbox


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem can fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(directory: Path, name: str, data: bytes, *, overwrite: bool) -> bool:
    """Write ``directory/name`` via a dot-prefixed temp file. Without ``overwrite`` an
    existing target is left alone and False is returned (hard links never clobber)."""
    tmp = directory / f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    target = directory / name
    try:
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if target.exists():  # no hard links here: a narrower race window, still checked
                    return False
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(directory)
    return True


def _free_name(directory: Path, name: str) -> Path:
    """``name``, or ``name.1``, ``name.2``... when a file of that name is already there."""
    target = directory / name
    n = 0
    while target.exists():
        n += 1
        target = directory / f"{name}.{n}"
    return target


class DirectoryTransport:
    """A mailbox on a (possibly shared) file system; see the module docstring for layout."""

    name = "directory"

    def __init__(self, root: Path, *, now: Callable[[], datetime] = utc_now) -> None:
        self.root = Path(root)
        self.outbox = self.root / "outbox"
        self.inbox = self.root / "inbox"
        self.archive = self.root / "archive"
        self.quarantine_dir = self.root / "quarantine"
        self._now = now

    def ensure_dirs(self) -> None:
        for d in (self.outbox, self.inbox, self.archive, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)

    async def send(self, batch: OutgoingFile) -> SendReceipt:
        return await asyncio.to_thread(self._send, batch)

    def _send(self, batch: OutgoingFile) -> SendReceipt:
        self.outbox.mkdir(parents=True, exist_ok=True)
        target = self.outbox / batch.name
        written = _write_atomic(self.outbox, batch.name, batch.content, overwrite=False)
        if not written:
            existing = content_hash(target.read_bytes())
            if existing != batch.content_hash:
                raise FileConflictError(
                    f"outbox already holds {batch.name} with different content "
                    f"(sha256 {existing[:12]}..., sending {batch.content_hash[:12]}...)"
                )
        log.info(
            "billing.transport.sent",
            transport=self.name,
            file=batch.name,
            batch_id=batch.batch_id,
            bytes=len(batch.content),
            already_present=not written,
        )
        return SendReceipt(
            file_name=batch.name,
            batch_id=batch.batch_id,
            content_hash=batch.content_hash,
            transport=self.name,
            remote_ref=str(target.relative_to(self.root)),
            already_present=not written,
        )

    async def fetch_inbound(self) -> list[InboundFile]:
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> list[InboundFile]:
        if not self.inbox.is_dir():
            return []
        entries = []
        for path in self.inbox.iterdir():
            # Dotfiles are temp files still being written by the far side.
            if path.name.startswith(".") or not path.is_file():
                continue
            entries.append((path.stat().st_mtime_ns, path.name, path))
        out = []
        for _, name, path in sorted(entries):
            try:
                content = path.read_bytes()
            except FileNotFoundError:  # taken by a concurrent reader
                continue
            out.append(InboundFile(name, content, detect_kind(content), name))
        return out

    async def mark_processed(self, f: InboundFile) -> None:
        await asyncio.to_thread(self._mark_processed, f)

    def _mark_processed(self, f: InboundFile) -> None:
        source = self._inbox_path(f)
        if not source.exists():
            return  # already moved: processing is repeatable after a crash
        day_dir = self.archive / self._now().strftime("%Y-%m-%d")
        day_dir.mkdir(parents=True, exist_ok=True)
        target = _free_name(day_dir, f.name)
        os.replace(source, target)
        log.info("billing.transport.archived", file=f.name, kind=str(f.kind))

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None:
        await asyncio.to_thread(self._quarantine, f, list(reasons))

    def _quarantine(self, f: InboundFile, reasons: list[str]) -> None:
        source = self._inbox_path(f)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = _free_name(self.quarantine_dir, f.name)
        text = "".join(f"{r}\n" for r in (reasons or ["no reason given"]))
        # The reason file is written first, so a crash never leaves an unexplained file.
        _write_atomic(
            self.quarantine_dir, f"{target.name}.reason.txt", text.encode(), overwrite=True
        )
        if source.exists():
            os.replace(source, target)
        else:  # the inbox copy is gone; keep the bytes we were handed
            _write_atomic(self.quarantine_dir, target.name, f.content, overwrite=True)
        log.warning(
            "billing.transport.quarantined", file=f.name, kind=str(f.kind), reasons=len(reasons)
        )

    def _inbox_path(self, f: InboundFile) -> Path:
        return self.inbox / _check_name(f.ref)
