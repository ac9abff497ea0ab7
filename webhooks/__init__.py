"""campaign-webhooks: Meta's WhatsApp webhooks, verified and durably queued."""
