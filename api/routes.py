"""The campaign endpoints: parse, call the operator core, answer its dict. Every route needs an
operator (``api.auth.operator``); the core's exceptions become statuses in ``api.errors``.

The handlers are plain functions (FastAPI runs them in its thread pool: the core is
synchronous and its boto3 clients are thread-safe), but for the upload, which reads the
request's stream itself."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import operator
from api.schemas import (
    BatchOut,
    CampaignList,
    CampaignOut,
    Confirm,
    Control,
    CreateCampaign,
    Created,
    Enqueued,
    Failure,
    Populated,
    RecipientPage,
    Reconciled,
    Requeued,
    Transitioned,
)
from api.upload import REQUEST_BODY, receive_csv
from campaigns.domain.models import Campaign, CampaignStatus, RecipientStatus
from campaigns.domain.phones import DEFAULT_REGION
from campaigns.operator.commands import Producer
from campaigns.operator.csvfile import FileProblem

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Failure, "description": text}
    for status, text in (
        (400, "bad body"),
        (401, "no or bad operator key"),
        (403, "missing or bad CSRF token (session cookie)"),
        (404, "unknown campaign"),
        (409, "refused transition, or an import is running"),
        (422, "malformed id or field"),
        (503, "AWS or the queue unreachable"),
    )
}
REQUEUE_RISK = "confirm must be true: requeue-unknown may message these recipients a second time"

router = APIRouter(
    prefix="/api/campaigns",
    tags=["campaigns"],
    dependencies=[Depends(operator)],
    responses=ERRORS,
)


def core(request: Request) -> Producer:
    producer: Producer = request.app.state.producer
    return producer


Core = Annotated[Producer, Depends(core)]


CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_DOCUMENTED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "the recipients, streamed"}
}


def campaign_view(campaign: Campaign) -> dict[str, Any]:
    return {**campaign.to_public(), "progressPercent": campaign.progress_percent}


@router.get("", name="list", response_model=CampaignList, response_model_exclude_unset=True)
def list_campaigns(
    producer: Core,
    status: CampaignStatus | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first, a page of ``limit`` (1-200); pass ``nextCursor`` back as ``cursor``."""
    return producer.list_campaigns(status, limit, cursor)


# Every route answers the core's dict through its model with ``response_model_exclude_unset``:
# the core's keys, none invented.
@router.post(
    "/create",
    name="create",
    response_model=Created,
    response_model_exclude_unset=True,
)
def create(body: CreateCampaign, producer: Core, request: Request) -> dict[str, Any]:
    """A DRAFT campaign (the old admin app's body)."""
    result = producer.create(body.name, body.template_name, body.language, body.parameter_format)
    request.state.campaign_id = result["campaignId"]
    return result


@router.get(
    "/{campaign_id}", name="get", response_model=CampaignOut, response_model_exclude_unset=True
)
def get(campaign_id: str, producer: Core) -> dict[str, Any]:
    """The campaign's record, counters, progress and delivery truth (``cost``: the estimate
    from PRICES_FILE, null without one)."""
    view = {
        name: value for name, value in producer.status(campaign_id).items() if name != "success"
    }
    view["progressPercent"] = view["progress"]
    return {"success": True, "campaign": view}


@router.get(
    "/{campaign_id}/recipients",
    name="recipients",
    response_model=RecipientPage,
    response_model_exclude_unset=True,
)
def recipients(
    campaign_id: str,
    producer: Core,
    status: RecipientStatus | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of recipients in key order (``?status=FAILED``: who failed, and why)."""
    return producer.recipients(campaign_id, status, limit, cursor)


@router.get(
    "/{campaign_id}/recipients.csv",
    name="recipients.csv",
    response_class=StreamingResponse,
    responses=CSV_DOCUMENTED,
)
def recipients_csv(
    campaign_id: str, producer: Core, status: RecipientStatus | None = None
) -> StreamingResponse:
    """Every recipient (or those in ``status``) as CSV, streamed page by page."""
    chunks = producer.export_recipients(campaign_id, status)  # raises before a byte is sent
    filename = f"{campaign_id}-recipients.csv"  # a checked id: safe in a header
    return StreamingResponse(
        chunks,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/{campaign_id}/populate",
    name="populate",
    response_model=Populated,
    response_model_exclude_unset=True,
    responses={413: {"model": Failure, "description": "upload too large"}},
    openapi_extra=REQUEST_BODY,
)
async def populate(
    campaign_id: str,
    request: Request,
    producer: Core,
    default_region: Annotated[str, Query(alias="defaultRegion")] = DEFAULT_REGION,
) -> dict[str, Any]:
    """Recipients from a CSV upload (``multipart/form-data``, field ``file``): the CLI's rules,
    its import. A campaign that cannot take recipients is refused before the upload is read."""
    await run_in_threadpool(producer.get, campaign_id)
    limit_bytes: int = request.app.state.settings.api_max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="campaign-api-") as directory:
        path, filename = await receive_csv(request, limit_bytes, Path(directory))
        try:
            result: dict[str, Any] = await run_in_threadpool(
                producer.populate, campaign_id, path, default_region
            )
        except FileProblem as exc:  # the message names the upload, not our temporary file
            raise FileProblem(str(exc).replace(str(path), filename)) from None
    return result


@router.post(
    "/{campaign_id}/control",
    name="control",
    response_model=Transitioned,
    response_model_exclude_unset=True,
)
def control(campaign_id: str, body: Control, producer: Core, request: Request) -> dict[str, Any]:
    """start | pause | resume | cancel (start and resume enqueue the PENDING recipients)."""
    request.state.audit_action = body.action
    return producer.transition(campaign_id, body.transition)


@router.post(
    "/{campaign_id}/execute-batch",
    name="execute-batch",
    response_model=BatchOut,
    response_model_exclude_unset=True,
)
def execute_batch(campaign_id: str, producer: Core) -> dict[str, Any]:
    """Send one batch of PENDING recipients now, in this process (the CLI's code path)."""
    result = producer.execute_batch(campaign_id)
    result.pop("success", None)
    result.setdefault("unknown", 0)  # an empty batch reports no ``unknown``
    return {"success": True, "result": result}


@router.post(
    "/{campaign_id}/enqueue",
    name="enqueue",
    response_model=Enqueued,
    response_model_exclude_unset=True,
)
def enqueue(campaign_id: str, producer: Core) -> dict[str, Any]:
    """Re-enqueue batches for the PENDING recipients of a RUNNING campaign (safe to repeat)."""
    return producer.enqueue(campaign_id)


@router.post(
    "/{campaign_id}/reconcile",
    name="reconcile",
    response_model=Reconciled,
    response_model_exclude_unset=True,
)
def reconcile(campaign_id: str, producer: Core) -> dict[str, Any]:
    """Expire dead leases, repair the counters, complete if done, re-enqueue lost batches."""
    return producer.reconcile(campaign_id)


@router.post(
    "/{campaign_id}/requeue-unknown",
    name="requeue-unknown",
    response_model=Requeued,
    response_model_exclude_unset=True,
)
def requeue_unknown(campaign_id: str, body: Confirm, producer: Core) -> dict[str, Any]:
    """UNKNOWN → PENDING, accepting that they may get the message twice: ``{"confirm": true}``."""
    if not body.confirm:
        raise HTTPException(400, REQUEUE_RISK)
    return producer.requeue_unknown(campaign_id, confirmed=True)
