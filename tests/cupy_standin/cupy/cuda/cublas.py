CUBLAS_COMPUTE_32F = CUBLAS_COMPUTE_64F = CUBLAS_COMPUTE_32F_FAST_TF32 = CUBLAS_OP_N = CUBLAS_OP_T = CUBLAS_POINTER_MODE_HOST = 0
def setPointerMode(*a): pass
def gemmEx(*a): pass
def create(): return 1
def destroy(h): pass
def setStream(h, s): pass
def setWorkspace(h, p, n): pass
