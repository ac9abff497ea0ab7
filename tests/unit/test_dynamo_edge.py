"""The DynamoDB edge on a scripted client: error translation, conditional writes that recognise
their own landed tries, and the item codecs (no network: a fake client answers)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from campaigns.aws.dynamo import Refused, Table, WriteToken, deserialize, serialize, text
from campaigns.aws.items import (
    campaign_from_item,
    campaign_key,
    new_campaign_item,
    new_recipient_item,
    recipient_from_item,
)
from campaigns.aws.retrying import store_writes
from campaigns.domain.errors import StoreUnavailable
from campaigns.domain.models import (
    Campaign,
    CampaignStatus,
    Recipient,
    RecipientStatus,
    TemplateParam,
)
from campaigns.memory import ManualClock


def refusal(item: dict[str, Any] | None = None) -> ClientError:
    response: Any = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}
    if item is not None:
        response["Item"] = item
    return ClientError(response, "UpdateItem")


def server_error() -> ClientError:
    return ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")


class ScriptedClient:
    """Answers each request with the next scripted answer (a response, or an error to raise),
    and keeps the requests it was sent."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def update_item(self, **request: Any) -> dict[str, Any]:
        return self._answer(request)

    def put_item(self, **request: Any) -> dict[str, Any]:
        return self._answer(request)

    def get_item(self, **request: Any) -> dict[str, Any]:
        return self._answer(request)


def table(client: ScriptedClient) -> Table:
    return Table(client, "campaigns")  # type: ignore[arg-type]


KEY = campaign_key("cmp_1")


def test_a_refused_write_whose_item_holds_our_token_counts_as_landed() -> None:
    token = WriteToken()
    found = KEY | serialize({"status": "PAUSED", "writeToken": token.value})
    client = ScriptedClient(refusal(found))

    written = table(client).update(
        KEY, "SET #s = :to, writeToken = :tok", condition="#s = :from", landed=token.landed
    )

    assert written.replayed
    assert written.item == found
    assert client.requests[0]["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_a_refused_write_whose_item_holds_another_token_stays_refused() -> None:
    found = KEY | serialize({"status": "PAUSED", "writeToken": "someone-else"})
    client = ScriptedClient(refusal(found))

    with pytest.raises(Refused) as refused:
        table(client).update(KEY, "SET x = :x", condition="y = :y", landed=WriteToken().landed)

    assert refused.value.item == found
    assert refused.value.found["status"] == "PAUSED"


def test_a_refusal_without_an_item_is_refused_whatever_the_predicate_says() -> None:
    client = ScriptedClient(refusal())

    with pytest.raises(Refused) as refused:
        table(client).update(KEY, "SET x = :x", condition="y = :y", landed=lambda found: True)

    assert refused.value.item is None
    assert refused.value.found == {}


def test_a_write_that_succeeds_is_not_a_replay_and_returns_its_attributes() -> None:
    attributes = KEY | serialize({"status": "RUNNING"})
    client = ScriptedClient({"Attributes": attributes})

    written = table(client).update(KEY, "SET x = :x", returns="ALL_NEW", landed=lambda f: False)

    assert not written.replayed
    assert written.item == attributes


def test_a_write_retried_under_the_store_policy_recognises_its_landed_first_try() -> None:
    # The first try lands, then its answer is lost (a 500 after botocore's own retries);
    # our retry is refused by its own condition and finds its token in place.
    token = WriteToken()
    found = KEY | serialize({"writeToken": token.value})
    client = ScriptedClient(server_error(), refusal(found))
    clock = ManualClock()

    written = table(client).update(
        KEY, "SET x = :x", condition="y = :y", landed=token.landed, retry=store_writes(clock)
    )

    assert written.replayed
    assert len(client.requests) == 2
    assert clock.slept == [0.2]


def test_only_the_writes_that_ask_get_the_refused_item_back() -> None:
    client = ScriptedClient({}, {}, {})
    edge = table(client)

    edge.update(KEY, "SET x = :x", condition="y = :y")
    edge.update(KEY, "SET x = :x", condition="y = :y", refused_item=True)
    edge.put(KEY, condition="attribute_not_exists(PK)")

    assert [r.get("ReturnValuesOnConditionCheckFailure") for r in client.requests] == [
        None,
        "ALL_OLD",
        None,
    ]
    assert "ExpressionAttributeNames" not in client.requests[0]
    assert "ReturnValues" not in client.requests[0]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (server_error(), "DynamoDB cap read failed: InternalServerError"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "DynamoDB cap read failed: EndpointConnectionError",
        ),
    ],
)
def test_botocore_errors_become_store_unavailable_naming_the_call(
    error: ClientError | BotoCoreError, message: str
) -> None:
    client = ScriptedClient(error)

    with pytest.raises(StoreUnavailable, match=message):
        table(client).get(KEY, what="cap read")


def test_a_new_campaign_item_holds_the_seeds_attributes_and_reads_back_as_the_campaign() -> None:
    campaign = Campaign(
        "cmp_1",
        "spring sale",
        "vendor_signup_confirmation",
        "en_US",
        CampaignStatus.DRAFT,
        parameter_format="NAMED",
        created_at="2026-01-01T00:00:00.000Z",
    )

    item = new_campaign_item(campaign)

    assert deserialize(item) == {
        "PK": "CAMPAIGN#cmp_1",
        "SK": "METADATA",
        "campaignId": "cmp_1",
        "name": "spring sale",
        "templateName": "vendor_signup_confirmation",
        "templateLanguage": "en_US",
        "parameterFormat": "NAMED",
        "channel": "WHATSAPP",
        "audienceType": "CSV",
        "status": "DRAFT",
        "totalRecipients": 0,
        "sentCount": 0,
        "failedCount": 0,
        "unknownCount": 0,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    assert campaign_from_item(item) == campaign


def test_a_sparse_campaign_item_reads_with_the_seeds_defaults() -> None:
    campaign = campaign_from_item(KEY | {"campaignId": text("cmp_1")})

    assert campaign == Campaign("cmp_1", "", "", "en_US", CampaignStatus.DRAFT)


def test_a_new_recipient_item_reads_back_as_a_pending_recipient() -> None:
    params = (TemplateParam("name", "Asha"),)

    item = new_recipient_item("cmp_1", "919000000001", params)
    bare = new_recipient_item("cmp_1", "919000000002", ())

    assert deserialize(item) == {
        "PK": "CAMPAIGN#cmp_1",
        "SK": "USER#919000000001",
        "phone": "919000000001",
        "status": "PENDING",
        "attempts": 0,
        "params": [{"name": "name", "value": "Asha"}],
    }
    assert "params" not in bare
    assert recipient_from_item("cmp_1", item) == Recipient(
        "cmp_1", "919000000001", RecipientStatus.PENDING, params=params
    )


def test_a_recipient_item_without_phone_takes_it_from_its_sort_key() -> None:
    item = {"PK": text("CAMPAIGN#cmp_1"), "SK": text("USER#919000000003")}
    item |= serialize({"status": "SENDING", "leaseOwner": "me", "leaseUntil": 5})

    recipient = recipient_from_item("cmp_1", item)

    assert (recipient.phone, recipient.status) == ("919000000003", RecipientStatus.SENDING)
    assert (recipient.lease_owner, recipient.lease_until) == ("me", 5.0)
