#!/usr/bin/env bash
# Create the LiteLLM peer's own venv (bench/peers/.venv-litellm, gitignored) with the pinned proxy.
#   bash bench/peers/litellm/setup.sh          # idempotent: does nothing when the pinned version is there
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${LITELLM_VENV:-$here/../.venv-litellm}"
want="$(sed -n 's/^litellm\[proxy\]==//p' "$here/requirements.txt")"
if [ -x "$venv/bin/litellm" ] && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" -c "$here/constraints.txt"
"$venv/bin/python" -c 'import importlib.metadata as m; print("litellm", m.version("litellm"))'
