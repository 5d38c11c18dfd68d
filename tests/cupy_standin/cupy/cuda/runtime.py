CUDA_R_16F, CUDA_R_32F, CUDA_R_64F = 2, 0, 1
def getDevice(): return 0
def getDeviceCount(): return 1
CUDA_R_16BF = 14
