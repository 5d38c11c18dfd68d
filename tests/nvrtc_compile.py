"""Compile every kernel module as CuPy 14 will: NVRTC (the public cuda-bindings API, the nvidia-cuda-nvrtc library)
with gpugrad's options plus those CuPy adds (cupy/cuda/compiler.py: ``-ftz=true``, ``-arch=sm_NN``,
``--device-as-default-execution-space``) and every name expression gpugrad asks for, with and without half
precision, for sm_80 and sm_90. Run by the Python of the real CuPy's environment (tests/test_nvrtc.py); prints as
JSON the failures and whether float32 arithmetic came out flushing subnormals (``.ftz.f32`` in the PTX)."""
import json
import sys

from cuda.bindings import nvrtc

from gpugrad.cuda.kernels import KERNELS, compile_options, kernel_source


def _check(result, program=None):
    status = result[0]
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        log = ""
        if program is not None:
            _, size = nvrtc.nvrtcGetProgramLogSize(program)
            buffer = b" " * size
            nvrtc.nvrtcGetProgramLog(program, buffer)
            log = buffer.decode(errors="replace")
        raise RuntimeError(f"{status}: {log[-2000:]}")
    return result[1:]


def compile_module(source, names, options):
    """Compile; return (lowered name per expression, PTX or None)."""
    program, = _check(nvrtc.nvrtcCreateProgram(source.encode(), b"kern.cu", 0, [], []))
    for name in names:
        _check(nvrtc.nvrtcAddNameExpression(program, name.encode()))
    encoded = [o.encode() for o in options]
    _check(nvrtc.nvrtcCompileProgram(program, len(encoded), encoded), program)
    lowered = {name: _check(nvrtc.nvrtcGetLoweredName(program, name.encode()))[0] for name in names}
    ptx = None
    if any(o.startswith("-arch=compute_") for o in options):
        size, = _check(nvrtc.nvrtcGetPTXSize(program))
        buffer = b" " * size
        _check(nvrtc.nvrtcGetPTX(program, buffer))
        ptx = buffer.decode()
    return lowered, ptx


def main():
    failures, compiled = [], 0
    for module, expressions in KERNELS.items():
        source = kernel_source(module)
        for half in (True, False):
            names = [n for n in expressions if half or ("__half" not in n and "bfloat16" not in n)]
            for arch in ("80", "90"):
                options = (*compile_options(half), "-ftz=true", f"-arch=sm_{arch}",
                           "--device-as-default-execution-space")
                try:
                    lowered, _ = compile_module(source, names, options)
                    compiled += len(lowered)
                except RuntimeError as error:
                    failures.append(f"{module}.cu (half={half}, sm_{arch}): {error}")
    _, ptx = compile_module(kernel_source("activation"), ["sigmoid_fwd<float>"],
                            (*compile_options(True), "-ftz=true", "-arch=compute_90",
                             "--device-as-default-execution-space"))
    try:  # the check can fail: a name expression the source does not define is an error
        compile_module(kernel_source("activation"), ["no_such_kernel<float>"], compile_options(True))
        refuses = False
    except RuntimeError:
        refuses = True
    print(json.dumps({"failures": failures, "compiled": compiled, "ftz": ".ftz.f32" in ptx, "refuses": refuses,
                      "expressions": sum(len(v) for v in KERNELS.values())}))


if __name__ == "__main__":
    sys.exit(main())
