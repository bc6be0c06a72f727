# Sourced by the official-SDK scripts: VENV names a venv with the official Python SDK
# (PyPI snowpipe-streaming) and cryptography, made in /tmp on first use (SDK_VENV: your own).
VENV="${SDK_VENV:-/tmp/snowpipe-sdk-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q snowpipe-streaming cryptography
fi
