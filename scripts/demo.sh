#!/usr/bin/env bash
# Fresh-machine main job: install photosearch, index the shared test photos, search them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PHOTOSEARCH_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q --disable-pip-version-check -e . 2>&1 | grep -v '^WARNING: Location' || true
PHOTOS=${1:-../shared/testdata/photos}
export PHOTOSEARCH_DATA_DIR=${PHOTOSEARCH_DATA_DIR:-$PWD/.demo-data}
export PHOTOSEARCH_CONFIG=${PHOTOSEARCH_CONFIG:-$PHOTOSEARCH_DATA_DIR/config.toml}

photosearch db status
# The real CLIP weights come from the Hugging Face hub. Where the hub is unreachable, fall back to the
# bundled tiny random test model so the whole flow still runs (its rankings are meaningless).
if ! photosearch models download; then
  echo "note: using the bundled tiny test model (random weights) because the model hub is unreachable" >&2
  photosearch models import tests/fixtures/tiny-clip --name tiny-clip --force
  photosearch models use tiny-clip --reembed   # saved in $PHOTOSEARCH_CONFIG
fi
photosearch index "$PHOTOS" --library demo
photosearch search "red flower in a garden" -k 5
photosearch search "a bird of prey" -k 5 --taken-after 2000-01-01 --explain
