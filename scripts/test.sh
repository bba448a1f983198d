#!/usr/bin/env bash
# Fresh-machine test run: installs what it needs (a venv with photosearch and its test dependencies, Debian's
# chromium for the browser tests if it is missing), then runs ruff and pytest. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PHOTOSEARCH_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "test.sh: creating the virtualenv $VENV"
  python3 -m venv "$VENV"
fi
. "$VENV/bin/activate"
echo "test.sh: installing photosearch and its test dependencies into $VENV (pip install -e '.[dev,cluster,ocr]')"
pip install -q --disable-pip-version-check -e '.[dev,cluster,ocr]' 2>&1 | { grep -v '^WARNING: Location' || true; }
python -c "import photosearch" # fail early if the install did not work
if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing Debian's chromium for the browser tests (apt-get install --no-install-recommends chromium)"
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "test.sh: could not install chromium (apt-get's output above); the browser tests will fail" >&2
  fi
  rm -f "$log"
fi
echo "test.sh: ruff"
ruff check .
ruff format --check .
echo "test.sh: pytest $*"
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
