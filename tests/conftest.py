"""Test-wide set-up: Qt's offscreen platform unless a platform was chosen (an empty value
slips past ``setdefault``, hence the explicit check)."""
import os

if not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
