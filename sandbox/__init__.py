"""Local stand-ins for the outside world: the WhatsApp Cloud API emulator and friends."""
