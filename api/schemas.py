"""The request and response bodies, as pydantic models: FastAPI parses the requests with them
and ``/openapi.json`` documents both. The responses are the operator core's dicts, passed
through (``extra="allow"``: a field the core adds reaches the client, as it reaches the CLI's
``--json``); routes set ``response_model_exclude_unset`` so no key is invented."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.alias_generators import to_camel

from campaigns.domain.models import Action

# camelCase on the wire (the old admin app's and the DynamoDB items' names), snake_case here.
CAMEL = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


class Body(BaseModel):
    model_config = CAMEL | ConfigDict(extra="ignore")  # the old app may send more than we read


class Wire(BaseModel):
    model_config = CAMEL | ConfigDict(extra="allow")


class Out(Wire):
    success: bool = True


class Failure(BaseModel):
    """Every error: one line, never a traceback."""

    success: Literal[False] = False
    error: str = Field(examples=["Campaign status is COMPLETED: cannot start"])


# -- requests ---------------------------------------------------------------------------------


class CreateCampaign(Body):
    name: str = Field(min_length=1, max_length=256, examples=["Diwali offer"])
    template_name: str = Field(min_length=1, max_length=512, examples=["diwali_offer"])
    channel: Literal["WHATSAPP"]
    audience_type: Literal["CSV"]
    language: str = Field(default="en_US", min_length=1, max_length=16)
    parameter_format: Literal["POSITIONAL", "NAMED"] = "POSITIONAL"

    @field_validator("parameter_format", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value  # as the CLI's choices


class Control(Body):
    action: Literal["start", "pause", "resume", "cancel"]  # the operator's (not the engine's)

    @property
    def transition(self) -> Action:
        return Action(self.action)


class Confirm(Body):
    confirm: StrictBool = False


class SignIn(Body):
    key: str = Field(min_length=1, max_length=4096)


# -- responses --------------------------------------------------------------------------------


class Created(Out):
    campaign_id: str


class Billable(Wire):
    category: str
    calling_code: str
    count: int


class CostLine(Wire):
    category: str
    calling_code: str
    count: int
    unit_price: str | None
    cost: str | None


class Cost(Wire):
    """The estimate from PRICES_FILE: money as exact decimal strings."""

    currency: str | None
    estimated: str
    unpriced: int
    lines: list[CostLine]


class CampaignView(Wire):
    """``Campaign.to_public()`` plus ``progressPercent`` (and whatever the core adds)."""

    campaign_id: str
    name: str
    template_name: str
    template_language: str | None = None
    status: str
    total_recipients: int
    sent_count: int
    failed_count: int
    unknown_count: int
    pending_count: int
    progress_percent: float
    delivered_count: int = 0
    read_count: int = 0
    delivery_failed_count: int = 0
    held_count: int = 0
    delivery_failures: dict[str, int] = {}
    delivery_rate: float | None = None
    read_rate: float | None = None
    billable: list[Billable] = []
    cost: Cost | None = None
    pause_reason: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    paused_at: str | None = None
    completed_at: str | None = None
    cancelled_at: str | None = None


class CampaignOut(Out):
    campaign: CampaignView


class CampaignList(Out):
    campaigns: list[CampaignView]
    next_cursor: str | None = None


class InvalidRow(Wire):
    line: int
    value: str
    reason: str


class Populated(Out):
    inserted: int
    duplicates: int
    suppressed: int = 0
    invalid_count: int = 0
    invalid: list[InvalidRow]


class Transitioned(Out):
    new_status: str = Field(examples=["RUNNING"])
    enqueued_batches: int | None = None
    enqueued_recipients: int | None = None


class BatchResult(Wire):
    processed: int
    sent: int
    failed: int
    unknown: int
    paused: bool
    completed: bool
    pause_reason: str | None = None


class BatchOut(Out):
    result: BatchResult


class Enqueued(Out):
    enqueued_batches: int
    enqueued_recipients: int
    completed: bool


class Reconciled(Out):
    campaigns: list[dict[str, object]]


class Requeued(Out):
    requeued: int
    enqueued_batches: int | None = None


class RecipientRow(Wire):
    phone: str
    status: str
    attempts: int
    error_code: str | None = None
    error_meaning: str | None = None
    message_id: str | None = None
    unknown_reason: str | None = None
    finished_at: str | None = None


class RecipientPage(Out):
    campaign_id: str
    recipients: list[RecipientRow]
    next_cursor: str | None = None


class Session(Out):
    operator: str
    csrf_token: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
