"""``campaign-consumer``: the long-running daemon (one container of many)."""

from __future__ import annotations

import argparse
import sys

from campaigns import logging as logs
from campaigns.domain.errors import ConfigError, QueueUnavailable, StoreUnavailable
from campaigns.domain.exitcodes import EXIT_CONFIG, EXIT_UNAVAILABLE
from campaigns.engine.breaker import SendBreaker
from campaigns.engine.ratelimit import TokenBucket
from campaigns.settings import Settings, load_settings, require_meta_credentials
from campaigns.wiring import build_engine, build_queue, build_receipts_queue, consumer_id
from consumer.health import HealthServer, HealthState
from consumer.receipts import ReceiptsConfig, ReceiptsLoop
from consumer.worker import Worker, WorkerConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campaign-consumer",
        description="Poll the campaign batch queue and send each batch behind the cap guard.",
    )
    parser.add_argument(
        "--once", action="store_true", help="exit 0 once a long poll comes back empty"
    )
    parser.add_argument(
        "--concurrency", type=int, help="batch messages processed at once (CONSUMER_CONCURRENCY)"
    )
    parser.add_argument("--metrics-port", type=int, help="port for /metrics (METRICS_PORT)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.concurrency is not None:
        overrides["consumer_concurrency"] = args.concurrency
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    settings = load_settings(**overrides)
    require_meta_credentials(settings)
    return settings


def main(argv: list[str] | None = None, early_signals: list[int] | None = None) -> int:
    """``early_signals``: signals that arrived while the process was still importing."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"campaign-consumer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    owner = consumer_id()
    logs.configure(settings.log_format, settings.log_level, static={"consumer": owner})
    log = logs.get_logger()
    try:
        engine = build_engine(settings)
        batch_queue = build_queue(settings)
    except (QueueUnavailable, StoreUnavailable) as exc:
        print(f"campaign-consumer: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    limiter = TokenBucket(settings.send_rate_per_second)
    engine.metrics.send_rate_limit.set_function(limiter.current_rate)
    breaker = SendBreaker()
    executors = [
        engine.executor(limiter, owner, breaker) for _ in range(settings.consumer_concurrency)
    ]
    # The status webhooks, in a thread of their own; the queue is looked up there, so a
    # deployment without the receiver runs the batches alone (``receipts.disabled``).
    receipts = ReceiptsLoop(
        queue_factory=lambda: build_receipts_queue(settings),
        applier=engine.receipt_applier(),
        metrics=engine.metrics,
        config=ReceiptsConfig(
            poll_wait_s=settings.receipts_poll_wait_s,
            visibility_timeout_s=settings.visibility_timeout_s,
            once=args.once,
            concurrency=settings.receipts_concurrency,
        ),
    )
    health = HealthState()
    try:
        server = HealthServer(engine.metrics.registry, health, settings.metrics_port).start()
    except OSError as exc:
        print(
            f"campaign-consumer: cannot serve metrics on port {settings.metrics_port}: "
            f"{exc.strerror}",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    log.info(
        "consumer.configured",
        owner=owner,
        queue=batch_queue.url,
        concurrency=settings.consumer_concurrency,
        receipts_concurrency=settings.receipts_concurrency,
        rate_per_s=settings.send_rate_per_second,
        daily_cap=settings.daily_cap,
        metrics_port=server.port,
        receipts_queue=settings.campaign_receipts_queue_name,
    )
    worker = Worker(
        queue=batch_queue,
        executors=executors,
        metrics=engine.metrics,
        config=WorkerConfig(
            visibility_timeout_s=settings.visibility_timeout_s,
            poll_wait_s=settings.poll_wait_s,
            shutdown_timeout_s=settings.shutdown_timeout_s,
            once=args.once,
        ),
        health=health,
        breaker=breaker,
        early_signals=early_signals,
        receipts=receipts,
    )
    try:
        return worker.run()
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
