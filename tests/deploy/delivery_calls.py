"""The DynamoDB calls of the status webhooks' store, made as the consumer's receipts loop makes
them: ``python -m tests.deploy.recording CALLS deliveries CAMPAIGN_ID PHONE``.

The consumer's receipts loop (consumer/receipts.py) applies one real status webhook in the IAM
test's run; this adds the DeliveryStore calls a single receipt does not reach (the wamid
fallback, a late report, the BSUID link, suppress and unsuppress, running_campaigns), recorded
under the consumer's role, so the consumer policy is proved to grant every one of them (and
nothing the code does not call). It reads its settings from the environment, as the consumer
does."""

from __future__ import annotations

from campaigns.aws.clients import dynamodb_client
from campaigns.aws.store import DynamoStore
from campaigns.domain.models import DeliveryReport, DeliveryStatus
from campaigns.settings import load_settings

AT_S = 1_767_225_600.0


def main(args: list[str]) -> int:
    campaign_id, phone = args
    settings = load_settings()
    store = DynamoStore(dynamodb_client(settings), settings)

    def report(status: DeliveryStatus, at_s: float) -> DeliveryReport:
        return DeliveryReport(campaign_id, phone, status, at_s, None, None, "US.1", "marketing")

    assert store.find_by_message_id("wamid.not-sent") is None  # Query on the index
    assert store.apply_delivery(report(DeliveryStatus.DELIVERED, AT_S + 2)).changed  # transaction
    assert store.apply_delivery(report(DeliveryStatus.READ, AT_S + 3)).changed
    assert not store.apply_delivery(report(DeliveryStatus.DELIVERED, AT_S + 1)).changed  # Update
    store.link_user("US.1", phone)
    assert store.phone_for_user("US.1") == phone
    store.suppress(phone, "user_preferences")
    assert store.unsuppress(phone, "user_preferences")
    store.running_campaigns()
    return 0
