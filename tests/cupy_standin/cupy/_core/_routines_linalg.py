COMPUTE_TYPE_TF32 = 1; COMPUTE_TYPE_DEFAULT = 0
def set_compute_type(*a): pass
