class CompileException(Exception): pass
