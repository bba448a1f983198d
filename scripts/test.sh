#!/usr/bin/env bash
# Fresh-machine test run: installs everything it needs (venv, pip deps, Debian chromium), then runs ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PHOTOSEARCH_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
python -c "import photosearch" # fail early if the install did not work
if ! command -v chromium >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will fail"
fi
ruff check .
ruff format --check .
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
