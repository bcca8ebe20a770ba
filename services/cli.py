"""`mtm-billing`: serve, worker, migrate, apikey create, dev."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Any

from shared.config import Settings, SettingsError
from shared.logging import configure_logging, get_logger

log = get_logger("services.cli")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"mtm-billing: {exc}")


def _require_services(settings: Settings) -> None:
    missing = [
        n
        for n, v in (
            ("MTM_DATABASE_URL", settings.database_url),
            ("MTM_REDIS_URL", settings.redis_url),
        )
        if not v
    ]
    if missing:
        sys.exit(
            f"mtm-billing: set {' and '.join(missing)} (or use `mtm-billing dev`, which starts embedded ones)"
        )


def _uvicorn_server(app: Any, settings: Settings) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings()
    _require_services(settings)
    if settings.web_workers > 1:
        import uvicorn

        # Each worker process builds its own app from MTM_* (nothing is shared but the port).
        uvicorn.run(
            "services.app:app_from_env",
            factory=True,
            workers=settings.web_workers,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
        )
        return
    from services.app import create_app

    server = _uvicorn_server(create_app(settings), settings)
    server.run()


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _settings()
    _require_services(settings)
    configure_logging(settings.log_level, json=settings.log_json)
    from arq.worker import Worker

    from services.worker import build_worker_settings

    kwargs = build_worker_settings(settings)
    if args.burst:
        kwargs["burst"] = True
    import uvloop

    uvloop.install()
    worker = Worker(**kwargs)
    worker.run()


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings()
    if not settings.database_url:
        sys.exit("mtm-billing: set MTM_DATABASE_URL")
    from shared import migrate

    if args.down:
        migrate.downgrade(settings.database_url, args.revision)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    print(f"migrated to {args.revision}")


async def _create_key(database_url: str, tenant: str, role: str, label: str) -> str:
    from shared.auth import create_api_key
    from shared.db import create_engine
    from shared.errors import AppError

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            new = await create_api_key(conn, tenant_id=tenant, role=role, label=label)
        return new.key
    except AppError as exc:
        sys.exit(f"mtm-billing: {exc.message}")
    finally:
        await engine.dispose()


def cmd_apikey_create(args: argparse.Namespace) -> None:
    settings = _settings()
    if not settings.database_url:
        sys.exit("mtm-billing: set MTM_DATABASE_URL")
    key = asyncio.run(_create_key(settings.database_url, args.tenant, args.role, args.label))
    print(key)
    print(
        f"# tenant={args.tenant} role={args.role}; shown once, only its hash is stored",
        file=sys.stderr,
    )


async def run_api_and_worker(
    settings: Settings, *, on_ready: Any = None, handle_signals: bool = True
) -> None:
    """API and worker in one process (the `dev` and `demo` commands)."""
    import contextlib

    from arq.worker import Worker

    from services.app import create_app
    from services.worker import build_worker_settings, stop_worker

    server = _uvicorn_server(create_app(settings), settings)
    kwargs = build_worker_settings(settings)
    kwargs["handle_signals"] = False
    worker = Worker(**kwargs)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

    api_task = asyncio.create_task(server.serve())
    worker_task = asyncio.create_task(worker.async_run())
    while not server.started and not api_task.done():  # noqa: ASYNC110 - uvicorn exposes a flag only
        await asyncio.sleep(0.05)
    if on_ready is not None and server.started and await on_ready():
        stop.set()  # on_ready asked to stop (e.g. `demo --once`)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({api_task, worker_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await stop_worker(worker, worker_task)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await api_task


def prepare_dev(settings: Settings) -> tuple[Settings, Any]:
    """Start embedded PostgreSQL/Redis for whatever is not configured, then migrate."""
    from shared import migrate
    from shared.embedded import start_embedded

    embedded = None
    if not settings.database_url or not settings.redis_url:
        embedded = start_embedded(
            Path(settings.var_dir),
            need_db=not settings.database_url,
            need_redis=not settings.redis_url,
        )
        settings = settings.with_services(
            database_url=settings.database_url or embedded.database_url,
            redis_url=settings.redis_url or embedded.redis_url,
        )
    migrate.upgrade(settings.database_url)
    return settings, embedded


def cmd_dev(args: argparse.Namespace) -> None:
    settings = _settings()
    configure_logging(settings.log_level, json=settings.log_json)
    settings, embedded = prepare_dev(settings)
    key = asyncio.run(_create_key(settings.database_url, args.tenant, "admin", "dev admin"))
    intake = asyncio.run(_create_key(settings.database_url, args.tenant, "intake", "dev intake"))
    base = f"http://{settings.host}:{settings.port}"
    data_dir = Path(settings.var_dir).resolve()

    async def announce() -> None:
        print(
            "\n".join(
                [
                    "",
                    f"mtm-billing is running at {base}",
                    f"  API docs:     {base}/schema  (Swagger UI: {base}/schema/swagger)",
                    f"  tenant:       {args.tenant}",
                    f"  admin key:    {key}",
                    f"  intake key:   {intake}",
                    f"  data:         {data_dir}",
                    "  stop with Ctrl-C",
                    "",
                ]
            ),
            flush=True,
        )

    try:
        import uvloop

        uvloop.run(run_api_and_worker(settings, on_ready=announce))
    finally:
        if embedded is not None:
            embedded.stop()


def cmd_demo(args: argparse.Namespace) -> None:
    """The whole mission on synthetic data: payers, contracts, roster, sessions through the
    API; claims by the worker; 837P out; the payer simulator's 999/277CA/835 back in; work
    queue, KPIs and PMPM reconciliation; then a summary."""
    import msgspec

    from services.demo.runner import DemoKeys, DemoSize, run_demo, summary_text
    from shared.clock import utc_now

    settings = _settings()
    if not args.verbose:
        settings = msgspec.structs.replace(settings, log_level="WARNING")
    configure_logging(settings.log_level, json=settings.log_json)
    var = Path(settings.var_dir) / "demo"
    settings = msgspec.structs.replace(settings, var_dir=str(var))
    settings, embedded = prepare_dev(settings)
    tenant = args.tenant or f"demo-{utc_now():%Y%m%d-%H%M%S}"
    run_dir = (var / "runs" / tenant).resolve()
    mailbox = run_dir / "mailbox"
    settings = msgspec.structs.replace(settings, clearinghouse_dir=str(mailbox))
    keys = DemoKeys(
        **{
            role: asyncio.run(_create_key(settings.database_url, tenant, role, "demo"))
            for role in ("admin", "manager", "biller", "intake", "auditor")
        }
    )
    base = f"http://{settings.host}:{settings.port}"
    size = DemoSize(patients=args.patients, sessions=args.sessions, seed=args.seed)

    async def flow() -> None:
        print(
            f"demo: {size.sessions} sessions for {size.patients} patients, tenant {tenant}",
            flush=True,
        )
        report = await run_demo(
            base,
            keys,
            size,
            utc_now().date(),
            mailbox=mailbox,
            redis_url=settings.redis_url,
            queue_name=settings.queue_name,
            tenant=tenant,
        )
        report["where"] = {
            "API docs": f"{base}/schema (Swagger UI: {base}/schema/swagger)",
            "837P/999/835": f"{mailbox} (outbox/, inbox/, archive/, quarantine/)",
            "manager key": keys.manager,
            "biller key": keys.biller,
            "auditor key": keys.auditor,
            "timings (s)": ", ".join(f"{k} {v}" for k, v in report["timings"].items()),
        }
        print(summary_text(report), flush=True)
        if args.report:
            await asyncio.to_thread(Path(args.report).write_bytes, msgspec.json.encode(report))

    # The API and the worker run in a child process, the demo's client in this one: like a
    # real documentation system and billing staff, and both cores are used.
    server = multiprocessing.get_context("spawn").Process(
        target=_serve_api_and_worker, args=(msgspec.json.encode(settings),), daemon=False
    )
    server.start()
    # SIGTERM (a service manager, `timeout`) ends this process through the `finally` below,
    # so the child and the embedded PostgreSQL/Redis are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        _wait_ready(base, server)
        asyncio.run(flow())
        if not args.once:
            print(f"still serving at {base}; stop with Ctrl-C", flush=True)
            server.join()
    except KeyboardInterrupt:
        pass
    finally:
        if server.is_alive():
            server.terminate()  # SIGTERM: the API and worker shut down gracefully
            server.join(30)
        if embedded is not None:
            embedded.stop()


def _serve_api_and_worker(encoded_settings: bytes) -> None:
    import msgspec
    import uvloop

    settings = msgspec.json.decode(encoded_settings, type=Settings)
    configure_logging(settings.log_level, json=settings.log_json)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run_api_and_worker(settings))


def _wait_ready(base: str, server: Any, timeout: float = 120) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.is_alive():
            sys.exit("mtm-billing: the API/worker process exited during start-up")
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"mtm-billing: {base}/ready did not answer within {timeout:.0f} s")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mtm-billing", description="MTM billing and claims service")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "serve", help="run the HTTP API (needs MTM_DATABASE_URL and MTM_REDIS_URL)"
    ).set_defaults(fn=cmd_serve)

    w = sub.add_parser("worker", help="run the arq worker")
    w.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    w.set_defaults(fn=cmd_worker)

    m = sub.add_parser("migrate", help="apply database migrations (default: to head)")
    m.add_argument("revision", nargs="?", default="head")
    m.add_argument(
        "--down", action="store_true", help="downgrade to the given revision (e.g. base)"
    )
    m.set_defaults(fn=cmd_migrate)

    k = sub.add_parser("apikey", help="manage API keys")
    ksub = k.add_subparsers(dest="apikey_command", required=True)
    kc = ksub.add_parser("create", help="create a key (printed once)")
    kc.add_argument("--tenant", required=True)
    kc.add_argument(
        "--role", required=True, choices=["intake", "biller", "manager", "auditor", "admin"]
    )
    kc.add_argument("--label", default="")
    kc.set_defaults(fn=cmd_apikey_create)

    from services.coverage.cli import add_commands as add_coverage_commands

    add_coverage_commands(sub)

    d = sub.add_parser(
        "dev", help="API + worker in one process; embedded PostgreSQL/Redis if not configured"
    )
    d.add_argument("--tenant", default="demo")
    d.set_defaults(fn=cmd_dev)

    demo = sub.add_parser(
        "demo", help="the whole flow on synthetic data through the real API, worker and files"
    )
    demo.add_argument("--once", action="store_true", help="exit after the summary")
    demo.add_argument("--patients", type=int, default=200)
    demo.add_argument("--sessions", type=int, default=500)
    demo.add_argument("--seed", type=int, default=20261127)
    demo.add_argument("--tenant", default="", help="default: demo-<timestamp>")
    demo.add_argument("--report", default="", help="also write the report as JSON here")
    demo.add_argument("--verbose", action="store_true", help="log at MTM_LOG_LEVEL, not WARNING")
    demo.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
