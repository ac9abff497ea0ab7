"""A local stand-in for Meta's WhatsApp Cloud API send endpoint, with scripted faults.

Embed it (``with CloudApiEmulator() as api: ... api.url``) or run it as its own process::

    python -m sandbox.cloudapi --port 0 --token T --seed 1 [--rules-file rules.json]

It validates template sends like Meta does, answers with Meta's success and error JSON, records
what it accepted, and misbehaves on purpose as told by ``FaultRule``s (see ``sandbox.faults``).
Control endpoints under ``/_sandbox/`` let tests and other processes inspect and steer it.

The emulator: ``validation`` (a send checked as Meta checks it), ``replies`` (Meta's answers on
the wire), ``decisions`` (what each request is answered, and the state behind it), ``server``
(the HTTP plumbing, ``CloudApiEmulator``). Around it: ``records`` (``AcceptedMessage``, shared
with the client), ``control`` (``SandboxControl``, the client of the control endpoints) and
``cli`` (the process entry behind ``python -m sandbox.cloudapi``).

Status webhooks (``--webhook-url``): ``webhookconfig`` (the options), ``deliveryrules`` (what
happens after the 200 for matching sends), ``statusplan`` (which statuses, when),
``payloads`` (Meta's webhook JSON, BSUIDs, the signature), ``dispatcher`` (the thread that
posts and retries) and ``webhookcontrol`` (their control endpoints, on-demand events).
"""

from sandbox.cloudapi.cli import main
from sandbox.cloudapi.control import SandboxControl
from sandbox.cloudapi.deliveryrules import DeliveryRule
from sandbox.cloudapi.payloads import SIGNATURE_HEADER, bsuid_for, sign
from sandbox.cloudapi.records import AcceptedMessage
from sandbox.cloudapi.replies import error_status
from sandbox.cloudapi.server import CloudApiEmulator
from sandbox.cloudapi.webhookconfig import SANDBOX_APP_SECRET, WebhookConfig
from sandbox.faults import FaultRule

__all__ = [
    "SANDBOX_APP_SECRET",
    "SIGNATURE_HEADER",
    "AcceptedMessage",
    "CloudApiEmulator",
    "DeliveryRule",
    "FaultRule",
    "SandboxControl",
    "WebhookConfig",
    "bsuid_for",
    "error_status",
    "main",
    "sign",
]
