#!/usr/bin/env bash
# The cuDNN frontend's headers (cudnn_frontend.h and the rest: a header-only C++ API over cuDNN's graph API),
# which include/diffuse/cuda/cudnn_conv.hpp needs and the CMake build looks for in .deps/cudnn-frontend/include
# (DIFFUSE_CUDNN_FRONTEND_INCLUDE_DIR). They come from PyPI's wheel nvidia-cudnn-frontend (pinned below), whose
# include/ folder is extracted there. Idempotent and quiet when the headers are present; without PyPI it says
# so in one line and exits 0 (the cuDNN compile checks are then not configured). A wheel already in .whl/
# (tools/fetch_device_wheels.sh puts one there for the device machine) is used without pip.
#   tools/fetch_cudnn_frontend.sh
set -euo pipefail
version=1.32.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$root/.deps/cudnn-frontend
[[ -f $dest/include/cudnn_frontend.h ]] && exit 0
wheel=$(compgen -G "$root/.whl/nvidia_cudnn_frontend-$version-*.whl" | head -n 1 || true)
tmp=
if [[ -z $wheel ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! python3 -m pip download -q --no-deps --disable-pip-version-check --timeout 20 --retries 1 -d "$tmp" \
      "nvidia-cudnn-frontend==$version" >"$tmp/pip.log" 2>&1; then
    echo "fetch_cudnn_frontend: pip could not download nvidia-cudnn-frontend==$version (offline?): the cuDNN checks are skipped"
    exit 0
  fi
  wheel=$(compgen -G "$tmp/*.whl" | head -n 1)
fi
python3 - "$wheel" "$dest" <<'PY'
import os, shutil, sys, tempfile, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(dest), exist_ok=True)
staging = tempfile.mkdtemp(dir=os.path.dirname(dest))  # extracted beside dest, then renamed: never half there
with zipfile.ZipFile(wheel) as z:
    # the headers: the wheel's top-level include/ (or a package's include/, whichever holds cudnn_frontend.h)
    top = [n for n in z.namelist() if n.endswith("include/cudnn_frontend.h")]
    if not top:
        sys.exit("fetch_cudnn_frontend: no include/cudnn_frontend.h in " + wheel)
    prefix = min(top, key=len)[: -len("cudnn_frontend.h")]
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/"):
            out = os.path.join(staging, "include", n[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(n) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(dest, ignore_errors=True)
os.rename(staging, dest)
PY
