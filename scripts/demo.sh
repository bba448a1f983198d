#!/usr/bin/env bash
# Fresh-machine main job: install photosearch, index the shared test photos, search them, and leave a data dir
# (.demo-data) with a web login ready to use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PHOTOSEARCH_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
echo "demo.sh: installing photosearch into $VENV (pip install -e .)"
pip install -q --disable-pip-version-check -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
PHOTOS=${1:-../shared/testdata/photos}
export PHOTOSEARCH_DATA_DIR=${PHOTOSEARCH_DATA_DIR:-$PWD/.demo-data}
export PHOTOSEARCH_CONFIG=${PHOTOSEARCH_CONFIG:-$PHOTOSEARCH_DATA_DIR/config.toml}
DEMO_USER=${DEMO_USER:-demo@example.org}

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

# The first account created is the admin and adopts the photos indexed above.
LOGIN_FILE=$PHOTOSEARCH_DATA_DIR/demo-login.txt
if [ ! -f "$LOGIN_FILE" ]; then
  PASSWORD=$(python -c "import secrets; print(secrets.token_urlsafe(12))")
  if printf '%s\n' "$PASSWORD" | photosearch users add "$DEMO_USER" --admin --password-stdin >/dev/null; then
    (umask 077 && printf 'email: %s\npassword: %s\n' "$DEMO_USER" "$PASSWORD" >"$LOGIN_FILE")
  fi
fi

VENV_ABS=$(cd "$VENV" && pwd)
PORT=$(python -c "from photosearch.config import Settings; print(Settings().port)")
cat <<MSG

Done. Everything the demo made is in $PHOTOSEARCH_DATA_DIR
(database, thumbnails, model cache, and config.toml with the active model).

To keep using it in a new shell:
  . $VENV_ABS/bin/activate
  export PHOTOSEARCH_DATA_DIR=$PHOTOSEARCH_DATA_DIR PHOTOSEARCH_CONFIG=$PHOTOSEARCH_CONFIG
  photosearch search "a bird of prey"

Web UI: photosearch serve, then open http://127.0.0.1:$PORT/ and log in with
MSG
if [ -f "$LOGIN_FILE" ]; then
  sed 's/^/  /' "$LOGIN_FILE"
  echo "  (kept in $LOGIN_FILE; change it with: photosearch users passwd $DEMO_USER)"
else
  echo "  an account of yours: photosearch users passwd EMAIL sets a password (photosearch users list)"
fi
cat <<MSG

The embedded PostgreSQL server keeps running in the background. Stop it with
  PHOTOSEARCH_DATA_DIR=$PHOTOSEARCH_DATA_DIR photosearch db stop
MSG
