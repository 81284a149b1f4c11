#!/usr/bin/env bash
# Run the inference benchmark with ONNX Runtime's CUDA execution provider on a GPU machine.
#
#   make install && bench/gpu_check.sh            # writes bench/results-gpu.json, prints the table
#
# It only ever downloads what `pip install onnxruntime-gpu==1.31.1` needs (and, if the machine
# has no system CUDA 12 / cuDNN 9 libraries, the same package's [cuda,cudnn] extras, which are
# NVIDIA's pip wheels of those libraries). It swaps the CPU build of onnxruntime for the GPU
# build in .venv (both provide the same `onnxruntime` module; never keep both). Undo with
#   .venv/bin/pip uninstall -y onnxruntime-gpu && .venv/bin/pip install onnxruntime==1.31.1
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
OUT=${1:-bench/results-gpu.json}

command -v nvidia-smi >/dev/null && nvidia-smi -L || { echo "No NVIDIA GPU visible (nvidia-smi -L failed)." >&2; exit 1; }
[ -x "$PY" ] || { echo "No virtual environment at $PY; run 'make install' first." >&2; exit 1; }

if ! "$PY" -m pip show onnxruntime-gpu >/dev/null 2>&1; then
  "$PY" -m pip uninstall -y onnxruntime >/dev/null 2>&1 || true
  "$PY" -m pip install --quiet onnxruntime-gpu==1.31.1
fi

probe() {  # does a real session get the CUDA provider? (available_providers lists it even without a GPU)
  "$PY" - <<'PYEOF'
import sys, onnx, onnxruntime as ort
from onnx import helper, TensorProto
ort.set_default_logger_severity(3)
if hasattr(ort, "preload_dlls"):
    try:
        ort.preload_dlls()
    except Exception:
        pass
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
s = ort.InferenceSession(m.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
print("session providers:", s.get_providers())
sys.exit(0 if s.get_providers()[0] == "CUDAExecutionProvider" else 1)
PYEOF
}

if ! probe; then
  echo "CUDA provider not active; installing NVIDIA's CUDA/cuDNN wheels for onnxruntime-gpu" >&2
  "$PY" -m pip install --quiet "onnxruntime-gpu[cuda,cudnn]==1.31.1"
  probe || { echo "ONNX Runtime still cannot use CUDA on this machine (driver too old for CUDA 12?)." >&2; exit 1; }
fi

"$PY" -m moe_app.cli bench --provider cuda --out "$OUT"
echo "results written to $OUT"
