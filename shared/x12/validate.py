"""Validate X12 text with pyx12 (a dev dependency) for tests and benchmarks.

pyx12 is imported inside the function so runtime code never needs it installed.
Its CLI exit status does not reflect validity, so errors are collected from its
JSON error report and from the messages it logs when it gives up on a file.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

__all__ = ["validate_x12"]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"pyx12: {record.getMessage()}")


def _errors_from_report(report: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def add(label: str, node: dict[str, Any], where: str) -> None:
        for err in node.get("errors", []):
            value = f" value={err['err_val']!r}" if err.get("err_val") not in (None, "") else ""
            found.append(f"{label}: [{err['err_cde']}] {err['err_str']}{value} ({where})")

    for isa in report.get("interchanges", []):
        add(f"ISA {isa.get('isa_trn_set_id')}", isa, f"line {isa.get('cur_line')}")
        for gs in isa.get("groups", []):
            add(f"GS {gs.get('gs_control_num')}", gs, f"line {gs.get('cur_line')}")
            for st in gs.get("transactions", []):
                add(f"ST {st.get('trn_set_control_num')}", st, f"line {st.get('cur_line')}")
                for seg in st.get("segments", []):
                    where = f"segment {seg.get('seg_count')} of set, line {seg.get('cur_line')}"
                    add(str(seg.get("seg_id")), seg, where)
                    for ele in seg.get("elements", []):
                        label = f"{seg.get('seg_id')}{int(ele.get('ele_pos') or 0):02d}"
                        add(label, ele, where)
    return found


def validate_x12(text: str) -> list[str]:
    """Return pyx12's error messages for ``text``; an empty list means it is valid."""
    import pyx12.params  # optional dev dependency: imported lazily
    import pyx12.x12n_document

    param = pyx12.params.ParamsBase()  # base class skips user config files: reproducible
    report = io.StringIO()
    collector = _Collect()
    logger = logging.getLogger("pyx12")
    logger.addHandler(collector)
    try:
        ok = pyx12.x12n_document.x12n_document(
            param=param,
            src_file=io.StringIO(text),
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            fd_json=report,
        )
    except Exception as exc:  # pyx12 raises EngineError and assorted errors on garbage
        return [*collector.messages, f"pyx12 raised {type(exc).__name__}: {exc}"]
    finally:
        logger.removeHandler(collector)
    raw = report.getvalue()
    errors = _errors_from_report(json.loads(raw)) if raw else []
    # pyx12 also logs each error it records; the log only adds news when the report is empty.
    if not errors:
        errors = list(collector.messages)
    if not ok and not errors:
        errors.append("pyx12 reported the document invalid without details")
    return errors
