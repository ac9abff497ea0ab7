"""The Meta adapter: the WhatsApp Cloud API client and its error-code table."""
